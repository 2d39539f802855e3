/*
 * bfguard.c: sliding-window failure counts per name (see bfguard.h).
 *
 * estimate = previous_window_count * (1 - elapsed_fraction) + current_count.
 * One mutex: the guard is touched only on failures and on requests that
 * would need bcrypt, never on a cached success.
 */
#include "auth/bfguard.h"

#include "core/alloc.h"
#include "core/siphash.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char name[BFGUARD_NAME_MAX + 1];
	int64_t window_start; /* ms, multiple of window */
	int64_t cur, prev;
	bool used;
};

struct bfguard {
	pthread_mutex_t lock;
	int64_t max, window_ms;
	struct slot *slots;
	size_t n;
};

struct bfguard *bfguard_create(int64_t max_failures, int64_t window_s, size_t max_names)
{
	struct bfguard *g = xcalloc(1, sizeof *g);
	pthread_mutex_init(&g->lock, NULL);
	g->max = max_failures;
	g->window_ms = window_s * 1000;
	g->n = max_names ? max_names : 1;
	/*
	 * Written through now rather than left to calloc's lazy zero pages: the
	 * first failure of a new name would otherwise pay a page fault that a
	 * name seen before does not, and new key ids are what unknown ones are
	 * (timing must not tell them apart).
	 */
	g->slots = xmalloc(g->n * sizeof *g->slots);
	memset(g->slots, 0, g->n * sizeof *g->slots);
	return g;
}

void bfguard_destroy(struct bfguard *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g->slots);
	free(g);
}

/* Roll the slot's windows forward to now. */
static void roll(struct bfguard *g, struct slot *s, int64_t now)
{
	int64_t start = now - now % g->window_ms;
	if (start == s->window_start)
		return;
	s->prev = start - s->window_start == g->window_ms ? s->cur : 0;
	s->cur = 0;
	s->window_start = start;
}

static double estimate(struct bfguard *g, const struct slot *s, int64_t now)
{
	double elapsed = (double)(now - s->window_start) / (double)g->window_ms;
	return (double)s->prev * (1.0 - elapsed) + (double)s->cur;
}

/* Failures the slot still counts (its windows rolled to now). */
static int64_t weight(struct bfguard *g, struct slot *s, int64_t now)
{
	roll(g, s, now);
	return s->prev + s->cur;
}

/*
 * The slot for name: open addressing over a few probes. A full
 * neighbourhood reuses a free or stale slot, else the one with the fewest
 * failures: one-off names (a flood of random key ids or addresses) give way
 * to each other, not to a name under attack (bounded memory).
 */
static struct slot *lookup(struct bfguard *g, const char *name, bool create, int64_t now)
{
	size_t h = (size_t)(str_hash(name) % g->n);
	struct slot *victim = NULL;
	int64_t victim_weight = INT64_MAX;
	for (size_t i = 0; i < 8; i++) {
		struct slot *s = &g->slots[(h + i) % g->n];
		if (!s->used && !create)
			break; /* slots are never freed: name would sit here or earlier */
		if (s->used && strcmp(s->name, name) == 0)
			return s;
		if (!create)
			continue;
		int64_t w = s->used ? weight(g, s, now) : -1; /* free slots first */
		if (w < victim_weight) {
			victim = s;
			victim_weight = w;
		}
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	victim->used = true;
	snprintf(victim->name, sizeof victim->name, "%s", name);
	victim->window_start = now - now % g->window_ms;
	return victim;
}

enum bfguard_verdict bfguard_check(struct bfguard *g, const char *name, int64_t now_ms,
                                   int64_t *retry_after_s)
{
	pthread_mutex_lock(&g->lock);
	struct slot *s = lookup(g, name, false, now_ms);
	enum bfguard_verdict v = BF_CLEAR;
	if (s) {
		roll(g, s, now_ms);
		double est = estimate(g, s, now_ms);
		if (est >= (double)g->max) {
			v = BF_BLOCKED;
			/* Until the estimate drops below max: at worst, the end of the next window.
			 */
			int64_t left = s->window_start + g->window_ms - now_ms;
			if (s->cur >= g->max)
				left += g->window_ms;
			*retry_after_s = left / 1000 + 1;
		} else if (s->prev + s->cur > 0) {
			v = BF_SUSPECT;
		}
	}
	pthread_mutex_unlock(&g->lock);
	return v;
}

void bfguard_fail(struct bfguard *g, const char *name, int64_t now_ms)
{
	pthread_mutex_lock(&g->lock);
	struct slot *s = lookup(g, name, true, now_ms);
	roll(g, s, now_ms);
	s->cur++;
	pthread_mutex_unlock(&g->lock);
}
