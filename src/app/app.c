/*
 * app.c: wiring of one running instance (see app.h): open the tiers, start
 * the pools and background workers, register routes, and take it all down
 * again in reverse order.
 */
#include "app/app.h"

#include "api/service.h"
#include "core/log.h"
#include "http/request.h"

#include <stdio.h>
#include <string.h>

int app_open(struct app *app, const char *config_path, char *err, size_t cap)
{
	memset(app, 0, sizeof *app);
	if (config_load(&app->cfg, config_path, err, cap) < 0)
		return -2;
	log_setup((enum log_level)log_level_parse(app->cfg.log_level),
		  strcmp(app->cfg.log_format, "json") == 0);
	if (app->cfg.auth_bcrypt_cost < 12)
		log_warn("[auth] bcrypt_cost is %lld; below 12 is too weak for production",
			 (long long)app->cfg.auth_bcrypt_cost);
	char msg[512];
	if (store_open(app->cfg.store_url, (int)app->cfg.store_pool_size, &app->store, msg,
		       sizeof msg) != STORE_OK) {
		snprintf(err, cap, "store: %s", msg);
		return -1;
	}
	int applied = 0;
	if (store_migrate(app->store, &applied) != STORE_OK) {
		snprintf(err, cap, "store: migrations failed");
		return -1;
	}
	if (applied)
		log_info("applied %d migration(s)", applied);
	if (kv_open(app->cfg.kv_url, &app->kv) != KV_OK) {
		snprintf(err, cap, "kv: cannot open %s", app->cfg.kv_url);
		return -1;
	}
	app->control_pool = workpool_create("control", 4, 1024);
	return 0;
}

void app_routes(struct app *app)
{
	service_routes(&app->router);
}

void app_close(struct app *app)
{
	workpool_destroy(app->control_pool);
	app->control_pool = NULL;
	kv_close(app->kv);
	app->kv = NULL;
	store_close(app->store);
	app->store = NULL;
	config_free(&app->cfg);
}

void app_store_error(struct http_request *req, int rc)
{
	log_event(LOG_ERROR, "store_error", "request_id", req->request_id, "code",
		  rc == STORE_EUNAVAILABLE ? "unavailable" : "error", NULL);
	http_set_header(req, "Retry-After", "1");
	http_respond_problem(req, 503, "STORE_UNAVAILABLE",
			     "The database could not be reached; retry shortly.", NULL);
}
