/*
 * serve.c: `portcullis serve`, `migrate`, `config check` and `config
 * example`. serve runs the gateway in the foreground until SIGTERM or
 * SIGINT, then drains and exits 0. Unless [worker] enabled = false it also
 * supervises the background tier as a child process (`portcullis worker
 * --supervised`, exec'd afresh), so that the process serving HTTP never
 * opens the private key that unseals column secrets.
 */
#include "api/api.h"
#include "api/service.h"
#include "app/app.h"
#include "build_info.h"
#include "cli/cli.h"
#include "console/console.h"
#include "console/oidc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"
#include "delivery/worker.h"
#include "gateway/gateway.h"
#include "gateway/reqlog.h"
#include "http/server.h"
#include "ingest/commit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static struct http_server *running;

/* ---------- the background tier as a supervised child ---------- */

#define CHILD_BACKOFF_MIN_MS 500
#define CHILD_BACKOFF_MAX_MS 30000
#define CHILD_STABLE_MS      60000 /* a child that ran this long restarts at the minimum again */
#define CHILD_RECOVERED_MS   10000 /* a child up this long ends a run of failures (the log) */
#define CHILD_STOP_GRACE_MS  10000 /* SIGTERM, then SIGKILL after this */
#define CHILD_POLL_MS        100

static struct metric m_worker_restarts =
    METRIC_INIT("portcullis_worker_restarts_total",
                "Times the background-tier child process died and was started again.", "counter");

struct supervisor {
	struct bg_thread t;
	const char *config_path;
	int metrics_fd; /* the page the child's counters live in (worker.h), or -1 */
	pid_t pid;
};

/*
 * fork + exec of /proc/self/exe (this very binary, even if the file was
 * replaced since). Between fork and exec only async-signal-safe calls.
 * The child dies with the thread that forked it (PR_SET_PDEATHSIG: the
 * supervisor thread, which lives until serve stops it).
 */
