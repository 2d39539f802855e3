/*
 * egress.h: the SSRF guard for outbound calls to URLs that tenants chose
 * (webhook deliveries), WEBHOOKS.md "Egress guard".
 *
 * Two checks. When an endpoint URL is stored, egress_check_url refuses what
 * is wrong on its face (not https, userinfo, too long, a literal IP in a
 * refused range, including curl's odd IPv4 spellings such as 0x7f.1, since
 * the host is normalised by curl's own URL parser). When a delivery
 * connects, the engine's CURLOPT_OPENSOCKETFUNCTION calls
 * egress_addr_allowed on the very address curl is about to connect to, so
 * what is checked is what is connected (no DNS-rebinding window).
 *
 * Refused classes: unspecified, loopback, private (RFC 1918, fc00::/7),
 * link_local, metadata (169.254.169.254, fd00:ec2::254), cgnat, reserved,
 * documentation, multicast, broadcast, discard, and IPv6 forms that embed a
 * refused IPv4 address (mapped, compatible, NAT64, 6to4, Teredo). An
 * operator's allow ranges ([webhooks] allow_ranges) win over refusal.
 */
#ifndef PORTCULLIS_DELIVERY_EGRESS_H
#define PORTCULLIS_DELIVERY_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <curl/curl.h>

/** Most CIDR ranges in an allow list. */
#define EGRESS_RANGES_MAX 64
/** Longest allow-list text accepted. */
#define EGRESS_RANGES_TEXT_MAX 4096
/** Longest endpoint URL accepted, in bytes. */
#define EGRESS_URL_MAX 2048

/** A parsed allow list (opaque, immutable once parsed: threads may share it). */
struct egress_ranges;

/**
 * Parse a comma-separated list of CIDR ranges ("127.0.0.0/8, fd12::/16";
 * an address without "/len" is a single host), IPv4 and IPv6, spaces or
 * tabs around each, at most EGRESS_RANGES_MAX ranges and
 * EGRESS_RANGES_TEXT_MAX bytes. Bits set past the prefix length are an
 * error. NULL or "" gives an empty list. Returns 0 with *out (owned by the
 * caller: egress_ranges_free), or -1 with *out NULL and a message naming
 * the offending range in err (cap bytes; may be NULL when cap is 0).
 */
int egress_ranges_parse(const char *list, struct egress_ranges **out, char *err, size_t cap);

/** Free a list. NULL is ignored. */
void egress_ranges_free(struct egress_ranges *r);

/** Number of ranges in a list (0 for NULL). */
size_t egress_ranges_count(const struct egress_ranges *r);

/**
 * NULL when the address (AF_INET or AF_INET6; the port is ignored) is
 * public; else its class as a static string: "unspecified", "loopback",
 * "private", "link_local", "metadata", "cgnat", "reserved",
 * "documentation", "multicast", "broadcast", "discard", or "unsupported"
 * (NULL sa or another family). An IPv6 address that embeds a refused IPv4
 * address gets the class of that IPv4 address (for the local-use NAT64
 * prefix 64:ff9b:1::/48, that of its /96 layout, or "reserved" when any
 * other RFC 6052 layout decodes to a refused address). Outside 2000::/3,
 * what is not named is "reserved".
 */
const char *egress_addr_class(const struct sockaddr *sa);

/**
 * True when a connection to the address may be made: it lies in one of the
 * allow ranges (allow may be NULL; an IPv4 range also matches the
 * ::ffff:a.b.c.d form of its addresses, which reaches the same host), or
 * egress_addr_class gives NULL.
 */
bool egress_addr_allowed(const struct sockaddr *sa, const struct egress_ranges *allow);

/**
 * Check an endpoint URL. 0 when acceptable, else -1 with *reason (a static
 * string): "too_long" (over EGRESS_URL_MAX bytes), "invalid" (NULL, not a
 * URL curl accepts, no host, or an IPv6 zone id), "https_required" (any
 * other scheme), "userinfo" (a user, password or login options, even
 * empty), "private_address" (the host, as curl normalises it, is an IP
 * literal that egress_addr_allowed refuses). Host names pass here: their
 * addresses are checked at connect time. reason may be NULL.
 */
int egress_check_url(const char *url, const struct egress_ranges *allow, const char **reason);

/** One libcurl transfer's connect-time egress check (egress_open_socket's clientp). */
struct egress_socket_guard {
	const struct egress_ranges *allow; /**< borrowed; NULL: nothing beyond the public classes */
	bool refused; /**< set once an address was refused; then no address of the host is used */
};

/**
 * CURLOPT_OPENSOCKETFUNCTION with CURLOPT_OPENSOCKETDATA a struct
 * egress_socket_guard: opens the socket (close-on-exec) only when
 * egress_addr_allowed passes for the very address curl is about to connect
 * to and no address of the transfer was refused before; else sets
 * guard->refused and returns CURL_SOCKET_BAD (curl then fails the transfer
 * with CURLE_COULDNT_CONNECT).
 */
curl_socket_t egress_open_socket(void *clientp, curlsocktype purpose,
                                 struct curl_sockaddr *address);

/**
 * The settings every POST to a tenant- or operator-chosen https URL shares:
 * url, https only (redirects too, never followed), no proxy, no signals,
 * timeout_ms for the connect and the whole transfer, the egress guard g
 * (g->allow set by the caller) on every connect, and ca_file (NULL or "":
 * the system's CAs) in place of the system's CAs.
 */
void egress_curl_post(CURL *h, const char *url, long timeout_ms, const char *ca_file,
                      struct egress_socket_guard *g);

/** egress_curl_post's settings for a GET (discovery documents and key sets). */
void egress_curl_get(CURL *h, const char *url, long timeout_ms, const char *ca_file,
                     struct egress_socket_guard *g);

#endif
