/*
 * worker.c: the background tier's process (see worker.h). It owns the
 * configuration, the store, the mailer and the optional /readyz + /metrics
 * listener; the work runs on two threads it starts: the delivery engine
 * (engine.c) and the hourly retention purge (webhook records, SDK events).
 *
 * The listener is the same HTTP server as serve's (src/http/server.c), on
 * one worker loop with its own two routes, so the worker has one way of
 * answering HTTP and of rendering metrics.
 */
#include "delivery/worker.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/thread.h"
#include "core/workpool.h"
#include "delivery/capi.h"
#include "delivery/egress.h"
#include "delivery/engine.h"
#include "delivery/mail.h"
#include "delivery/scankeys.h"
#include "http/router.h"
#include "http/server.h"
#include "store/store.h"
#include "store/store_events.h"
#include "store/store_webhooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RETENTION_EVERY_MS (3600 * 1000)

struct worker {
	struct config cfg;
	struct config
	    http_cfg; /* cfg with [worker] listen as the listener (borrows cfg's strings) */
	struct store *st;
	struct workpool *pool; /* /readyz: the store check blocks */
	struct router router;
	struct http_server *server;
	bool supervised;
	int stop_pipe[2];
	char owner[300];
	struct mailer *mailer;
	struct engine *engine;
	struct capi_forwarder *capi;
	struct bg_thread retention;
	struct bg_thread scan_keys;
	struct egress_ranges *allow; /* [webhooks] allow_ranges, for the key fetch */
	char *key_file;
};

/* ---------- the retention purge: webhook records, SDK events ---------- */

static void retention_main(struct bg_thread *t, void *arg)
{
	struct worker *w = arg;
	do {
		pthread_mutex_unlock(t->lock);
		int64_t cutoff = clock_now_ms() - w->cfg.retention_webhook_days * 86400000LL;
		int64_t deleted = 0;
		int rc = store_webhooks_purge(w->st, cutoff, &deleted);
		if (rc == STORE_OK)
			log_info("webhooks: purged %lld row(s) older than %lld day(s)",
			         (long long)deleted, (long long)w->cfg.retention_webhook_days);
		else
			log_event(LOG_ERROR, "store_error", "op", "webhook_purge", NULL);
		rc = store_events_retention(w->st, w->cfg.retention_events_days, clock_now_ms(),
		                            &deleted);
		if (rc == STORE_OK)
			log_info("events: purged %lld event(s) older than %lld day(s)",
			         (long long)deleted, (long long)w->cfg.retention_events_days);
		else
			log_event(LOG_ERROR, "store_error", "op", "events_purge", NULL);
		pthread_mutex_lock(t->lock);
	} while (bg_thread_wait(t, RETENTION_EVERY_MS));
}

/* ---------- GitHub's secret scanning keys ---------- */

#define SCAN_KEYS_POLL_MS 500

/* Polls the store's refresh flag (the API sets it) and the set's age. */
static void scan_keys_main(struct bg_thread *t, void *arg)
{
	struct worker *w = arg;
	do {
		pthread_mutex_unlock(t->lock);
		scankeys_tick(w->st, &w->cfg, w->allow, clock_now_ms(),
		              w->cfg.secret_scanning_refresh_min_s * 1000);
		pthread_mutex_lock(t->lock);
	} while (bg_thread_wait(t, SCAN_KEYS_POLL_MS));
}

/* ---------- metrics shared with serve ---------- */

_Static_assert((ENGINE_METRIC_CELLS + CAPI_METRIC_CELLS) * sizeof(int64_t) <= WORKER_METRICS_BYTES,
               "the shared page holds every cell");

/* The tier's series: the engine's cells, then the forward's (cells may be NULL). */
static void register_metrics(int64_t *cells)
{
	engine_metrics_register(cells);
	capi_metrics_register(cells ? cells + ENGINE_METRIC_CELLS : NULL);
}