static pid_t spawn_worker(const char *config_path, int metrics_fd)
{
	char *argv[] = {(char *)"portcullis", (char *)"worker",       (char *)"-c",
	                (char *)config_path,  (char *)"--supervised", NULL};
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
		_exit(1);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Only the metrics page crosses the exec (serve's fds are CLOEXEC already; make sure). */
	if (metrics_fd >= 0) {
		if (metrics_fd == WORKER_METRICS_FD)
			fcntl(metrics_fd, F_SETFD, 0);
		else
			dup2(metrics_fd, WORKER_METRICS_FD);
	}
	close_range(metrics_fd >= 0 ? WORKER_METRICS_FD + 1 : WORKER_METRICS_FD, ~0U,
	            CLOSE_RANGE_CLOEXEC);
	execv("/proc/self/exe", argv);
	_exit(127);
}

/* After SIGTERM, wait up to the grace; then SIGKILL. Returns the wait status. */
static int stop_child(pid_t pid)
{
	int status = 0;
	kill(pid, SIGTERM);
	int64_t deadline = clock_mono_ms() + CHILD_STOP_GRACE_MS;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return status;
		if (clock_mono_ms() >= deadline) {
			log_event(LOG_WARN, "worker_kill", "reason", "did not stop in time", NULL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return status;
		}
		usleep(20 * 1000);
	}
}

/* "signal" or "exit_code" of a wait status, its number in out. */
static const char *exit_field(int status, char *out, size_t cap)
{
	bool sig = WIFSIGNALED(status);
	snprintf(out, cap, "%d", sig ? WTERMSIG(status) : WEXITSTATUS(status));
	return sig ? "#signal" : "#exit_code";
}

/*
 * What the log says of a child that keeps dying: its state changes, not
 * each restart. The first exit of a run of failures is worker_exited; then
 * worker_restarting with the count at most once per CHILD_BACKOFF_MAX_MS
 * (the backoff's ceiling: a child that cannot start is restarted that
 * often in the end); worker_recovered once a child of that run stayed up
 * CHILD_RECOVERED_MS. The metric counts every restart.
 */
struct exit_log {
	int64_t failures;  /* exits since a child last stayed up */
	int64_t logged_ms; /* mono time of the last line about them */
};

static void log_child_exit(struct exit_log *l, int status)
{
	char code[16], n[24];
	const char *field = exit_field(status, code, sizeof code);
	int64_t now = clock_mono_ms();
	if (l->failures++ == 0) {
		log_event(LOG_WARN, "worker_exited", field, code, NULL);
	} else if (now - l->logged_ms >= CHILD_BACKOFF_MAX_MS) {
		snprintf(n, sizeof n, "%lld", (long long)l->failures);
		log_event(LOG_WARN, "worker_restarting", "#exits", n, field, code, NULL);
	} else {
		return;
	}
	l->logged_ms = now;
}

static void log_child_up(struct exit_log *l, int64_t up_ms)
{
	if (!l->failures || up_ms < CHILD_RECOVERED_MS)
		return;
	char n[24];
	snprintf(n, sizeof n, "%lld", (long long)l->failures);
	log_event(LOG_INFO, "worker_recovered", "#exits", n, NULL);
	memset(l, 0, sizeof *l);
}

/* The supervisor thread: start the child, restart it with backoff when it dies. */
static void supervise(struct bg_thread *t, void *arg)
{
	struct supervisor *s = arg;
	int64_t backoff = CHILD_BACKOFF_MIN_MS;
	struct exit_log exits = {0};
	while (!bg_thread_stopping(t)) {
		int64_t started = clock_mono_ms();
		pid_t pid = spawn_worker(s->config_path, s->metrics_fd);
		if (pid < 0) {
			char e[16];
			snprintf(e, sizeof e, "%d", errno);
			log_event(LOG_ERROR, "worker_spawn_failed", "#errno", e, NULL);
		} else {
			s->pid = pid;
			int status = 0;
			bool exited = false;
			while (bg_thread_wait(t, CHILD_POLL_MS)) {
				if (waitpid(pid, &status, WNOHANG) == pid) {
					exited = true;
					break;
				}
				log_child_up(&exits, clock_mono_ms() - started);
			}
			if (!exited) { /* serve is stopping */
				stop_child(pid);
				s->pid = 0;
				return;
			}
			s->pid = 0;
			log_child_exit(&exits, status);
			metric_add(&m_worker_restarts, 1);
			if (clock_mono_ms() - started >= CHILD_STABLE_MS)
				backoff = CHILD_BACKOFF_MIN_MS;
		}
		if (!bg_thread_wait(t, backoff))
			return;
		backoff = backoff * 2 > CHILD_BACKOFF_MAX_MS ? CHILD_BACKOFF_MAX_MS : backoff * 2;
	}
}

static int supervisor_start(struct supervisor *s, const char *config_path)
{
	memset(s, 0, sizeof *s);
	s->config_path = config_path;
	int64_t *cells = NULL;
	s->metrics_fd = worker_metrics_page(&cells);
	if (s->metrics_fd < 0)
		log_event(LOG_WARN, "worker_metrics", "error",
		          "no shared page: serve's /metrics lacks "
		          "the worker's series",
		          NULL);
	metrics_register(&m_worker_restarts);
	return bg_thread_start(&s->t, "supervisor", NULL, supervise, s);
}

/*
 * What serve adds on top of the instance app_open made: the layers above
 * app/ (every route, the gateway's request-log writer), so that app/ needs
 * none of their headers.
 */
/* What the management API's groups use, built once here: it lives as long as the routers. */
static struct api_wiring api_wiring;
static struct service_deps service_deps;
static struct oidc_http_deps oidc_deps;

static void serve_start(struct app *app)
{
	const struct config *c = &app->cfg;
	api_wiring = (struct api_wiring){
	    .api = {.store = app->store,
	            .control_pool = app->control_pool,
	            .console = app->console},
	    .keys = {.kills = app->kills,
	             .changes = app->feed,
	             .key_prefix = c->auth_key_prefix,
	             .bcrypt_cost = (int)c->auth_bcrypt_cost},
	    .orgs = {.kills = app->kills, .changes = app->feed, .keys = &api_wiring.keys},
	    .webhooks = {.allow_ranges = c->webhooks_allow_ranges},
	    .scanning = {.store = app->store,
	                 .key_prefix = c->auth_key_prefix,
	                 .kill = strcmp(c->secret_scanning_action, "kill") == 0,
	                 .refresh_min_ms = c->secret_scanning_refresh_min_s * 1000},
	};
	app->reqlog = reqlog_start_with(app->store, (size_t)c->request_log_queue_size,
	                                (size_t)c->request_log_batch_size,
	                                c->retention_request_log_days, c->retention_usage_days);
	service_deps = (struct service_deps){app->store, app->kv, c->security_contact};
	service_routes(&app->router, &service_deps);
	verify_routes(&app->router);
	api_routes(&app->router, &api_wiring);
	ingest_routes(&app->ingest_router);
	oidc_deps = (struct oidc_http_deps){app->oidc, app->console, c->console_public_url};
	oidc_routes(&app->console_router,
	            &oidc_deps); /* before console_routes: its assets catch all */
	console_routes(&app->console_router, app->console);
}

/*
 * What the data plane uses of the instance (gateway/gateway_deps.h), built
 * once everything it points to is open (after ingest_start); every HTTP
 * worker gets it (gateway_worker_init).
 */
static struct gateway_deps gateway_deps;

static void gateway_wire(struct app *app)
{
	gateway_deps = (struct gateway_deps){
	    .cfg = &app->cfg,
	    .store = app->store,
	    .kv = app->kv,
	    .verifier_pool = app->verifier_pool,
	    .lookup_pool = app->lookup_pool,
	    .kv_pool = app->kv_pool,
	    .control_pool = app->control_pool,
	    .keys = app->keys,
	    .kills = app->kills,
	    .orgs = app->orgs,
	    .guard = app->guard,
	    .key_guard = app->key_guard,
	    .decoy_key_id = app->decoy_key_id,
	    .store_down_since = &app->store_down_since,
	    .last_used = app->last_used,
	    .reqlog = app->reqlog,
	    .geoip = app->geoip,
	    .ingest_commit = app->ingest_commit,
	    .idem_claim_s = app->idem_claim_s,
	};
}

/* http_server_opts' worker hooks, with gateway_deps as their data. */
static void gateway_worker_start(struct http_worker *w, void *deps)
{
	gateway_worker_init(w, deps);
}

static void gateway_worker_stop(struct http_worker *w, void *deps)
{
	(void)deps;
	gateway_worker_fini(w);
}

/*
 * The ingest listener's group commit, started only with the listener. 0, or
 * -1 when its thread cannot start.
 */
static int ingest_start(struct app *app)
{
	if (!app->cfg.ingest_listen[0])
		return 0;
	struct ingest_commit_options o = {.queue_events = (int)app->cfg.ingest_queue_events};
	app->ingest_commit = ingest_commit_start(app->store, &o);
	return app->ingest_commit ? 0 : -1;
}

/*
 * Flush the request log (needs the store), then close the instance. The
 * group commit stops after the pools (a queued parse may still submit) and
 * commits what is queued; its completions resume requests on workers that
 * no longer run, which http_server_destroy frees after.
 */
static void serve_close(struct app *app)
{
	app_stop_pools(app); /* queued jobs may still submit request-log rows */
	console_destroy(app->console);
	app->console = NULL;
	oidc_providers_free(app->oidc);
	app->oidc = NULL;
	ingest_commit_stop(app->ingest_commit);
	app->ingest_commit = NULL;
	reqlog_stop(app->reqlog);
	app->reqlog = NULL;
	app_close(app);
}

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		http_server_stop(running);
}

