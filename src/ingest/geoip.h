/*
 * geoip.h: the country of a client address, from a MaxMind-format (MMDB)
 * country database, for the request log's `region` and ingest events. The
 * address is used for the lookup only: callers must not keep or log it.
 *
 * Reads both schemas in use: a top-level `country_code` (ip-location-db,
 * shipped by scripts/deps.sh) and `country.iso_code` (GeoLite2/GeoIP2).
 */
#ifndef PORTCULLIS_INGEST_GEOIP_H
#define PORTCULLIS_INGEST_GEOIP_H

#include <stdbool.h>
#include <stddef.h>

struct geoip;

/**
 * Open (memory-map) the database at path. Returns NULL with a reason in err
 * (cap bytes) when it is missing or not an MMDB file. Logs the database's
 * type and build date.
 */
struct geoip *geoip_open(const char *path, char *err, size_t cap);

/** Unmap and free. No lookup may be running. NULL is a no-op. */
void geoip_close(struct geoip *g);

/**
 * Write the ISO 3166-1 alpha-2 code (upper case, NUL-terminated) of ip, a
 * numeric IPv4 or IPv6 address ("::ffff:a.b.c.d" counts as IPv4), to out and
 * return true. Returns false, leaving out alone, when g is NULL, ip is not a
 * numeric address, the address is private, loopback, link-local, multicast,
 * documentation or otherwise reserved (databases are known to give such
 * ranges a country), or the database does not know it. Thread-safe: any
 * number of threads may look up at once; no allocation, no I/O beyond the
 * mapped file.
 */
bool geoip_country(struct geoip *g, const char *ip, char out[3]);

#endif
