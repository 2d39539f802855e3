/*
 * workpool.h: a fixed set of threads running jobs from a bounded queue.
 * Used for everything slow that must stay off the HTTP worker loops: bcrypt
 * (the verifier pool), store look-ups on a cache miss, control-plane
 * handlers. A full queue is reported to the caller, never grown.
 *
 * Two lanes share the threads: a job of the low lane runs only when no job
 * of the normal lane waits, and each lane has its own bound, so a flood in
 * the low lane can neither fill nor slow the normal one by more than the
 * jobs already running (the verifier pool puts verifications of key ids and
 * addresses with recent failures there).
 */
#ifndef PORTCULLIS_CORE_WORKPOOL_H
#define PORTCULLIS_CORE_WORKPOOL_H

#include <stddef.h>

struct workpool;

typedef void (*workpool_fn)(void *arg);

/** The lane of a job (see above). */
enum workpool_lane { WORKPOOL_NORMAL = 0, WORKPOOL_LOW = 1 };

/** Start n_threads threads with room for queue_cap waiting jobs in each lane. */
struct workpool *workpool_create(const char *name, int n_threads, size_t queue_cap);
/**
 * Queue fn(arg) in the normal lane. Returns 0, or -1 when the lane is full
 * or the pool is stopping (the job is not queued and fn is never called).
 */
int workpool_submit(struct workpool *wp, workpool_fn fn, void *arg);
/** workpool_submit into a given lane. */
int workpool_submit_lane(struct workpool *wp, enum workpool_lane lane, workpool_fn fn, void *arg);
/** Jobs waiting in both lanes (not running). */
size_t workpool_pending(struct workpool *wp);
/** Run every queued job, stop the threads and free the pool. NULL is a no-op. */
void workpool_destroy(struct workpool *wp);

#endif
