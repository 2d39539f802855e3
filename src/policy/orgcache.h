/*
 * orgcache.h: organisations' rows in memory for the hot path (the rate-limit
 * override of check 7). Bounded; entries are dropped on change notices and
 * re-read from the store on the next miss (off the worker loop).
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
/** Cache a row (replacing an older one; when full, an arbitrary entry goes). */
void orgcache_put(struct orgcache *oc, const struct store_org *org);
void orgcache_invalidate(struct orgcache *oc, const char *org_id);
void orgcache_clear(struct orgcache *oc);

#endif
