/*
 * child_aborts.h: for unit tests of checks that are fatal by design (a
 * state machine's refused transition): run fn(arg) in a forked child with
 * its stderr silenced (the fatal message is expected) and say whether it
 * aborted. A child that returns from fn exits 0. Include after cmocka.h.
 */
#ifndef PORTCULLIS_TESTS_CHILD_ABORTS_H
#define PORTCULLIS_TESTS_CHILD_ABORTS_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static inline bool child_aborts(void (*fn)(void *arg), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		fn(arg);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

#endif
