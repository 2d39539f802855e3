/*
 * upstream.c: the forwarding client's public face (see upstream.h) and the
 * header rules both transports share (see upstream_int.h).
 *
 * Request headers: hop-by-hop fields (RFC 9110 7.6.1) and the names the
 * client's Connection header lists are dropped, and so are Authorization,
 * client-sent X-Portcullis-*, Host, Content-Length, Expect, X-Request-Id and
 * X-Forwarded-For: Portcullis sets its own. These names are compared with
 * '_' and '-' treated alike, because CGI/WSGI servers (and Rack, Puma
 * before CVE-2024-45614) turn both into '_': a client's
 * "X_Portcullis_Org_Id" would otherwise reach the application merged with
 * the real X-Portcullis-Org-Id. A value with CR or LF is never sent
 * (upstream_field_ok, both clients). X-Forwarded-For is rebuilt the way
 * nginx's $proxy_add_x_forwarded_for does it (upstream_forwarded_for).
 * Cookie loses Portcullis's own cookies (upstream_request_value): a console
 * session is a credential of Portcullis, never the application's.
 * Response headers: hop-by-hop and Connection-listed fields,
 * Content-Length, Date and X-Request-Id are dropped; the server adds its
 * own.
 */
#include "http/upstream.h"

#include "core/alloc.h"
#include "http/resolve.h"
#include "core/str.h"
#include "http/upstream_int.h"

#include <string.h>
#include <strings.h>

/* name[0..n) equals the lower-case literal lit, ignoring ASCII case. */
static bool name_is(const char *name, size_t n, const char *lit, size_t lit_len)
{
	return n == lit_len && strncasecmp(name, lit, n) == 0;
}
#define NAME_IS(name, n, lit) name_is(name, n, lit, sizeof lit - 1)

/* Hop-by-hop names (RFC 9110 7.6.1 and the obsolete ones still seen), by length first. */
static bool hop_by_hop_n(const char *name, size_t n)
{
	switch (n) {
	case 2:
		return NAME_IS(name, n, "te");
	case 7:
		return NAME_IS(name, n, "upgrade") || NAME_IS(name, n, "trailer");
	case 10:
		return NAME_IS(name, n, "connection") || NAME_IS(name, n, "keep-alive");
	case 16:
		return NAME_IS(name, n, "proxy-connection");
	case 17:
		return NAME_IS(name, n, "transfer-encoding");
	case 18:
		return NAME_IS(name, n, "proxy-authenticate");
	case 19:
		return NAME_IS(name, n, "proxy-authorization");
	default:
		return false;
	}
}

/* True when the comma-separated list names name (case-insensitive). */
static bool listed(const char *list, const char *name, size_t nl)
{
	if (!list)
		return false;
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t m = strcspn(p, ", \t");
		if (m == nl && strncasecmp(p, name, nl) == 0)
			return true;
		p += m;
	}
	return false;
}

/*
 * The names Portcullis sets or that frame the message, on a copy of the
 * name with '_' read as '-' (case is ignored by the comparisons). Longer
 * names than the copy holds are compared on their first bytes for the
 * X-Portcullis- prefix only: no other reserved name is that long.
 */
static bool reserved_request_header(const char *name, size_t n)
{
	char folded[32] = {0};
	size_t m = n < sizeof folded ? n : sizeof folded;
	for (size_t i = 0; i < m; i++)
		folded[i] = name[i] == '_' ? '-' : name[i];
	if (m >= 13 && strncasecmp(folded, "x-portcullis-", 13) == 0)
		return true;
	if (n > sizeof folded)
		return false;
	return hop_by_hop_n(folded, n) || NAME_IS(folded, n, "host") ||
	       NAME_IS(folded, n, "expect") || NAME_IS(folded, n, "authorization") ||
	       NAME_IS(folded, n, "content-length") || NAME_IS(folded, n, "x-request-id") ||
	       NAME_IS(folded, n, "x-forwarded-for");
}

bool upstream_pass_request_header(const char *name, const char *connection)
{
	size_t n = strlen(name);
	if (reserved_request_header(name, n))
		return false;
	return !listed(connection, name, n);
}

#define OWN_COOKIE_PREFIX "__Host-pcl_"

const char *upstream_request_value(struct arena *a, const char *name, const char *value)
{
	if (strcasecmp(name, "cookie") != 0 || !strstr(value, OWN_COOKIE_PREFIX))
		return value;
	size_t len = strlen(value);
	char *out = arena_alloc(a, 2 * len + 1); /* each pair may gain a "; " */
	size_t n = 0;
	for (const char *p = value; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		size_t pair = strcspn(p, ";");
		if (pair && strncmp(p, OWN_COOKIE_PREFIX, sizeof OWN_COOKIE_PREFIX - 1) != 0) {
			if (n) {
				memcpy(out + n, "; ", 2);
				n += 2;
			}
			memcpy(out + n, p, pair);
			n += pair;
		}
		p += pair;
	}
	out[n] = '\0';
	return n ? out : NULL;
}

