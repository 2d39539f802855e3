/*
 * thread.h: the one lifecycle of a background thread: start, wake, a
 * bounded wait on a monotonic clock, stop, join.
 *
 * A background thread (a writer, a poller, a refresher, a delivery thread)
 * sleeps until there is work, a deadline passes or it is told to stop. The
 * stop flag and the wake flag are guarded by a mutex the owner chooses: its
 * own queue lock, so that "queue empty and not stopping" is one atomic test
 * (pass NULL to use the thread's own lock). The condition variable runs on
 * CLOCK_MONOTONIC (clock_cond_init_mono), so a wall-clock step neither
 * stretches nor shortens a wait.
 *
 * Usage, in the thread's function (lock held on entry, held on return):
 *     while (bg_thread_wait(t, INTERVAL_MS)) { ...work, unlocking around I/O... }
 * and from other threads: bg_thread_wake(t) when work arrives,
 * bg_thread_stop(t) once at shutdown (joins).
 */
#ifndef PORTCULLIS_CORE_THREAD_H
#define PORTCULLIS_CORE_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct bg_thread;

/**
 * The thread's body. Called with the lock held; must return with it held.
 * It returns when it is done, normally once bg_thread_wait() (or
 * bg_thread_stopping()) reports a stop; it may first finish queued work.
 */
typedef void (*bg_thread_fn)(struct bg_thread *t, void *arg);

/** One background thread. Zero-initialise; fields are private. */
struct bg_thread {
	pthread_t thread;
	pthread_mutex_t *lock; /* guards stopping and woken: the owner's, or &own */
	pthread_mutex_t own;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bg_thread_fn fn;
	void *arg;
	void (*interrupt)(void *arg); /* see bg_thread_set_interrupt */
	bool started, stopping, woken;
};

/**
 * Start fn(t, arg) on a new thread named name (at most 15 characters, for
 * top and gdb). lock guards the thread's flags and whatever state the owner
 * pairs with them; NULL uses a lock of t's own. t must stay in place until
 * bg_thread_stop(). Returns 0, or -1 when the thread cannot be created (t
 * is then as if never started; bg_thread_stop() on it does nothing).
 */
int bg_thread_start(struct bg_thread *t, const char *name, pthread_mutex_t *lock, bg_thread_fn fn,
                    void *arg);

/**
 * In the thread, lock held: sleep until bg_thread_wake(), bg_thread_stop()
 * or ms milliseconds have passed (ms < 0: no deadline), whichever is first;
 * spurious wake-ups are absorbed. A wake that came while the thread was not
 * waiting is not lost: the next wait returns at once. Returns false when
 * the thread is to stop (at once, without sleeping, once stop was asked),
 * true otherwise.
 */
bool bg_thread_wait(struct bg_thread *t, int64_t ms);

/**
 * Lock held: true from a successful bg_thread_start() until bg_thread_stop()
 * has joined the thread (so a stop under way still counts as started).
 */
bool bg_thread_started(const struct bg_thread *t);

/** Lock held: true once bg_thread_stop() has been asked. */
bool bg_thread_stopping(const struct bg_thread *t);

/** Wake the thread; the caller holds the lock. */
void bg_thread_wake_locked(struct bg_thread *t);

/**
 * The same wake in two halves, for a hot submitter: bg_thread_wake_mark()
 * with the lock held (the wake is recorded: not lost, whatever the thread
 * does next), then bg_thread_signal() after unlocking, so the woken thread
 * does not run into a mutex the submitter still holds. The thread must not
 * be stopped in between (the submitter is one of its users).
 */
void bg_thread_wake_mark(struct bg_thread *t);
void bg_thread_signal(struct bg_thread *t);

/** Wake the thread; the caller does not hold the lock. */
void bg_thread_wake(struct bg_thread *t);

/**
 * For a thread that sleeps elsewhere than in bg_thread_wait (in poll(2) on
 * a socket and a self-pipe): bg_thread_stop() calls interrupt(arg), with
 * the start's arg and no lock held, after setting the stop flag and before
 * joining. Set it after bg_thread_start(), lock held.
 */
void bg_thread_set_interrupt(struct bg_thread *t, void (*interrupt)(void *arg));

/**
 * Ask the thread to stop, wake it (and call its interrupt) and join it; then release t's resources.
 * The caller does not hold the lock. Does nothing for a thread that was
 * never started (or whose start failed) or is already stopped.
 */
void bg_thread_stop(struct bg_thread *t);

#endif
