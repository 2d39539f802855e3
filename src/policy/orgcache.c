/*
 * orgcache.c: a fixed-size open-addressing table of organisation rows under
 * one mutex (see orgcache.h). Organisations are few; the lock is held for a
 * copy of one row. A slot is empty, fresh, or stale: invalidated by a
 * change, so no longer served by orgcache_get, but kept for
 * orgcache_get_stale while the store cannot be read.
 */
#include "policy/orgcache.h"

#include "core/alloc.h"
#include "core/siphash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum slot_state { SLOT_EMPTY, SLOT_FRESH, SLOT_STALE };

struct orgcache {
	pthread_mutex_t lock;
	struct store_org *rows;
	unsigned char *state; /* enum slot_state */
	size_t n;
};

static size_t slot_of(const struct orgcache *oc, const char *id)
{
	return (size_t)(str_hash(id) % oc->n);
}

struct orgcache *orgcache_create(size_t max_entries)
{
	struct orgcache *oc = xcalloc(1, sizeof *oc);
	pthread_mutex_init(&oc->lock, NULL);
	oc->n = max_entries ? max_entries : 1;
	oc->rows = xcalloc(oc->n, sizeof *oc->rows);
	oc->state = xcalloc(oc->n, sizeof *oc->state);
	return oc;
}

void orgcache_destroy(struct orgcache *oc)
{
	if (!oc)
		return;
	pthread_mutex_destroy(&oc->lock);
	free(oc->rows);
	free(oc->state);
	free(oc);
}

/* Linear probing over at most 8 slots; a direct-mapped miss is just a miss. */
static long find(const struct orgcache *oc, const char *id)
{
	size_t s = slot_of(oc, id);
	for (size_t i = 0; i < 8 && i < oc->n; i++) {
		size_t k = (s + i) % oc->n;
		if (oc->state[k] != SLOT_EMPTY && strcmp(oc->rows[k].id, id) == 0)
			return (long)k;
	}
	return -1;
}

static bool get(struct orgcache *oc, const char *org_id, bool stale_too, struct store_org *out)
{
	pthread_mutex_lock(&oc->lock);
	long k = find(oc, org_id);
	bool hit = k >= 0 && (stale_too || oc->state[k] == SLOT_FRESH);
	if (hit)
		*out = oc->rows[k];
	pthread_mutex_unlock(&oc->lock);
	return hit;
}

bool orgcache_get(struct orgcache *oc, const char *org_id, struct store_org *out)
{
	return get(oc, org_id, false, out);
}

bool orgcache_get_stale(struct orgcache *oc, const char *org_id, struct store_org *out)
{
	return get(oc, org_id, true, out);
}

void orgcache_put(struct orgcache *oc, const struct store_org *org)
{
	pthread_mutex_lock(&oc->lock);
	long k = find(oc, org->id);
	if (k < 0) {
		size_t s = slot_of(oc, org->id);
		k = (long)s;
		for (size_t i = 0; i < 8 && i < oc->n; i++)
			if (oc->state[(s + i) % oc->n] == SLOT_EMPTY) {
				k = (long)((s + i) % oc->n);
				break;
			}
	}
	oc->rows[k] = *org;
	oc->state[k] = SLOT_FRESH;
	pthread_mutex_unlock(&oc->lock);
}

void orgcache_invalidate(struct orgcache *oc, const char *org_id)
{
	pthread_mutex_lock(&oc->lock);
	long k = find(oc, org_id);
	if (k >= 0)
		oc->state[k] = SLOT_STALE;
	pthread_mutex_unlock(&oc->lock);
}

void orgcache_clear(struct orgcache *oc)
{
	pthread_mutex_lock(&oc->lock);
	for (size_t k = 0; k < oc->n; k++)
		if (oc->state[k] == SLOT_FRESH)
			oc->state[k] = SLOT_STALE;
	pthread_mutex_unlock(&oc->lock);
}
