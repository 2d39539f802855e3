/*
 * commit.h: the ingest plane's group commit (INGEST.md "Accepted means
 * durable"). HTTP handlers on the event loops submit their request's
 * events; one committer thread takes everything queued (up to a group's
 * cap) and commits it in ONE store_events_insert transaction, then
 * completes each submitter with its own per-event results. The 200 goes
 * out from that completion, so an acknowledged event is committed.
 *
 * Nothing blocks the loop: submit only queues (or refuses at once when the
 * queue is full), and the completion runs on the committer thread. The
 * handler's pattern, as http_defer_lane does it (src/http/request.h):
 *
 *     http_suspend(req, answer);   // answer(req) runs on the loop later
 *     if (ingest_commit_submit(ic, evs, n, committed, req) != INGEST_COMMIT_OK) {
 *             req->suspend_pending = false;   // not suspended after all
 *             req->resume_fn = NULL;
 *             ...answer 503 OVERLOADED now
 *     }
 *
 *     static void committed(void *ctx, int rc, const bool *stored, int n)
 *     {       // committer thread: copy rc and stored[] into the request, then
 *             http_resume(ctx);
 *     }
 */
#ifndef PORTCULLIS_INGEST_COMMIT_H
#define PORTCULLIS_INGEST_COMMIT_H

#include "store/store_events.h"

#include <stdbool.h>
#include <stdint.h>

struct ingest_commit;

enum {
	INGEST_COMMIT_OK = 0,
	INGEST_COMMIT_EOVERLOADED = -10, /* the queue is full: answer 503 OVERLOADED */
	INGEST_COMMIT_ESTOPPED = -11,    /* stopping: nothing more is accepted */
	INGEST_COMMIT_EINVAL = -12,      /* n < 1 */
};

#define INGEST_COMMIT_QUEUE_DEFAULT 20000 /* [ingest] queue_events */
#define INGEST_COMMIT_GROUP_MAX     5000  /* events in one transaction, at most */

struct ingest_commit_options {
	int queue_events;  /* events waiting, at most (not counting the group in flight); 0: default
	                    */
	int group_max;     /* events per transaction (a larger submission goes alone); 0: default */
	int64_t dedupe_ms; /* 0: STORE_EV_DEDUPE_MS */
};

/**
 * The completion of one submission, on the committer thread, exactly once.
 * rc: STORE_OK (then stored[i] says whether evs[i] was stored or was a
 * duplicate within the window, acknowledged all the same), or a negative
 * STORE_E* code: the group's transaction failed and none of its events
 * (this submission's or any other's) is stored. stored has n entries and is
 * valid during the call only (NULL when rc is not STORE_OK). Keep it short:
 * copy the results and resume the request (http_resume).
 */
typedef void (*ingest_commit_done)(void *ctx, int rc, const bool *stored, int n);

/** Start the committer thread on st (which must outlive it); NULL when it cannot start. */
struct ingest_commit *ingest_commit_start(struct store *st, const struct ingest_commit_options *o);

/**
 * Queue evs[0..n) for the next group. Never blocks on the store. evs (and
 * each body) are borrowed until done is called: keep them in the suspended
 * request's arena. A submission is never split: its events commit in one
 * transaction, or none of them. Returns INGEST_COMMIT_OK (done will be
 * called), or INGEST_COMMIT_EOVERLOADED / _ESTOPPED / _EINVAL at once (done
 * is never called). Thread-safe.
 */
int ingest_commit_submit(struct ingest_commit *ic, const struct store_event *evs, int n,
                         ingest_commit_done done, void *ctx);

/**
 * Counters of one committer. /metrics has, over every committer:
 * portcullis_ingest_events_committed_total, _commit_queue_events (gauge),
 * _commit_groups_total and _commit_group_events_total (their ratio is the
 * mean group size), _commit_failures_total, _commit_overloaded_total.
 */
struct ingest_commit_stats {
	int64_t groups;        /* transactions attempted */
	int64_t failed_groups; /* of which failed */
	int64_t submissions;   /* completed */
	int64_t events;        /* in completed groups */
	int64_t stored, deduplicated;
	int64_t overloaded; /* submissions refused with EOVERLOADED */
	int64_t queued;     /* events waiting now */
};
void ingest_commit_stats(struct ingest_commit *ic, struct ingest_commit_stats *out);

/**
 * Stop: refuse new submissions (ESTOPPED), COMMIT everything already queued
 * (each submitter is completed as usual, with the store's answer), then
 * join the thread and free ic. Waits as long as those commits take (each
 * bounded by the store's timeouts). Call it before the loops that the
 * completions resume requests on are stopped. NULL is a no-op.
 */
void ingest_commit_stop(struct ingest_commit *ic);

#endif
