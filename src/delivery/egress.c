/*
 * egress.c: the SSRF guard (egress.h).
 *
 * Both families are classified by first match in a table of prefixes, most
 * specific first. An IPv6 entry may say where an IPv4 address sits inside
 * it (mapped, compatible, NAT64, 6to4, Teredo); such an address takes the
 * class of the IPv4 address it embeds, so a gateway that translates it can
 * never be used to reach a refused IPv4 host. What lies outside 2000::/3
 * (global unicast) and is not named in the table is reserved.
 *
 * URL hosts are read back from libcurl's URL parser, the one the delivery's
 * own CURLOPT_URL goes through, so an IPv4 address spelled as curl accepts
 * it (0x7f.1, 2130706433, 0177.0.0.1, 127.1) is checked as the dotted quad
 * curl will connect to.
 */
#include "delivery/egress.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/alloc.h"
#include "core/str.h"

#define RANGE_SHOWN_MAX 48

struct egress_range {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

struct egress_ranges {
	size_t n;
	struct egress_range r[EGRESS_RANGES_MAX];
};

/* True when the first plen bits of a and b agree. */
static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned plen)
{
	unsigned whole = plen / 8, rest = plen % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

struct v4_entry {
	uint8_t net[4];
	unsigned plen;
	const char *cls;
};

/* First match wins: single addresses before the ranges holding them. */
static const struct v4_entry v4_table[] = {
    {{169, 254, 169, 254}, 32, "metadata"},   {{255, 255, 255, 255}, 32, "broadcast"},
    {{0, 0, 0, 0}, 8, "unspecified"},         {{10, 0, 0, 0}, 8, "private"},
    {{100, 64, 0, 0}, 10, "cgnat"},           {{127, 0, 0, 0}, 8, "loopback"},
    {{169, 254, 0, 0}, 16, "link_local"},     {{172, 16, 0, 0}, 12, "private"},
    {{192, 0, 0, 0}, 24, "reserved"},         {{192, 0, 2, 0}, 24, "documentation"},
    {{192, 168, 0, 0}, 16, "private"},        {{198, 18, 0, 0}, 15, "reserved"}, /* benchmarking */
    {{198, 51, 100, 0}, 24, "documentation"}, {{203, 0, 113, 0}, 24, "documentation"},
    {{224, 0, 0, 0}, 4, "multicast"},         {{240, 0, 0, 0}, 4, "reserved"},
};

static const char *v4_class(const uint8_t a[4])
{
	for (size_t i = 0; i < sizeof(v4_table) / sizeof(v4_table[0]); i++)
		if (prefix_match(a, v4_table[i].net, v4_table[i].plen))
			return v4_table[i].cls;
	return NULL;
}

/* Where an IPv6 prefix carries an IPv4 address. */
enum embed {
	EMBED_NONE,
	EMBED_LAST32,      /* mapped ::ffff:0:0/96, compatible ::/96, NAT64 64:ff9b::/96 */
	EMBED_NAT64_LOCAL, /* 64:ff9b:1::/48: every RFC 6052 layout, /48 .. /96 */
	EMBED_6TO4,        /* 2002::/16: bits 16..47 */
	EMBED_TEREDO,      /* 2001::/32: server bits 32..63, client ~bits 96..127 */
};

struct v6_entry {
	uint8_t net[16];
	unsigned plen;
	const char *cls; /* NULL: the class of the embedded IPv4 address */
	enum embed embed;
};

#define W(x) (uint8_t)((x) >> 8), (uint8_t)((x)&0xff)

static const struct v6_entry v6_table[] = {
    {{0}, 128, "unspecified", EMBED_NONE},
    {{W(0), W(0), W(0), W(0), W(0), W(0), W(0), W(1)}, 128, "loopback", EMBED_NONE},
    {{W(0), W(0), W(0), W(0), W(0), W(0xffff)}, 96, NULL, EMBED_LAST32},
    {{0}, 96, NULL, EMBED_LAST32},
    {{W(0x64), W(0xff9b)}, 96, NULL, EMBED_LAST32},
    {{W(0x64), W(0xff9b), W(1)}, 48, NULL, EMBED_NAT64_LOCAL},
    {{W(0x100)}, 64, "discard", EMBED_NONE},
    {{W(0x2001), W(0)}, 32, NULL, EMBED_TEREDO},
    {{W(0x2001), W(2), W(0)}, 48, "reserved", EMBED_NONE}, /* benchmarking */
    {{W(0x2001), W(0x10)}, 28, "reserved", EMBED_NONE},    /* ORCHID */
    {{W(0x2001), W(0x20)}, 28, "reserved", EMBED_NONE},    /* ORCHIDv2 */
    {{W(0x2001), W(0xdb8)}, 32, "documentation", EMBED_NONE},
    {{W(0x2002)}, 16, NULL, EMBED_6TO4},
    {{W(0x3fff)}, 20, "documentation", EMBED_NONE},
    {{W(0xfd00), W(0xec2), W(0), W(0), W(0), W(0), W(0), W(0x254)}, 128, "metadata", EMBED_NONE},
    {{W(0xfc00)}, 7, "private", EMBED_NONE},
    {{W(0xfe80)}, 10, "link_local", EMBED_NONE},
    {{W(0xfec0)}, 10, "reserved", EMBED_NONE},
    {{W(0xff00)}, 8, "multicast", EMBED_NONE},
    {{W(0x2000)}, 3, NULL, EMBED_NONE}, /* global unicast: public */
};

/* The class of the IPv4 address at a + off (bytes), each XORed with x. */
static const char *v4_at(const uint8_t *a, const int off[4], uint8_t x)
{
	uint8_t v4[4];

	for (int i = 0; i < 4; i++)
		v4[i] = a[off[i]] ^ x;
	return v4_class(v4);
}

static const char *embedded_class(const uint8_t a[16], enum embed e)
{
	static const int last32[4] = {12, 13, 14, 15};
	/* RFC 6052 2.2: bits 64..71 (byte 8) are skipped. */
	static const int nat64[3][4] = {{6, 7, 9, 10}, {7, 9, 10, 11}, {9, 10, 11, 12}};
	static const int sixtofour[4] = {2, 3, 4, 5};
	static const int teredo_server[4] = {4, 5, 6, 7};
	const char *cls;

	switch (e) {
	case EMBED_LAST32:
		return v4_at(a, last32, 0);
	case EMBED_NAT64_LOCAL:
		/* The operator picks the layout: the usual /96 gives the class;
		 * any other that would reach a refused host makes it reserved. */
		if ((cls = v4_at(a, last32, 0)) != NULL)
			return cls;
		for (int i = 0; i < 3; i++)
			if (v4_at(a, nat64[i], 0) != NULL)
				return "reserved";
		return NULL;
	case EMBED_6TO4:
		return v4_at(a, sixtofour, 0);
	case EMBED_TEREDO:
		if ((cls = v4_at(a, teredo_server, 0)) != NULL)
			return cls;
		return v4_at(a, last32, 0xff);
	case EMBED_NONE:
		break;
	}
	return NULL;
}

static const char *v6_class(const uint8_t a[16])
{
	for (size_t i = 0; i < sizeof(v6_table) / sizeof(v6_table[0]); i++) {
		const struct v6_entry *e = &v6_table[i];

		if (!prefix_match(a, e->net, e->plen))
			continue;
		return e->embed != EMBED_NONE ? embedded_class(a, e->embed) : e->cls;
	}
	return "reserved"; /* outside 2000::/3 and named nowhere above */
}

/* The address bytes of sa (4 or 16) into out; its family, or 0. */
static int addr_bytes(const struct sockaddr *sa, uint8_t out[16])
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		memcpy(out, &in.sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		memcpy(out, &in6.sin6_addr, 16);
		return AF_INET6;
	}
	return 0;
}