/*
 * serve passes a memfd of WORKER_METRICS_BYTES as fd WORKER_METRICS_FD:
 * the engine's counters live there, so serve's /metrics shows them (and
 * they survive a restart of this process). Alone, they live here.
 */
static void metrics_setup(bool supervised)
{
	int64_t *cells = NULL;
	struct stat sb;
	if (supervised && fstat(WORKER_METRICS_FD, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    sb.st_size >= (off_t)WORKER_METRICS_BYTES) {
		void *p = mmap(NULL, WORKER_METRICS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		               WORKER_METRICS_FD, 0);
		if (p != MAP_FAILED)
			cells = p;
		close(WORKER_METRICS_FD);
	}
	register_metrics(cells);
}

int worker_metrics_page(int64_t **cells)
{
	int fd = memfd_create("portcullis-metrics", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	void *p = MAP_FAILED;
	if (ftruncate(fd, WORKER_METRICS_BYTES) == 0)
		p = mmap(NULL, WORKER_METRICS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return -1;
	}
	*cells = p;
	register_metrics(*cells);
	return fd;
}

void worker_owner_name(const struct config *cfg, char *out, size_t cap)
{
	if (cfg->worker_node_name[0]) {
		snprintf(out, cap, "%s", cfg->worker_node_name);
		return;
	}
	char host[256];
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	const char *listen = cfg->worker_listen[0] ? cfg->worker_listen : cfg->server_listen;
	char lhost[256];
	int port = 0;
	if (config_split_listen(listen, lhost, sizeof lhost, &port) < 0)
		port = 0;
	snprintf(out, cap, "%s:%d", host, port);
}

/* ---------- /readyz and /metrics ---------- */

static void worker_readyz(struct http_request *req)
{
	const struct worker *w = req->route->data; /* start_listener registered it */
	if (store_ready(w->st)) {
		http_respond_json(
		    req, 200, json_pack("{s:s, s:{s:b}}", "status", "ready", "checks", "store", 1));
		return;
	}
	http_set_header(req, "Retry-After", "1");
	http_respond_problem(req, 503, "NOT_READY", "The database is not reachable.",
	                     json_pack("{s:b}", "store", 0));
}

static int start_listener(struct worker *w, char *err, size_t cap)
{
	router_add_with(&w->router, "GET", "/readyz", worker_readyz, ROUTE_BLOCKING, w);
	router_add(&w->router, "GET", "/metrics", http_respond_metrics, 0);
	w->pool = workpool_create("wk-control", 1, 64);
	/* serve's limits, but one loop, plain HTTP, on [worker] listen. */
	w->http_cfg = w->cfg;
	w->http_cfg.server_listen = w->cfg.worker_listen;
	w->http_cfg.server_workers = 1;
	w->http_cfg.server_tls_cert = (char *)"";
	w->http_cfg.server_tls_key = (char *)"";
	w->http_cfg.server_redirect_listen = (char *)"";
	struct http_server_opts opts = {
	    .cfg = &w->http_cfg,
	    .router = &w->router,
	    .control_pool = w->pool,
	};
	char msg[512];
	w->server = http_server_create(&opts, msg, sizeof msg);
	if (!w->server) {
		snprintf(err, cap, "[worker] listen: %s", msg);
		return -1;
	}
	return 0;
}

/* ---------- the settings the tier refuses ---------- */

/* A file curl or the keyring opens later, checked now: named once, with why. */
static int check_readable(const char *setting, const char *path, char *err, size_t cap)
{
	if (!path[0] || access(path, R_OK) == 0)
		return 0;
	snprintf(err, cap, "%s: cannot read %s: %s", setting, path, strerror(errno));
	return -1;
}

int delivery_config_check(const struct config *cfg, char *err, size_t cap)
{
	if (mailer_config_check(cfg, err, cap) < 0)
		return -1;
	if (check_readable("[webhooks] ca_file", cfg->webhooks_ca_file, err, cap) < 0)
		return -1;
	char msg[256];
	struct wh_schedule sched;
	if (wh_schedule_parse(cfg->webhooks_retry_schedule, &sched, msg, sizeof msg) < 0) {
		snprintf(err, cap, "[webhooks] %s", msg); /* msg names the setting */
		return -1;
	}
	struct egress_ranges *allow = NULL;
	if (egress_ranges_parse(cfg->webhooks_allow_ranges, &allow, msg, sizeof msg) < 0) {
		snprintf(err, cap, "[webhooks] %s", msg);
		return -1;
	}
	if (wh_schedule_parse(cfg->capi_retry_schedule, &sched, msg, sizeof msg) < 0) {
		snprintf(err, cap, "[capi] %s", msg);
		egress_ranges_free(allow);
		return -1;
	}
	const char *why = NULL;
	char url[EGRESS_URL_MAX + 64];
	snprintf(url, sizeof url, "%s/%s/1/events", cfg->capi_base_url, cfg->capi_api_version);
	if (egress_check_url(url, allow, &why) < 0 || !capi_version_ok(cfg->capi_api_version)) {
		snprintf(err, cap,
		         "[capi] base_url must be an https URL without userinfo and api_version "
		         "like v21.0 (%s)",
		         why ? why : "api_version");
		egress_ranges_free(allow);
		return -1;
	}
	const char *reason = NULL;
	int url_rc = egress_check_url(cfg->secret_scanning_github_keys_url, allow, &reason);
	egress_ranges_free(allow);
	if (url_rc < 0) {
		snprintf(
		    err, cap,
		    "[secret_scanning] github_keys_url is refused by the egress guard (%s): it "
		    "must be an https URL the guard allows",
		    reason);
		return -1;
	}
	/* A lease that ends before the attempt's timeout lets another worker claim it in flight. */
	if (cfg->webhooks_lease_s <= cfg->webhooks_timeout_s) {
		snprintf(
		    err, cap,
		    "[webhooks] lease_s (%lld) must be greater than [webhooks] timeout_s (%lld): "
		    "a shorter lease lets another worker claim a delivery still in flight",
		    (long long)cfg->webhooks_lease_s, (long long)cfg->webhooks_timeout_s);
		return -1;
	}
	if (config_worker_enabled(cfg) &&
	    (!cfg->secrets_private_key_file || !cfg->secrets_private_key_file[0])) {
		snprintf(err, cap,
		         "[secrets] private_key_file must be set: the background tier opens "
		         "webhook signing secrets with it");
		return -1;
	}
	return 0;
}

/* ---------- lifecycle ---------- */

int worker_open(const struct worker_options *o, struct worker **out, char *err, size_t cap)
{
	struct worker *w = xcalloc(1, sizeof *w);
	w->stop_pipe[0] = w->stop_pipe[1] = -1;
	w->supervised = o->supervised;
	int rc = -1;
	if (config_load(&w->cfg, o->config_path, err, cap) < 0) {
		rc = -2;
		goto fail;
	}
	log_setup((enum log_level)log_level_parse(w->cfg.log_level),
	          strcmp(w->cfg.log_format, "json") == 0);
	if (delivery_config_check(&w->cfg, err, cap) < 0) {
		rc = -2;
		goto fail;
	}
	if (pipe2(w->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, cap, "pipe: %s", strerror(errno));
		goto fail;
	}
	char msg[512];
	struct store_options so = {.pool_size = (int)w->cfg.store_pool_size,
	                           .statement_timeout_ms = w->cfg.store_statement_timeout_ms};
	if (store_open_with(w->cfg.store_url, &so, &w->st, msg, sizeof msg) != STORE_OK) {
		snprintf(err, cap, "store: %s", msg);
		goto fail;
	}
	if (store_migrate(w->st, NULL) != STORE_OK) {
		snprintf(err, cap, "store: migrations failed");
		goto fail;
	}
	worker_owner_name(&w->cfg, w->owner, sizeof w->owner);
	if (mailer_open(&w->cfg, &w->mailer, err, cap) < 0)
		goto fail;
	w->key_file = config_path_of(&w->cfg, w->cfg.secrets_private_key_file);
	metrics_setup(w->supervised);
	if (w->cfg.worker_listen[0] && start_listener(w, err, cap) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	worker_close(w);
	return rc;
}

/* Sleep until worker_stop (no listener to run). */
static void wait_for_stop(struct worker *w)
{
	for (;;) {
		struct pollfd p = {.fd = w->stop_pipe[0], .events = POLLIN};
		int n = poll(&p, 1, -1);
		if (n > 0)
			return;
		if (n < 0 && errno != EINTR)
			return;
	}
}

/* Start the engine and the retention purge. */
static int start_work(struct worker *w)
{
	/* A restarted worker resumes at once what it held when it died. */
	if (store_claim_release_all(w->st, w->owner) != STORE_OK)
		log_event(LOG_WARN, "store_error", "op", "webhook_release", NULL);
	struct engine_options eo = {
	    .st = w->st,
	    .cfg = &w->cfg,
	    .owner = w->owner,
	    .key_file = w->key_file,
	    .mailer = w->mailer,
	};
	char err[512];
	if (engine_start(&eo, &w->engine, err, sizeof err) < 0) {
		log_event(LOG_ERROR, "worker_failed", "error", err, NULL);
		return -1;
	}
	struct capi_options co = {w->st, &w->cfg, w->owner, w->key_file};
	if (capi_start(&co, &w->capi, err, sizeof err) < 0)
		log_event(LOG_ERROR, "worker_failed", "error", err, NULL);
	if (bg_thread_start(&w->retention, "wh-retention", NULL, retention_main, w) < 0)
		log_event(LOG_ERROR, "worker_failed", "error", "cannot start the retention thread",
		          NULL);
	if (egress_ranges_parse(w->cfg.webhooks_allow_ranges, &w->allow, err, sizeof err) == 0 &&
	    bg_thread_start(&w->scan_keys, "scan-keys", NULL, scan_keys_main, w) < 0)
		log_event(LOG_ERROR, "worker_failed", "error",
		          "cannot start the secret scanning key thread", NULL);
	return 0;
}

int worker_run(struct worker *w)
{
	if (start_work(w) < 0)
		return -1;
	char port[16] = "";
	if (w->server)
		snprintf(port, sizeof port, "%d", http_server_port(w->server));
	log_event(LOG_INFO, "worker_started", "owner", w->owner, "supervised",
	          w->supervised ? "true" : "false", "port", port[0] ? port : NULL, NULL);
	if (w->server)
		http_server_run(w->server);
	else
		wait_for_stop(w);
	bg_thread_stop(&w->retention);
	bg_thread_stop(&w->scan_keys);
	engine_stop(w->engine); /* attempts in flight finish or their leases are given back */
	w->engine = NULL;
	capi_stop(w->capi);
	w->capi = NULL;
	log_event(LOG_INFO, "worker_stopped", "owner", w->owner, NULL);
	return 0;
}

void worker_stop(struct worker *w)
{
	if (w->server)
		http_server_stop(w->server);
	if (w->stop_pipe[1] >= 0) {
		ssize_t r = write(w->stop_pipe[1], "x", 1);
		(void)r;
	}
}

void worker_close(struct worker *w)
{
	if (!w)
		return;
	bg_thread_stop(&w->retention);
	bg_thread_stop(&w->scan_keys);
	egress_ranges_free(w->allow);
	engine_stop(w->engine);
	capi_stop(w->capi);
	workpool_destroy(w->pool);
	w->pool = NULL;
	mailer_free(w->mailer);
	free(w->key_file);
	if (w->server)
		http_server_destroy(w->server);
	store_close(w->st);
	for (int i = 0; i < 2; i++)
		if (w->stop_pipe[i] >= 0)
			close(w->stop_pipe[i]);
	config_free(&w->cfg);
	free(w);
}
