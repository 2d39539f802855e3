/*
 * orgcache.h: organisations' rows in memory for the hot path (the rate-limit
 * override of check 7). Bounded; entries are marked stale on change
 * notices and re-read from the store on the next request (off the worker
 * loop); a stale row answers only while the store cannot be read, so a
 * change that lands just before an outage does not turn verified keys into
 * 503s (the outage's stale grace, gateway/authn.c, bounds how long).
 */
#ifndef PORTCULLIS_POLICY_ORGCACHE_H
#define PORTCULLIS_POLICY_ORGCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

struct orgcache;

struct orgcache *orgcache_create(size_t max_entries);
void orgcache_destroy(struct orgcache *oc);
/** Copy the cached row into out; false on a miss. */
bool orgcache_get(struct orgcache *oc, const char *org_id, struct store_org *out);
/** Copy the cached row, fresh or stale, into out: only when the store cannot be read. */
bool orgcache_get_stale(struct orgcache *oc, const char *org_id, struct store_org *out);
/** Cache a row (replacing an older one; when full, an arbitrary entry goes). */
void orgcache_put(struct orgcache *oc, const struct store_org *org);
/** Mark one row, or every row, stale. */
void orgcache_invalidate(struct orgcache *oc, const char *org_id);
void orgcache_clear(struct orgcache *oc);

#endif
