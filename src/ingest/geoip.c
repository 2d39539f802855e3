/*
 * geoip.c: country lookups over libmaxminddb (see geoip.h).
 *
 * The database is memory-mapped once; libmaxminddb lookups on an open
 * MMDB_s only read it, so worker threads share one handle without a lock.
 * Addresses are parsed here with inet_pton (numeric only, never a resolver
 * call) so that reserved ranges can be refused before the lookup: the
 * ip-location-db data answers "AU" for 192.168.0.0/16 and 172.16.0.0/12 and
 * "JP" for 2001:db8::/32, which would be wrong in every request log.
 */
#include "ingest/geoip.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct geoip {
	MMDB_s mmdb;
};

struct geoip *geoip_open(const char *path, char *err, size_t cap)
{
	struct geoip *g = xcalloc(1, sizeof *g);
	int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->mmdb);
	if (rc != MMDB_SUCCESS) {
		if (rc == MMDB_IO_ERROR)
			snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
		else
			snprintf(err, cap, "cannot open %s: %s", path, MMDB_strerror(rc));
		free(g);
		return NULL;
	}
	char built[32];
	clock_format_rfc3339((int64_t)g->mmdb.metadata.build_epoch * 1000, built, sizeof built);
	log_info("geoip: %s database (IPv%u), built %s",
	         g->mmdb.metadata.database_type ? g->mmdb.metadata.database_type : "unnamed",
	         (unsigned)g->mmdb.metadata.ip_version, built);
	return g;
}

void geoip_close(struct geoip *g)
{
	if (!g)
		return;
	MMDB_close(&g->mmdb);
	free(g);
}

/* True for IPv4 addresses that are not globally routable unicast (RFC 6890). */
static bool v4_reserved(const uint8_t a[4])
{
	switch (a[0]) {
	case 0:   /* this network */
	case 10:  /* private */
	case 127: /* loopback */
		return true;
	case 100:
		return (a[1] & 0xc0) == 64; /* 100.64.0.0/10 shared address space */
	case 169:
		return a[1] == 254; /* link-local */
	case 172:
		return (a[1] & 0xf0) == 16; /* 172.16.0.0/12 private */
	case 192:
		return (a[1] == 0 && (a[2] == 0 || a[2] == 2)) || /* IETF, TEST-NET-1 */
		       a[1] == 168;                               /* private */
	case 198:
		return (a[1] & 0xfe) == 18 ||       /* 198.18.0.0/15 benchmarking */
		       (a[1] == 51 && a[2] == 100); /* TEST-NET-2 */
	case 203:
		return a[1] == 0 && a[2] == 113; /* TEST-NET-3 */
	default:
		return a[0] >= 224; /* multicast, reserved, broadcast */
	}
}

/*
 * True for IPv6 addresses outside global unicast (2000::/3) and for the
 * documentation and Teredo prefixes inside it.
 */
static bool v6_reserved(const uint8_t a[16])
{
	if ((a[0] & 0xe0) != 0x20)
		return true;
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return true; /* 2001:db8::/32 documentation */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)
		return true; /* 2001::/32 Teredo */
	return false;
}

/* Copy a two-letter code out of an MMDB string; false unless it is [A-Za-z]{2}. */
static bool take_code(const MMDB_entry_data_s *d, char out[3])
{
	if (!d->has_data || d->type != MMDB_DATA_TYPE_UTF8_STRING || d->data_size != 2)
		return false;
	char c[2];
	for (int i = 0; i < 2; i++) {
		char ch = d->utf8_string[i];
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch < 'A' || ch > 'Z')
			return false;
		c[i] = ch;
	}
	if (c[0] == 'Z' && c[1] == 'Z') /* "unknown" by convention */
		return false;
	out[0] = c[0];
	out[1] = c[1];
	out[2] = '\0';
	return true;
}

bool geoip_country(struct geoip *g, const char *ip, char out[3])
{
	if (!g || !ip || strnlen(ip, INET6_ADDRSTRLEN) >= INET6_ADDRSTRLEN)
		return false;

	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	const struct sockaddr *sa;
	if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
		sa = (const struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
		const uint8_t *b = sin6.sin6_addr.s6_addr;
		/* Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d. */
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(b, mapped, sizeof mapped) == 0) {
			memcpy(&sin.sin_addr, b + 12, 4);
			sa = (const struct sockaddr *)&sin;
		} else if (v6_reserved(b)) {
			return false;
		} else {
			sa = (const struct sockaddr *)&sin6;
		}
	} else {
		return false;
	}
	if (sa->sa_family == AF_INET && v4_reserved((const uint8_t *)&sin.sin_addr))
		return false;

	int mmdb_err = MMDB_SUCCESS;
	MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&g->mmdb, sa, &mmdb_err);
	if (mmdb_err != MMDB_SUCCESS || !res.found_entry)
		return false;
	MMDB_entry_data_s d;
	if (MMDB_get_value(&res.entry, &d, "country_code", NULL) == MMDB_SUCCESS &&
	    take_code(&d, out))
		return true;
	if (MMDB_get_value(&res.entry, &d, "country", "iso_code", NULL) == MMDB_SUCCESS &&
	    take_code(&d, out))
		return true;
	return false;
}
