/*
 * orgcache.c: a fixed-size open-addressing table of organisation rows under
 * one mutex (see orgcache.h). Organisations are few; the lock is held for a
 * copy of one row.
 */
#include "policy/orgcache.h"

#include "core/alloc.h"
#include "core/siphash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct orgcache {
	pthread_mutex_t lock;
	struct store_org *rows;
	bool *used;
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
	oc->used = xcalloc(oc->n, sizeof *oc->used);
	return oc;
}

void orgcache_destroy(struct orgcache *oc)
{
	if (!oc)
		return;
	pthread_mutex_destroy(&oc->lock);
	free(oc->rows);
	free(oc->used);
	free(oc);
}

/* Linear probing over at most 8 slots; a direct-mapped miss is just a miss. */
static long find(const struct orgcache *oc, const char *id)
{
	size_t s = slot_of(oc, id);
	for (size_t i = 0; i < 8 && i < oc->n; i++) {
		size_t k = (s + i) % oc->n;
		if (oc->used[k] && strcmp(oc->rows[k].id, id) == 0)
			return (long)k;
	}
	return -1;
}

bool orgcache_get(struct orgcache *oc, const char *org_id, struct store_org *out)
{
	pthread_mutex_lock(&oc->lock);
	long k = find(oc, org_id);
	if (k >= 0)
		*out = oc->rows[k];
	pthread_mutex_unlock(&oc->lock);
	return k >= 0;
}

void orgcache_put(struct orgcache *oc, const struct store_org *org)
{
	pthread_mutex_lock(&oc->lock);
	long k = find(oc, org->id);
	if (k < 0) {
		size_t s = slot_of(oc, org->id);
		k = (long)s;
		for (size_t i = 0; i < 8 && i < oc->n; i++)
			if (!oc->used[(s + i) % oc->n]) {
				k = (long)((s + i) % oc->n);
				break;
			}
	}
	oc->rows[k] = *org;
	oc->used[k] = true;
	pthread_mutex_unlock(&oc->lock);
}

void orgcache_invalidate(struct orgcache *oc, const char *org_id)
{
	pthread_mutex_lock(&oc->lock);
	long k = find(oc, org_id);
	if (k >= 0)
		oc->used[k] = false;
	pthread_mutex_unlock(&oc->lock);
}

void orgcache_clear(struct orgcache *oc)
{
	pthread_mutex_lock(&oc->lock);
	memset(oc->used, 0, oc->n * sizeof *oc->used);
	pthread_mutex_unlock(&oc->lock);
}
