/*
 * thread.c: start, wake, wait, stop and join of a background thread (see
 * thread.h). Every background thread of the tree starts and stops here,
 * except the pool workers (core/workpool.c) and the server's worker loops
 * (http/server.c).
 */
#include "core/thread.h"

#include "core/clock.h"

#include <errno.h>
#include <string.h>

static void *trampoline(void *arg)
{
	struct bg_thread *t = arg;

	pthread_mutex_lock(t->lock);
	t->fn(t, t->arg);
	pthread_mutex_unlock(t->lock);
	return NULL;
}

int bg_thread_start(struct bg_thread *t, const char *name, pthread_mutex_t *lock, bg_thread_fn fn,
                    void *arg)
{
	memset(t, 0, sizeof *t);
	if (!lock) {
		pthread_mutex_init(&t->own, NULL);
		lock = &t->own;
	}
	t->lock = lock;
	t->fn = fn;
	t->arg = arg;
	clock_cond_init_mono(&t->cond);
	if (pthread_create(&t->thread, NULL, trampoline, t) != 0) {
		pthread_cond_destroy(&t->cond);
		if (lock == &t->own)
			pthread_mutex_destroy(&t->own);
		memset(t, 0, sizeof *t);
		return -1;
	}
	if (name)
		pthread_setname_np(t->thread, name);
	t->started = true;
	return 0;
}

bool bg_thread_wait(struct bg_thread *t, int64_t ms)
{
	struct timespec until = {0};

	if (ms >= 0)
		until = clock_mono_deadline(ms);
	while (!t->stopping && !t->woken) {
		if (ms < 0)
			pthread_cond_wait(&t->cond, t->lock);
		else if (pthread_cond_timedwait(&t->cond, t->lock, &until) == ETIMEDOUT)
			break;
	}
	t->woken = false;
	return !t->stopping;
}

bool bg_thread_started(const struct bg_thread *t)
{
	return t->started;
}

bool bg_thread_stopping(const struct bg_thread *t)
{
	return t->stopping;
}

void bg_thread_wake_mark(struct bg_thread *t)
{
	t->woken = true;
}

void bg_thread_signal(struct bg_thread *t)
{
	pthread_cond_signal(&t->cond);
}

void bg_thread_wake_locked(struct bg_thread *t)
{
	bg_thread_wake_mark(t);
	bg_thread_signal(t);
}

void bg_thread_wake(struct bg_thread *t)
{
	pthread_mutex_lock(t->lock);
	bg_thread_wake_locked(t);
	pthread_mutex_unlock(t->lock);
}

void bg_thread_set_interrupt(struct bg_thread *t, void (*interrupt)(void *arg))
{
	t->interrupt = interrupt;
}

void bg_thread_stop(struct bg_thread *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(t->lock);
	t->stopping = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(t->lock);
	if (t->interrupt)
		t->interrupt(t->arg);
	pthread_join(t->thread, NULL);
	pthread_mutex_lock(t->lock);
	t->started = false;
	pthread_mutex_unlock(t->lock);
	pthread_cond_destroy(&t->cond);
	if (t->lock == &t->own)
		pthread_mutex_destroy(&t->own);
}
