/*
 * test_router.c: unit tests for src/http/router.c: exact and {param}
 * matching, parameters stored in the request arena, first-added wins, and
 * the 405 Allow list (each method once, in route order, bounded by cap).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/request.h"
#include "http/router.h"

static void h_list(struct http_request *req)
{
	(void)req;
}
static void h_create(struct http_request *req)
{
	(void)req;
}
static void h_get(struct http_request *req)
{
	(void)req;
}
static void h_delete(struct http_request *req)
{
	(void)req;
}
static void h_kill(struct http_request *req)
{
	(void)req;
}
static void h_unkill(struct http_request *req)
{
	(void)req;
}
static void h_org_key(struct http_request *req)
{
	(void)req;
}
static void h_health(struct http_request *req)
{
	(void)req;
}

static struct router *make_router(void)
{
	struct router *r = calloc(1, sizeof *r);
	assert_non_null(r);
	router_add(r, "GET", "/healthz", h_health, 0);
	router_add(r, "GET", "/v1/api-keys", h_list, 0);
	router_add(r, "POST", "/v1/api-keys", h_create, ROUTE_BLOCKING);
	router_add(r, "GET", "/v1/api-keys/{keyId}", h_get, 0);
	router_add(r, "DELETE", "/v1/api-keys/{keyId}", h_delete, 0);
	router_add(r, "POST", "/v1/api-keys/{keyId}/kill", h_kill, 0);
	router_add(r, "DELETE", "/v1/api-keys/{keyId}/kill", h_unkill, 0);
	router_add(r, "POST", "/v1/orgs/{orgId}/api-keys/{keyId}", h_org_key, 0);
	return r;
}

struct match {
	enum route_match m;
	const struct route *rt;
	char allow[64];
};

static struct match run(const struct router *r, struct http_request *req, const char *method,
                        const char *path)
{
	struct match out = {.rt = NULL};
	memset(out.allow, 'x', sizeof out.allow);
	out.m = router_match(r, req, method, path, &out.rt, out.allow, sizeof out.allow);
	return out;
}

static int setup(void **state)
{
	struct http_request *req = calloc(1, sizeof *req);
	assert_non_null(req);
	arena_init(&req->arena);
	*state = req;
	return 0;
}

static int teardown(void **state)
{
	struct http_request *req = *state;
	arena_free(&req->arena);
	free(req);
	return 0;
}

static void test_exact_routes(void **state)
{
	struct http_request *req = *state;
	struct router *r = make_router();
	struct match m = run(r, req, "GET", "/healthz");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_ptr_equal(m.rt->fn, h_health);
	assert_int_equal(m.rt->index, 0);
	assert_int_equal(req->n_params, 0);

	m = run(r, req, "POST", "/v1/api-keys");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_ptr_equal(m.rt->fn, h_create);
	assert_int_equal(m.rt->flags, ROUTE_BLOCKING);
	assert_string_equal(m.rt->pattern, "/v1/api-keys");
	assert_int_equal(m.rt->index, 2);
	free(r);
}

static void test_params(void **state)
{
	struct http_request *req = *state;
	struct router *r = make_router();
	struct match m = run(r, req, "GET", "/v1/api-keys/01HXZ9G7KMV2QX8Y1S5RJW3B7T");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_ptr_equal(m.rt->fn, h_get);
	assert_int_equal(req->n_params, 1);
	assert_string_equal(http_param(req, "keyId"), "01HXZ9G7KMV2QX8Y1S5RJW3B7T");
	assert_null(http_param(req, "orgId"));

	m = run(r, req, "DELETE", "/v1/api-keys/abc/kill");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_ptr_equal(m.rt->fn, h_unkill);
	assert_string_equal(http_param(req, "keyId"), "abc");

	m = run(r, req, "POST", "/v1/orgs/org_1/api-keys/k2");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_ptr_equal(m.rt->fn, h_org_key);
	assert_int_equal(req->n_params, 2);
	assert_string_equal(http_param(req, "orgId"), "org_1");
	assert_string_equal(http_param(req, "keyId"), "k2");
	free(r);
}

static void test_no_path(void **state)
{
	struct http_request *req = *state;
	struct router *r = make_router();
	static const char *const paths[] = {
	    "/",
	    "",
	    "/healthz/",
	    "/healthzz",
	    "/health",
	    "/HEALTHZ",
	    "/v1/api-keys/",        /* empty parameter */
	    "/v1/api-keys//kill",   /* empty parameter */
	    "/v1/api-keys/a/b",     /* parameter is one segment */
	    "/v1/api-keys/a/kill/", /* trailing slash */
	    "/v1/api-keys/a/killer",
	    "/v1/orgs/o/api-keys",
	    "/v1/api-keysx",
	    "//v1/api-keys",
	    "/bench/item", /* no pattern starts "/b": refused before the walk */
	    "/\xc3\xa9",
	    "v1/api-keys",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct match m = run(r, req, "GET", paths[i]);
		if (m.m != ROUTE_NO_PATH)
			fail_msg("%s: got %d", paths[i], (int)m.m);
		assert_string_equal(m.allow, "");
	}
	free(r);
}