bool upstream_field_ok(const char *name, const char *value)
{
	return !strpbrk(name, "\r\n") && !strpbrk(value, "\r\n");
}

/* The client's X-Forwarded-For field lines, trimmed, or NULL for any other field. */
static const char *forwarded_for_value(const char *name, const char *value)
{
	if (strcasecmp(name, "X-Forwarded-For") != 0 || strpbrk(value, "\r\n"))
		return NULL;
	while (*value == ' ' || *value == '\t')
		value++;
	return *value ? value : NULL;
}

static void size_forwarded_for(void *arg, const char *name, const char *value)
{
	size_t *total = arg;
	const char *v = forwarded_for_value(name, value);
	if (v)
		*total += strlen(v) + 2;
}

static void join_forwarded_for(void *arg, const char *name, const char *value)
{
	struct strbuf *out = arg;
	const char *v = forwarded_for_value(name, value);
	if (!v)
		return;
	if (out->len)
		strbuf_put(out, ", ", 2);
	strbuf_puts(out, v);
}

const char *upstream_forwarded_for(struct http_request *req)
{
	if (!req->peer_ip[0])
		return NULL;
	if (!req->peer_trusted)
		return req->peer_ip; /* what an untrusted peer claims is not passed on */
	/* The client's field lines are bounded by [server] max_header_bytes. */
	size_t cap = sizeof req->peer_ip + 3;
	http_each_header(req, size_forwarded_for, &cap);
	char *data = arena_alloc(&req->arena, cap);
	struct strbuf out;
	strbuf_init(&out, data, cap);
	http_each_header(req, join_forwarded_for, &out);
	if (out.len)
		strbuf_put(&out, ", ", 2);
	strbuf_puts(&out, req->peer_ip);
	return out.data;
}

void resp_headers_init(struct resp_headers *rh, struct arena *a)
{
	rh->arena = a;
	resp_headers_reset(rh);
}

void resp_headers_reset(struct resp_headers *rh)
{
	rh->head = NULL;
	rh->tail = &rh->head;
	rh->connection = NULL;
	rh->content_length = -1;
}

/* A Content-Length value that is all digits (the parser already refused conflicts). */
static int64_t length_value(const char *v, size_t n)
{
	uint64_t x;
	if (n > 18 || parse_uint64(v, n, INT64_MAX, &x) != 0)
		return -1;
	return (int64_t)x;
}

void resp_headers_add(struct resp_headers *rh, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
	if (NAME_IS(name, name_len, "connection")) {
		/* The names it lists are hop-by-hop too; dropped in resp_headers_finish. */
		rh->connection = rh->connection ? arena_printf(rh->arena, "%s,%.*s", rh->connection,
		                                               (int)value_len, value)
		                                : arena_strndup(rh->arena, value, value_len);
		return;
	}
	if (NAME_IS(name, name_len, "content-length")) {
		/* The server frames the body itself; kept only to answer HEAD truthfully. */
		rh->content_length = length_value(value, value_len);
		return;
	}
	if (hop_by_hop_n(name, name_len) || NAME_IS(name, name_len, "date") ||
	    NAME_IS(name, name_len, "x-request-id"))
		return;
	struct http_header *h = arena_alloc(rh->arena, sizeof *h);
	h->name = arena_strndup(rh->arena, name, name_len);
	h->value = arena_strndup(rh->arena, value, value_len);
	h->next = NULL;
	*rh->tail = h;
	rh->tail = &h->next;
}

struct http_header *resp_headers_finish(struct resp_headers *rh)
{
	if (!rh->connection)
		return rh->head;
	struct http_header **pp = &rh->head;
	while (*pp) {
		if (listed(rh->connection, (*pp)->name, strlen((*pp)->name)))
			*pp = (*pp)->next;
		else
			pp = &(*pp)->next;
	}
	return rh->head;
}

struct upstream *upstream_create(struct http_worker *w)
{
	struct upstream *up = xcalloc(1, sizeof *up);
	up->w = w;
	up->h1 = h1_client_create(w);
	return up;
}

void upstream_destroy(struct upstream *up)
{
	if (!up)
		return;
	h1_client_destroy(up->h1);
	curl_client_destroy(up->curl);
	free(up);
}

void upstream_forward(struct upstream *up, struct http_request *req,
                      const struct upstream_target *t, const struct http_header *extra,
                      upstream_done_fn done)
{
	if (h1_client_forward(up->h1, req, t, extra, done))
		return;
	if (!up->curl)
		up->curl = curl_client_create(up->w);
	curl_client_forward(up->curl, req, t, extra, done);
}

void upstream_prepare(const struct config *cfg)
{
	if (cfg->upstream_url[0])
		h1_client_prepare(cfg->upstream_url);
	for (size_t i = 0; i < cfg->n_routes; i++)
		h1_client_prepare(cfg->routes[i].upstream);
}

void upstream_shutdown(void)
{
	resolve_shutdown();
}
