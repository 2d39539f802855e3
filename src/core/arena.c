/*
 * arena.c: bump allocation in chunks (see arena.h).
 */
#include "core/arena.h"

#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(16) char data[];
};

#define ALIGN_UP(n) (((n) + 15u) & ~(size_t)15u)

void arena_init(struct arena *a)
{
	a->head = NULL;
	a->first_used = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
	n = ALIGN_UP(n ? n : 1);
	if (n <= sizeof a->first - a->first_used) {
		void *p = a->first + a->first_used;
		a->first_used += n;
		return p;
	}
	if (a->head && n <= a->head->cap - a->head->used) {
		void *p = a->head->data + a->head->used;
		a->head->used += n;
		return p;
	}
	size_t cap = n > 8192 ? n : 8192;
	struct arena_chunk *c = xmalloc(sizeof *c + cap);
	c->cap = cap;
	c->used = n;
	c->next = a->head;
	a->head = c;
	return c->data;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return arena_strdup(a, "");
	if ((size_t)n < sizeof small)
		return arena_strndup(a, small, (size_t)n);
	char *p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->first_used = 0;
}
