/*
 * arena.h: a per-request bump allocator (like h2o_mem_pool_t). Everything
 * allocated from an arena dies with it in one arena_free().
 */
#ifndef PORTCULLIS_CORE_ARENA_H
#define PORTCULLIS_CORE_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	char first[4096]; /* inline first chunk: most requests (a forwarded one too) never malloc */
	size_t first_used;
};

/** Prepare an arena (no allocation). */
void arena_init(struct arena *a);
/** Allocate n bytes aligned for any type; never NULL. */
void *arena_alloc(struct arena *a, size_t n);
/** Copy a string (or the first n bytes) into the arena. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/** printf into the arena. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Release every allocation. The arena can be reused after arena_init. */
void arena_free(struct arena *a);

#endif