/* SIGHUP: the TLS certificate and key are read again for new handshakes. */
static void on_reload(int sig)
{
	(void)sig;
	if (running)
		http_server_reload(running);
}

static int cli_serve(const struct cli_args *a)
{
	const char *path = cli_config_path(a);
	struct app app;
	char err[600];
	int rc = app_open(&app, path, err, sizeof err);
	if (rc < 0) {
		app_close(&app);
		return cli_fail(rc == -2 ? EXIT_USAGE : EXIT_RUNTIME, "%s", err);
	}
	bool supervised = config_worker_enabled(&app.cfg);
	/* A child that would refuse its settings is refused here, not restarted forever. */
	if (supervised && delivery_config_check(&app.cfg, err, sizeof err) < 0) {
		app_close(&app);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	/* The console and the providers first: their routes carry them. */
	struct console_deps cd = {.store = app.store, .kv = app.kv, .cfg = &app.cfg};
	app.console = console_create(&cd, err, sizeof err);
	if (!app.console || oidc_providers_open(&app.cfg, &app.oidc, err, sizeof err) < 0) {
		serve_close(&app);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	serve_start(&app);
	if (ingest_start(&app) < 0) {
		serve_close(&app);
		return cli_fail(EXIT_RUNTIME, "cannot start the ingest group commit");
	}
	gateway_wire(&app);
	struct http_server_opts opts = {
	    .cfg = &app.cfg,
	    .router = &app.router,
	    .control_pool = app.control_pool,
	    .fallback = gateway_forward,
	    .ingest_router = &app.ingest_router,
	    .console_router = &app.console_router,
	    .console_fallback = api_console_fallback,
	    .console_fallback_data = &app.router, /* the /v1 routes it answers */
	    .worker_init = gateway_worker_start,
	    .worker_fini = gateway_worker_stop,
	    .worker_data = &gateway_deps,
	};
	app.server = http_server_create(&opts, err, sizeof err);
	if (!app.server) {
		serve_close(&app);
		return cli_fail(EXIT_RUNTIME, "%s", err);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	running = app.server;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_reload;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char port[16];
	snprintf(port, sizeof port, "%d", http_server_port(app.server));
	log_event(LOG_INFO, "listening", "listen", app.cfg.server_listen, "port", port, "tls",
	          app.cfg.server_tls_cert[0] ? "on" : "off", "version", PORTCULLIS_VERSION, NULL);
	if (http_server_ingest_port(app.server) >= 0) {
		snprintf(port, sizeof port, "%d", http_server_ingest_port(app.server));
		log_event(LOG_INFO, "listening_ingest", "listen", app.cfg.ingest_listen, "port",
		          port, "tls", app.cfg.server_tls_cert[0] ? "on" : "off", NULL);
	}
	if (http_server_console_port(app.server) >= 0) {
		snprintf(port, sizeof port, "%d", http_server_console_port(app.server));
		log_event(LOG_INFO, "listening_console", "listen", app.cfg.console_listen, "port",
		          port, "tls", app.cfg.console_tls_cert[0] ? "on" : "off", "public_url",
		          app.cfg.console_public_url, NULL);
	}
	struct supervisor sup;
	if (supervised && supervisor_start(&sup, path) < 0) {
		http_server_destroy(app.server);
		app.server = NULL;
		serve_close(&app);
		return cli_fail(EXIT_RUNTIME, "cannot start the worker supervisor");
	}
	http_server_run(app.server);
	running = NULL;
	if (supervised)
		bg_thread_stop(&sup.t); /* SIGTERM to the child, wait for it */
	/*
	 * The workers have stopped, but a request abandoned at the end of the
	 * grace may still sit in a pool job, which resumes it on its worker when
	 * done: drain the pools while the workers still exist, then free them.
	 */
	app_stop_pools(&app);
	ingest_commit_stop(app.ingest_commit);
	app.ingest_commit = NULL;
	http_server_destroy(app.server);
	app.server = NULL;
	log_event(LOG_INFO, "stopped", NULL);
	serve_close(&app);
	return EXIT_OK;
}

static int cli_migrate(const struct cli_args *a)
{
	const char *path = cli_config_path(a);
	struct config cfg;
	char err[600];
	if (config_load(&cfg, path, err, sizeof err) < 0) {
		config_free(&cfg);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	struct store *st = NULL;
	if (store_open(cfg.store_url, 1, &st, err, sizeof err) != STORE_OK) {
		config_free(&cfg);
		return cli_fail(EXIT_RUNTIME, "store: %s", err);
	}
	int applied = 0;
	int rc = store_migrate(st, &applied);
	store_close(st);
	config_free(&cfg);
	if (rc != STORE_OK)
		return cli_fail(EXIT_RUNTIME, "migrations failed");
	printf("applied %d migration(s)\n", applied);
	return EXIT_OK;
}

static int cli_config_check(const struct cli_args *a)
{
	const char *path = cli_config_path(a);
	struct config cfg;
	char err[600];
	int rc = config_load(&cfg, path, err, sizeof err);
	if (rc == 0)
		rc = delivery_config_check(&cfg, err, sizeof err);
	if (rc == 0) {
		/* The [oidc.NAME] secrets, CA files and ranges, as serve opens them. */
		struct oidc_providers *op = NULL;
		rc = oidc_providers_open(&cfg, &op, err, sizeof err);
		oidc_providers_free(op);
	}
	config_free(&cfg);
	if (rc < 0)
		return cli_fail(EXIT_USAGE, "%s", err);
	printf("%s: ok\n", path);
	return EXIT_OK;
}

static int cli_config_example(const struct cli_args *a)
{
	(void)a;
	config_write_example(stdout);
	return EXIT_OK;
}

const struct cli_command cli_cmd_serve = {
    .name = "serve",
    CLI_OPTS(cli_opts_config),
    .summary = "run the gateway in the foreground",
    .run = cli_serve,
};

const struct cli_command cli_cmd_migrate = {
    .name = "migrate",
    CLI_OPTS(cli_opts_config),
    .summary = "apply database migrations (serve also applies them at start-up)",
    .run = cli_migrate,
};

const struct cli_command cli_cmd_config_check = {
    .name = "config",
    .verb = "check",
    CLI_OPTS(cli_opts_config),
    .summary = "validate a configuration without starting; errors name the file and line",
    .run = cli_config_check,
};

const struct cli_command cli_cmd_config_example = {
    .name = "config",
    .verb = "example",
    .summary = "print every setting with its default",
    .run = cli_config_example,
};
