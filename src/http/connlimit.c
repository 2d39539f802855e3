/*
 * connlimit.c: open connections per client address (see connlimit.h).
 *
 * Open addressing with linear probing in a table of at least twice the
 * open connections it may hold, so a probe always ends at an empty slot;
 * an address whose last connection closes leaves by backward-shift
 * deletion (no tombstones, probes stay short). One mutex: it is taken once
 * when a connection is accepted and once when it closes.
 */
#include "http/connlimit.h"

#include "core/alloc.h"
#include "core/siphash.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	struct connlimit_key key;
	unsigned count; /* 0: empty */
};

struct connlimit {
	pthread_mutex_t lock;
	struct slot *slots;
	size_t mask;
	unsigned max_open, per_addr;
	unsigned used; /* slots in use: addresses with a connection */
};

struct connlimit *connlimit_create(unsigned max_open, unsigned per_addr)
{
	struct connlimit *t = xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->lock, NULL);
	t->max_open = max_open ? max_open : 1;
	t->per_addr = per_addr ? per_addr : 1;
	size_t n = 16;
	while (n < (size_t)t->max_open * 2)
		n *= 2;
	t->slots = xcalloc(n, sizeof *t->slots);
	t->mask = n - 1;
	return t;
}

void connlimit_destroy(struct connlimit *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->slots);
	free(t);
}

bool connlimit_key(const struct sockaddr *sa, socklen_t len, struct connlimit_key *out)
{
	memset(out, 0, sizeof *out);
	if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		out->b[10] = out->b[11] = 0xff; /* as IPv4-mapped IPv6 */
		memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			memcpy(out->b, a->s6_addr, 16);
		else
			memcpy(out->b, a->s6_addr, 8); /* the /64: one client's prefix */
		return true;
	}
	return false;
}

static size_t home(const struct connlimit *t, const struct connlimit_key *k)
{
	return (size_t)mem_hash(k->b, sizeof k->b) & t->mask;
}

/* The slot holding k, or the empty slot where it would go. Under the lock. */
static struct slot *find(struct connlimit *t, const struct connlimit_key *k)
{
	for (size_t i = home(t, k);; i = (i + 1) & t->mask) {
		struct slot *s = &t->slots[i];
		if (s->count == 0 || memcmp(s->key.b, k->b, sizeof k->b) == 0)
			return s;
	}
}

bool connlimit_acquire(struct connlimit *t, const struct connlimit_key *k)
{
	bool ok = false;
	pthread_mutex_lock(&t->lock);
	struct slot *s = find(t, k);
	if (s->count == 0 && t->used < t->max_open) {
		s->key = *k;
		s->count = 1;
		t->used++;
		ok = true;
	} else if (s->count > 0 && s->count < t->per_addr) {
		s->count++;
		ok = true;
	}
	pthread_mutex_unlock(&t->lock);
	return ok;
}

/* Empty slot i, moving later entries of its probe run back (under the lock). */
static void delete_at(struct connlimit *t, size_t i)
{
	for (size_t j = (i + 1) & t->mask; t->slots[j].count; j = (j + 1) & t->mask) {
		size_t h = home(t, &t->slots[j].key);
		/* The entry at j may fill the hole at i unless its home lies in (i, j]. */
		bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (!stays) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i].count = 0;
}

void connlimit_release(struct connlimit *t, const struct connlimit_key *k)
{
	pthread_mutex_lock(&t->lock);
	struct slot *s = find(t, k);
	if (s->count > 0 && --s->count == 0) {
		delete_at(t, (size_t)(s - t->slots));
		t->used--;
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned connlimit_count(struct connlimit *t, const struct connlimit_key *k)
{
	pthread_mutex_lock(&t->lock);
	unsigned n = find(t, k)->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned connlimit_addresses(struct connlimit *t)
{
	pthread_mutex_lock(&t->lock);
	unsigned n = t->used;
	pthread_mutex_unlock(&t->lock);
	return n;
}
