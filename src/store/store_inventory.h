/*
 * store_inventory.h: what the key inventory (INCIDENT.md "Key inventory",
 * app/inventory.h) reads about a page of an organisation's keys besides the
 * key rows themselves (store_key_list): their request counts and the region
 * they were last used from.
 *
 * Both come from the usage rollups the request-log writer keeps
 * (store_usage.h): the counts from usage_hour, the last region from
 * usage_key_seen; never from raw request-log rows, so the cost follows the
 * page's keys and hours, not the size of the request log. Counts are of
 * the requests the keys authenticated: refused attempts that named a key
 * are not its use.
 */
#ifndef PORTCULLIS_STORE_STORE_INVENTORY_H
#define PORTCULLIS_STORE_STORE_INVENTORY_H

#include "store/store.h"

#include <stdint.h>

/** What the rollups say about one key. */
struct inventory_usage {
	int64_t requests_recent; /* in the hours from since_recent on */
	int64_t requests_long;   /* in the hours from since_long on */
	char last_region[8];     /* the region of its latest sighting; "" when none is known */
	int64_t last_region_at;  /* when it was last seen there (ms); -1 when none */
};

/**
 * The usage of keys[0..n) of org_id (sorted by id ascending, as
 * store_key_list returns them) into out[0..n), out[i] for keys[i]: the
 * requests in the usage_hour buckets starting at or after since_recent and
 * since_long (ms; since_long <= since_recent), and the region with the
 * latest last_seen in usage_key_seen. Two statements, each bounded by the
 * page's first and last id: one aggregate over usage_hour, one read of
 * usage_key_seen. n == 0 reads nothing.
 */
int store_inventory_usage(struct store *st, const char *org_id, const struct store_key *keys, int n,
                          int64_t since_recent, int64_t since_long, struct inventory_usage *out);

#endif
