/*
 * alloc.h: allocation wrappers. Out-of-memory policy, chosen once: abort.
 * Every other failure in Portcullis is propagated; a failed allocation is not
 * (like Redis zmalloc and h2o h2o_fatal). Callers never check for NULL.
 */
#ifndef PORTCULLIS_CORE_ALLOC_H
#define PORTCULLIS_CORE_ALLOC_H

#include <stddef.h>

/** malloc that never returns NULL (aborts with a message instead). */
void *xmalloc(size_t n);
/** calloc that never returns NULL. */
void *xcalloc(size_t count, size_t size);
/** realloc that never returns NULL. */
void *xrealloc(void *p, size_t n);
/** strdup that never returns NULL; NULL in gives NULL out. */
char *xstrdup(const char *s);
/** Copy of the first n bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t n);
/** Print "portcullis: fatal: MSG" to stderr and abort. */
_Noreturn void fatal(const char *msg);

#endif