const char *egress_addr_class(const struct sockaddr *sa)
{
	uint8_t a[16];

	switch (addr_bytes(sa, a)) {
	case AF_INET:
		return v4_class(a);
	case AF_INET6:
		return v6_class(a);
	default:
		return "unsupported";
	}
}

static bool in_ranges(int family, const uint8_t *a, const struct egress_ranges *allow)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	for (size_t i = 0; allow && i < allow->n; i++) {
		const struct egress_range *r = &allow->r[i];

		if (r->family == family && prefix_match(a, r->addr, r->prefix))
			return true;
		/* ::ffff:a.b.c.d reaches a.b.c.d: an IPv4 range covers it. */
		if (r->family == AF_INET && family == AF_INET6 && memcmp(a, mapped, 12) == 0 &&
		    prefix_match(a + 12, r->addr, r->prefix))
			return true;
	}
	return false;
}

bool egress_addr_allowed(const struct sockaddr *sa, const struct egress_ranges *allow)
{
	uint8_t a[16];
	int family = addr_bytes(sa, a);

	if (family == 0)
		return false;
	if (in_ranges(family, a, allow))
		return true;
	return (family == AF_INET ? v4_class(a) : v6_class(a)) == NULL;
}

static void range_err(char *err, size_t cap, size_t idx, const char *p, size_t n, const char *msg)
{
	if (cap == 0)
		return;
	if (idx > 0)
		snprintf(err, cap, "allow_ranges: range %zu (\"%.*s\"): %s", idx,
		         (int)(n < RANGE_SHOWN_MAX ? n : RANGE_SHOWN_MAX), p, msg);
	else
		snprintf(err, cap, "allow_ranges: %s", msg);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One "addr[/len]" (trimmed, n > 0) into r; NULL, or why it is refused. */
static const char *parse_range(const char *p, size_t n, struct egress_range *r)
{
	char text[INET6_ADDRSTRLEN];
	const char *slash = memchr(p, '/', n);
	size_t alen = slash ? (size_t)(slash - p) : n;
	unsigned max;
	uint64_t plen;

	if (alen == 0 || alen >= sizeof(text))
		return "not an IPv4 or IPv6 address";
	memcpy(text, p, alen);
	text[alen] = '\0';
	memset(r, 0, sizeof(*r));
	if (memchr(text, ':', alen) ? inet_pton(AF_INET6, text, r->addr) == 1
	                            : inet_pton(AF_INET, text, r->addr) == 1)
		r->family = memchr(text, ':', alen) ? AF_INET6 : AF_INET;
	else
		return "not an IPv4 or IPv6 address";
	max = r->family == AF_INET ? 32 : 128;
	if (!slash) {
		plen = max;
	} else if (parse_uint64(slash + 1, n - alen - 1, max, &plen) != 0) {
		return r->family == AF_INET ? "prefix length must be 0 to 32"
		                            : "prefix length must be 0 to 128";
	}
	r->prefix = (unsigned)plen;
	for (unsigned bit = r->prefix; bit < max; bit++)
		if (r->addr[bit / 8] & (0x80u >> (bit % 8)))
			return "address has bits set past the prefix length";
	return NULL;
}

int egress_ranges_parse(const char *list, struct egress_ranges **out, char *err, size_t cap)
{
	struct egress_ranges *rs;
	size_t len, pos = 0;

	*out = NULL;
	len = list ? strnlen(list, EGRESS_RANGES_TEXT_MAX + 1) : 0;
	if (len > EGRESS_RANGES_TEXT_MAX) {
		range_err(err, cap, 0, NULL, 0, "longer than 4096 bytes");
		return -1;
	}
	rs = xcalloc(1, sizeof(*rs));
	while (len > 0) {
		const char *end = memchr(list + pos, ',', len - pos);
		size_t stop = end ? (size_t)(end - list) : len;
		size_t a = pos, b = stop;
		const char *why;

		while (a < b && is_blank(list[a]))
			a++;
		while (b > a && is_blank(list[b - 1]))
			b--;
		if (a == b && !end && rs->n == 0)
			break; /* only blanks: an empty list */
		if (rs->n == EGRESS_RANGES_MAX) {
			range_err(err, cap, 0, NULL, 0, "more than 64 ranges");
			goto fail;
		}
		why = a == b ? "empty" : parse_range(list + a, b - a, &rs->r[rs->n]);
		if (why) {
			range_err(err, cap, rs->n + 1, list + a, b - a, why);
			goto fail;
		}
		rs->n++;
		if (!end)
			break;
		pos = stop + 1;
	}
	*out = rs;
	return 0;
fail:
	egress_ranges_free(rs);
	return -1;
}

void egress_ranges_free(struct egress_ranges *r)
{
	free(r);
}

size_t egress_ranges_count(const struct egress_ranges *r)
{
	return r ? r->n : 0;
}

/* A URL's host: 0 (a name, or an allowed literal), -1 (a refused literal) or -2 (malformed). */
static int check_host(const char *host, const struct egress_ranges *allow)
{
	char text[INET6_ADDRSTRLEN];
	size_t n = strlen(host);
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;

	memset(&u, 0, sizeof(u));
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(text))
			return -2;
		memcpy(text, host + 1, n - 2);
		text[n - 2] = '\0';
		if (inet_pton(AF_INET6, text, &u.in6.sin6_addr) != 1)
			return -2; /* brackets hold only IPv6 literals */
		u.in6.sin6_family = AF_INET6;
	} else if (inet_pton(AF_INET, host, &u.in.sin_addr) == 1) {
		u.in.sin_family = AF_INET;
	} else {
		return 0; /* a name: checked where it is connected to */
	}
	return egress_addr_allowed(&u.sa, allow) ? 0 : -1;
}

