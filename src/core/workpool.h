/*
 * workpool.h: a fixed set of threads running jobs from a bounded queue.
 * Used for everything slow that must stay off the HTTP worker loops: bcrypt
 * (the verifier pool), store look-ups on a cache miss, control-plane
 * handlers. A full queue is reported to the caller, never grown.
 */
#ifndef PORTCULLIS_CORE_WORKPOOL_H
#define PORTCULLIS_CORE_WORKPOOL_H

#include <stddef.h>

struct workpool;

typedef void (*workpool_fn)(void *arg);

/** Start n_threads threads with room for queue_cap waiting jobs. */
struct workpool *workpool_create(const char *name, int n_threads, size_t queue_cap);
/**
 * Queue fn(arg). Returns 0, or -1 when the queue is full or the pool is
 * stopping (the job is not queued and fn is never called).
 */
int workpool_submit(struct workpool *wp, workpool_fn fn, void *arg);
/** Jobs waiting (not running). */
size_t workpool_pending(struct workpool *wp);
/** Run every queued job, stop the threads and free the pool. NULL is a no-op. */
void workpool_destroy(struct workpool *wp);

#endif