static void test_method_not_allowed(void **state)
{
	struct http_request *req = *state;
	struct router *r = make_router();
	struct match m = run(r, req, "PUT", "/v1/api-keys");
	assert_int_equal(m.m, ROUTE_NO_METHOD);
	assert_string_equal(m.allow, "GET, POST");

	m = run(r, req, "POST", "/v1/api-keys/k1");
	assert_int_equal(m.m, ROUTE_NO_METHOD);
	assert_string_equal(m.allow, "GET, DELETE");

	m = run(r, req, "GET", "/v1/api-keys/k1/kill");
	assert_int_equal(m.m, ROUTE_NO_METHOD);
	assert_string_equal(m.allow, "POST, DELETE");

	m = run(r, req, "POST", "/healthz");
	assert_int_equal(m.m, ROUTE_NO_METHOD);
	assert_string_equal(m.allow, "GET");

	/* Methods are case-sensitive (RFC 9110 section 9.1). */
	m = run(r, req, "get", "/healthz");
	assert_int_equal(m.m, ROUTE_NO_METHOD);
	free(r);
}

static void test_allow_lists_each_method_once(void **state)
{
	struct http_request *req = *state;
	struct router r;
	memset(&r, 0, sizeof r);
	router_add(&r, "GET", "/x/{a}", h_get, 0);
	router_add(&r, "GET", "/x/{b}", h_list, 0);
	router_add(&r, "PATCH", "/x/{c}", h_create, 0);
	router_add(&r, "PATCH", "/x/y", h_create, 0);
	struct match m = run(&r, req, "DELETE", "/x/y");
	assert_int_equal(m.m, ROUTE_NO_METHOD);
	assert_string_equal(m.allow, "GET, PATCH");
	/* The first route added wins when two match. */
	m = run(&r, req, "GET", "/x/y");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_ptr_equal(m.rt->fn, h_get);
	assert_string_equal(http_param(req, "a"), "y");
}

static void test_allow_respects_cap(void **state)
{
	struct http_request *req = *state;
	struct router *r = make_router();
	const struct route *rt = NULL;
	char small[8];
	memset(small, 'x', sizeof small);
	enum route_match m = router_match(r, req, "PUT", "/v1/api-keys", &rt, small, sizeof small);
	assert_int_equal(m, ROUTE_NO_METHOD);
	assert_true(strlen(small) < sizeof small);
	assert_string_equal(small, "GET");
	free(r);
}

static void test_too_many_params(void **state)
{
	struct http_request *req = *state;
	struct router r;
	memset(&r, 0, sizeof r);
	router_add(&r, "GET", "/{a}/{b}/{c}/{d}", h_get, 0);
	router_add(&r, "GET", "/{a}/{b}/{c}/{d}/{e}", h_list, 0);
	struct match m = run(&r, req, "GET", "/1/2/3/4");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_int_equal(req->n_params, HTTP_MAX_PARAMS);
	assert_string_equal(http_param(req, "d"), "4");
	/* More parameters than a request can hold never match. */
	m = run(&r, req, "GET", "/1/2/3/4/5");
	assert_int_equal(m.m, ROUTE_NO_PATH);
}

/*
 * The first-byte filter refuses only what the walk would: a "/" pattern
 * still matches "/", and a pattern that starts with a parameter takes
 * every first byte.
 */
static void test_first_byte_filter(void **state)
{
	struct http_request *req = *state;
	struct router r;
	memset(&r, 0, sizeof r);
	router_add(&r, "GET", "/", h_health, 0);
	router_add(&r, "GET", "/v1/x", h_list, 0);
	assert_int_equal(run(&r, req, "GET", "/").m, ROUTE_FOUND);
	assert_int_equal(run(&r, req, "GET", "/v1/x").m, ROUTE_FOUND);
	assert_int_equal(run(&r, req, "POST", "/v1/x").m, ROUTE_NO_METHOD);
	assert_int_equal(run(&r, req, "GET", "/w1/x").m, ROUTE_NO_PATH);
	assert_int_equal(run(&r, req, "GET", "/\xff").m, ROUTE_NO_PATH);
	router_add(&r, "GET", "/{a}/y", h_get, 0);
	struct match m = run(&r, req, "GET", "/zzz/y");
	assert_int_equal(m.m, ROUTE_FOUND);
	assert_string_equal(http_param(req, "a"), "zzz");
	assert_int_equal(run(&r, req, "GET", "/\xff/y").m, ROUTE_FOUND);
	assert_int_equal(run(&r, req, "GET", "/w1/x").m, ROUTE_NO_PATH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_exact_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_allow_lists_each_method_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_allow_respects_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_byte_filter, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
