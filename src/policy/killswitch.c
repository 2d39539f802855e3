/*
 * killswitch.c: the in-memory kill-switch set (see killswitch.h). A
 * read-write lock: readers on every request, a writer only after a change.
 * An empty set is the common case and costs one atomic load.
 */
#include "policy/killswitch.h"

#include "core/alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct killset {
	pthread_rwlock_t lock;
	struct store_kill *kills;
	int n;
	atomic_int count;
};

struct killset *killset_create(void)
{
	struct killset *ks = xcalloc(1, sizeof *ks);
	pthread_rwlock_init(&ks->lock, NULL);
	return ks;
}

void killset_destroy(struct killset *ks)
{
	if (!ks)
		return;
	pthread_rwlock_destroy(&ks->lock);
	free(ks->kills);
	free(ks);
}

void killset_load(struct killset *ks, const struct store_kill *kills, int n)
{
	struct store_kill *copy = xcalloc((size_t)n + 1, sizeof *copy);
	if (n)
		memcpy(copy, kills, (size_t)n * sizeof *copy);
	pthread_rwlock_wrlock(&ks->lock);
	free(ks->kills);
	ks->kills = copy;
	ks->n = n;
	atomic_store(&ks->count, n);
	pthread_rwlock_unlock(&ks->lock);
}

static const struct store_kill *find(const struct killset *ks, const char *scope,
                                     const char *target)
{
	for (int i = 0; i < ks->n; i++)
		if (strcmp(ks->kills[i].scope, scope) == 0 &&
		    strcmp(ks->kills[i].target_id, target) == 0)
			return &ks->kills[i];
	return NULL;
}

enum kill_scope killset_check(struct killset *ks, const char *org_id, const char *key_id,
                              bool root_key, struct store_kill *out)
{
	if (atomic_load_explicit(&ks->count, memory_order_acquire) == 0)
		return KILL_NONE;
	enum kill_scope r = KILL_NONE;
	const struct store_kill *k = NULL;
	pthread_rwlock_rdlock(&ks->lock);
	if (!root_key && (k = find(ks, "global", "")))
		r = KILL_GLOBAL;
	else if (!root_key && org_id && *org_id && (k = find(ks, "organization", org_id)))
		r = KILL_ORG;
	else if ((k = find(ks, "key", key_id)))
		r = KILL_KEY;
	if (k && out)
		*out = *k;
	pthread_rwlock_unlock(&ks->lock);
	return r;
}

bool killset_get(struct killset *ks, const char *scope, const char *target_id,
                 struct store_kill *out)
{
	pthread_rwlock_rdlock(&ks->lock);
	const struct store_kill *k = find(ks, scope, target_id);
	if (k && out)
		*out = *k;
	pthread_rwlock_unlock(&ks->lock);
	return k != NULL;
}

const char *kill_scope_name(enum kill_scope s)
{
	switch (s) {
	case KILL_GLOBAL:
		return "global";
	case KILL_ORG:
		return "organization";
	case KILL_KEY:
		return "key";
	default:
		return "none";
	}
}
