/*
 * worker.h: the background tier as one process: `portcullis worker -c FILE`
 * (alone, for nodes that only deliver) or serve's supervised child
 * (`--supervised`). It opens the configuration and the store, runs the
 * delivery engine and the webhook retention purge, and with [worker] listen
 * serves /readyz and /metrics. Only this process ever reads [secrets]
 * private_key_file (the process that serves the API never does).
 */
#ifndef PORTCULLIS_DELIVERY_WORKER_H
#define PORTCULLIS_DELIVERY_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;

struct worker_options {
	const char *config_path;
	bool supervised; /* serve's child (stops when serve dies) */
};

struct config;

/**
 * Every check the tier makes of its settings when it opens, without opening
 * anything: [mail] (mailer_config_check), [webhooks] ca_file readable,
 * retry_schedule and allow_ranges parsing, lease_s greater than timeout_s,
 * [secret_scanning] github_keys_url passing egress_check_url,
 * and (when [worker] enabled) [secrets] private_key_file set. worker_open
 * runs it; so do serve (when it supervises the worker: it exits instead of
 * restarting a child that cannot start) and `config check`. 0, or -1 with
 * a message in err naming the setting.
 */
int delivery_config_check(const struct config *cfg, char *err, size_t cap);

/**
 * Load the configuration, open the store (migrations applied) and prepare
 * the tier. 0, or -2 for a configuration error, -1 for anything else, with
 * a message in err (never a secret). *out is set on 0 only.
 */
int worker_open(const struct worker_options *o, struct worker **out, char *err, size_t cap);

/** Run until worker_stop(); returns 0 after a clean stop, -1 when the tier cannot start. */
int worker_run(struct worker *w);

/** Ask worker_run to return. Async-signal-safe. */
void worker_stop(struct worker *w);

/** Free what worker_open made (after worker_run returned, or instead of it). */
void worker_close(struct worker *w);

/**
 * The lease owner this node's worker claims under: [worker] node_name, else
 * the host name + ":" + the port of [worker] listen (or, without it, of
 * [server] listen). Written into out (cap bytes).
 */
void worker_owner_name(const struct config *cfg, char *out, size_t cap);

/** The metrics page serve shares with its child: its size, and the child's fd for it. */
#define WORKER_METRICS_BYTES 4096
#define WORKER_METRICS_FD    3
/**
 * In serve, before starting the child: create the page (a memfd, close-on-
 * exec: the spawn dup2()s it to WORKER_METRICS_FD), map it and register the
 * tier's metrics with their values there. Returns the fd, or -1.
 */
int worker_metrics_page(int64_t **cells);

#endif