int egress_check_url(const char *url, const struct egress_ranges *allow, const char **reason)
{
	const char *why = NULL;
	CURLU *h = NULL;
	char *part = NULL;
	CURLUcode rc;
	int host_rc;

	if (!url) {
		why = "invalid";
		goto out;
	}
	if (strnlen(url, EGRESS_URL_MAX + 1) > EGRESS_URL_MAX) {
		why = "too_long";
		goto out;
	}
	h = curl_url();
	if (!h)
		fatal("curl_url: out of memory");
	rc = curl_url_set(h, CURLUPART_URL, url, 0);
	if (rc == CURLUE_UNSUPPORTED_SCHEME) {
		why = "https_required";
		goto out;
	}
	if (rc != CURLUE_OK) {
		why = "invalid";
		goto out;
	}
	if (curl_url_get(h, CURLUPART_SCHEME, &part, 0) != CURLUE_OK ||
	    strcmp(part, "https") != 0) {
		why = "https_required";
		goto out;
	}
	static const CURLUPart userinfo[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
	for (size_t i = 0; i < sizeof(userinfo) / sizeof(userinfo[0]); i++) {
		curl_free(part);
		part = NULL;
		if (curl_url_get(h, userinfo[i], &part, 0) == CURLUE_OK) {
			why = "userinfo";
			goto out;
		}
	}
	curl_free(part);
	part = NULL;
	if (curl_url_get(h, CURLUPART_ZONEID, &part, 0) == CURLUE_OK) {
		why = "invalid";
		goto out;
	}
	curl_free(part);
	part = NULL;
	if (curl_url_get(h, CURLUPART_HOST, &part, 0) != CURLUE_OK || part[0] == '\0') {
		why = "invalid";
		goto out;
	}
	host_rc = check_host(part, allow);
	if (host_rc != 0)
		why = host_rc == -1 ? "private_address" : "invalid";
out:
	curl_free(part);
	curl_url_cleanup(h);
	if (reason)
		*reason = why;
	return why ? -1 : 0;
}

curl_socket_t egress_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct egress_socket_guard *g = clientp;
	(void)purpose;
	if (g->refused || !egress_addr_allowed(&address->addr, g->allow)) {
		/* Once one address of the host is refused, none is used (rebinding tricks). */
		g->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

void egress_curl_get(CURL *h, const char *url, long timeout_ms, const char *ca_file,
                     struct egress_socket_guard *g)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, egress_open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g);
	if (ca_file && ca_file[0]) {
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
}

void egress_curl_post(CURL *h, const char *url, long timeout_ms, const char *ca_file,
                      struct egress_socket_guard *g)
{
	egress_curl_get(h, url, timeout_ms, ca_file, g);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
}
