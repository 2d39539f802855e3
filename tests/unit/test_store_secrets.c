/*
 * test_store_secrets.c: the sealed-secret key registry and the sealed columns
 * (src/store/store_secrets.h) on SQLite always and on PostgreSQL when
 * PORTCULLIS_TEST_PG_URL is set: the current key, sealing to it, counts per
 * key, retire refused while anything is sealed to a key (and for the current
 * key), rewrap in batches re-sealing every value to the newest key with its
 * context, leaving alone what does not open.
 *
 * Endpoint rows are written with SQL through the driver, their secrets sealed
 * by store_secret_seal: this file tests the secrets, not the endpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/sealed.h"
#include "store/store_secrets.h"

#define FIXTURE_DB_NAME "portcullis_test_secrets"
#define FIXTURE_TMP     "pcl-secrets"
#include "store_fixture.h"

#define ORG_A "ORGA0000000000000000000001"
#define ORG_B "ORGB0000000000000000000002"

/* The suite's keyring: a fresh one for each test (setup), freed by teardown. */
static struct sealed_keyring *kr;

static void raw_query(const struct fixture *fx, const char *sql, const struct db_param *p, int n,
                      struct db_result **out)
{
	struct db_conn *c = NULL;
	char err[512];
	if (fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	assert_int_equal(fx->driver->query(c, sql, p, n, out), DB_OK);
	fx->driver->disconnect(c);
}

static int with_orgs(void **state, int (*setup)(void **))
{
	setup(state);
	struct fixture *fx = *state;
	make_org(fx->st, ORG_A, NULL);
	make_org(fx->st, ORG_B, NULL);
	kr = sealed_keyring_new();
	return 0;
}

static int setup_sqlite_orgs(void **state)
{
	return with_orgs(state, setup_sqlite);
}

static int setup_postgres_orgs(void **state)
{
	return with_orgs(state, setup_postgres);
}

static int teardown_keyring(void **state)
{
	sealed_keyring_free(kr);
	kr = NULL;
	return teardown(state);
}

/* A new key in the keyring, registered in the store; its id into id. */
static void add_key(struct fixture *fx, char id[SEALED_KEY_ID_LEN + 1])
{
	uint8_t pk[32];
	assert_int_equal(sealed_keyring_generate(kr, id, pk), SEALED_OK);
	assert_int_equal(store_secret_key_add(fx->st, id, pk, NULL), STORE_OK);
}

static const char *secret_of(const char *ep, const char *column)
{
	static char buf[128];
	snprintf(buf, sizeof buf, "whsec_%s_%s", column, ep);
	return buf;
}

/* An endpoint row whose secret (and prev_secret when with_prev) is sealed by the store. */
static void make_endpoint(struct fixture *fx, const char *ep, const char *org, bool with_prev)
{
	char sealed[SEALED_TEXT_MAX], prev[SEALED_TEXT_MAX];
	struct sealed_context c = {"webhook_endpoints", "secret", ep, org};
	const char *s = secret_of(ep, "secret");
	assert_int_equal(
	    store_secret_seal(fx->st, &c, (const uint8_t *)s, strlen(s), sealed, sizeof sealed),
	    STORE_OK);
	if (with_prev) {
		c.column = "prev_secret";
		s = secret_of(ep, "prev_secret");
		assert_int_equal(
		    store_secret_seal(fx->st, &c, (const uint8_t *)s, strlen(s), prev, sizeof prev),
		    STORE_OK);
	}
	int64_t now = clock_now_ms();
	struct db_param p[] = {P_TEXT(ep),
	                       P_TEXT(org),
	                       P_TEXT("https://receiver.example/hook"),
	                       P_TEXT(sealed),
	                       with_prev ? P_TEXT(prev) : P_TEXT(NULL),
	                       P_INT(now),
	                       P_INT(now)};
	raw_query(
	    fx,
	    "INSERT INTO webhook_endpoints (id, org_id, url, secret, prev_secret, created_at, "
	    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
	    p, 7, NULL);
}

/* The stored value of ep's column (malloc'd, or NULL for SQL NULL). */
static char *stored_value(const struct fixture *fx, const char *ep, const char *column)
{
	struct db_result *r = NULL;
	char sql[128];
	struct db_param p[] = {P_TEXT(ep)};
	snprintf(sql, sizeof sql, "SELECT %s FROM webhook_endpoints WHERE id = ?", column);
	raw_query(fx, sql, p, 1, &r);
	assert_int_equal(r->nrows, 1);
	char *v = db_text(r, 0, 0) ? strdup(db_text(r, 0, 0)) : NULL;
	db_result_free(r);
	return v;
}

/* ep's column opens with fx's keyring to its secret and is sealed to key_id. */
static void assert_sealed_to(const struct fixture *fx, const char *ep, const char *org,
                             const char *column, const char *key_id)
{
	char *v = stored_value(fx, ep, column);
	char got_id[SEALED_KEY_ID_LEN + 1];
	uint8_t out[256];
	size_t n = 0;
	struct sealed_context c = {"webhook_endpoints", column, ep, org};
	const char *want = secret_of(ep, column);

	assert_non_null(v);
	assert_int_equal(sealed_stored_key_id(v, got_id), SEALED_OK);
	assert_string_equal(got_id, key_id);
	assert_int_equal(sealed_open(kr, v, &c, out, sizeof out, &n), SEALED_OK);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	free(v);
}

static int64_t count_for(const struct fixture *fx, const char *key_id)
{
	int64_t n = -1;
	assert_int_equal(store_secrets_count_for_key(fx->st, key_id, &n), STORE_OK);
	return n;
}

static void test_keys_registry(void **state)
{
	struct fixture *fx = *state;
	char id[SEALED_KEY_ID_LEN + 1], k1[SEALED_KEY_ID_LEN + 1], k2[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[32], pk1[32];
	char out[SEALED_TEXT_MAX];
	struct sealed_context c = {"webhook_endpoints", "secret", "ep_1", ORG_A};

	/* No key pair: nothing current, nothing can be sealed. */
	assert_int_equal(store_secret_key_current(fx->st, id, pk), STORE_ENOTFOUND);
	assert_int_equal(store_secret_seal(fx->st, &c, (const uint8_t *)"s", 1, out, sizeof out),
	                 STORE_ENOTFOUND);

	add_key(fx, k1);
	assert_int_equal(sealed_keyring_key(kr, 0, id, pk1), SEALED_OK);
	assert_int_equal(store_secret_key_current(fx->st, id, pk), STORE_OK);
	assert_string_equal(id, k1);
	assert_memory_equal(pk, pk1, 32);
	/* Known id again; an id that is not the key's; a malformed id. */
	assert_int_equal(store_secret_key_add(fx->st, k1, pk1, NULL), STORE_ECONFLICT);
	char wrong[SEALED_KEY_ID_LEN + 1] = "0123456789abcdef";
	assert_int_equal(store_secret_key_add(fx->st, wrong, pk1, NULL), STORE_ERROR);
	assert_int_equal(store_secret_key_add(fx->st, "nothex", pk1, NULL), STORE_ERROR);

	/* Two more keys in the same millisecond: each newer than the last. */
	add_key(fx, k2);
	char k3[SEALED_KEY_ID_LEN + 1];
	add_key(fx, k3);
	assert_int_equal(store_secret_key_current(fx->st, id, pk), STORE_OK);
	assert_string_equal(id, k3);
	struct store_secret_key *keys = NULL;
	int n = 0;
	assert_int_equal(store_secret_key_list(fx->st, &keys, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_string_equal(keys[0].key_id, k1);
	assert_string_equal(keys[1].key_id, k2);
	assert_string_equal(keys[2].key_id, k3);
	assert_memory_equal(keys[0].public_key, pk1, 32);
	assert_true(keys[0].created_at < keys[1].created_at);
	assert_true(keys[1].created_at < keys[2].created_at);
	assert_int_equal(keys[0].retired_at, -1);
	free(keys);

	/* Sealing goes to the current key and opens for its context only. */
	assert_int_equal(
	    store_secret_seal(fx->st, &c, (const uint8_t *)"s3cret", 6, out, sizeof out), STORE_OK);
	assert_int_equal(sealed_stored_key_id(out, id), SEALED_OK);
	assert_string_equal(id, k3);
	uint8_t pt[16];
	size_t len = 0;
	assert_int_equal(sealed_open(kr, out, &c, pt, sizeof pt, &len), SEALED_OK);
	assert_memory_equal(pt, "s3cret", 6);
	c.org_id = ORG_B;
	assert_int_equal(sealed_open(kr, out, &c, pt, sizeof pt, &len), SEALED_ECONTEXT);
	/* A bad context or too small a buffer is an error, not a short text. */
	c.row_id = "";
	assert_int_equal(store_secret_seal(fx->st, &c, (const uint8_t *)"s", 1, out, sizeof out),
	                 STORE_ERROR);
	c.row_id = "ep_1";
	assert_int_equal(store_secret_seal(fx->st, &c, (const uint8_t *)"s", 1, out, 30),
	                 STORE_ERROR);
	assert_string_equal(out, "");

	/* Retire: the current key is refused, an unknown key is not found, an old idle one goes. */
	assert_int_equal(store_secret_key_retire(fx->st, k3, NULL), STORE_ECONFLICT);
	assert_int_equal(store_secret_key_retire(fx->st, wrong, NULL), STORE_ENOTFOUND);
	assert_int_equal(store_secret_key_retire(fx->st, "x", NULL), STORE_ENOTFOUND);
	assert_int_equal(store_secret_key_retire(fx->st, k1, NULL), STORE_OK);
	assert_int_equal(store_secret_key_retire(fx->st, k1, NULL), STORE_ENOTFOUND);
	assert_int_equal(store_secret_key_list(fx->st, &keys, &n), STORE_OK);
	assert_true(keys[0].retired_at >= 0);
	assert_int_equal(keys[1].retired_at, -1);
	free(keys);
}

static void test_retire_refused_until_rewrap(void **state)
{
	struct fixture *fx = *state;
	char k1[SEALED_KEY_ID_LEN + 1], k2[SEALED_KEY_ID_LEN + 1];
	struct store_rewrap_stats s;
	const char *eps[] = {"ep_01", "ep_02", "ep_03", "ep_04", "ep_05"};
	const char *orgs[] = {ORG_A, ORG_B, ORG_A, ORG_B, ORG_A};

	add_key(fx, k1);
	for (int i = 0; i < 5; i++)
		make_endpoint(fx, eps[i], orgs[i], i % 2 == 0);
	/* 5 secrets and 3 previous secrets. */
	assert_int_equal(count_for(fx, k1), 8);

	/* Rotate: new secrets go to k2; k1 is still in use. */
	add_key(fx, k2);
	make_endpoint(fx, "ep_06", ORG_B, false);
	assert_int_equal(count_for(fx, k1), 8);
	assert_int_equal(count_for(fx, k2), 1);
	assert_int_equal(store_secret_key_retire(fx->st, k1, NULL), STORE_ECONFLICT);

	/* Rewrap in batches of 2: every k1 value is re-sealed to k2, for its own place. */
	assert_int_equal(store_secrets_rewrap(fx->st, kr, 2, &s), STORE_OK);
	assert_int_equal(s.rewrapped, 8);
	assert_int_equal(s.failed, 0);
	assert_int_equal(s.changed, 0);
	assert_string_equal(s.first_failed, "");
	assert_int_equal(count_for(fx, k1), 0);
	assert_int_equal(count_for(fx, k2), 9);
	for (int i = 0; i < 5; i++) {
		assert_sealed_to(fx, eps[i], orgs[i], "secret", k2);
		if (i % 2 == 0)
			assert_sealed_to(fx, eps[i], orgs[i], "prev_secret", k2);
		else
			assert_null(stored_value(fx, eps[i], "prev_secret"));
	}
	assert_sealed_to(fx, "ep_06", ORG_B, "secret", k2);
	/* A rotated endpoint's previous secret is its old secret text, context "secret". */
	struct sealed_context rc = {"webhook_endpoints", "secret", "ep_01", ORG_A};
	char *was = stored_value(fx, "ep_01", "prev_secret");
	assert_non_null(was);
	free(was);
	char *cur = stored_value(fx, "ep_01", "secret");
	struct db_param mv[] = {P_TEXT(cur), P_TEXT("ep_01")};
	raw_query(fx, "UPDATE webhook_endpoints SET prev_secret = ? WHERE id = ?", mv, 2, NULL);
	free(cur);
	char k3[SEALED_KEY_ID_LEN + 1];
	add_key(fx, k3);
	assert_int_equal(store_secrets_rewrap(fx->st, kr, 2, &s), STORE_OK);
	assert_int_equal(s.failed, 0);
	assert_int_equal(s.rewrapped, 9);
	assert_int_equal(count_for(fx, k2), 0);
	char *moved = stored_value(fx, "ep_01", "prev_secret");
	uint8_t pt[128];
	size_t len = 0;
	assert_int_equal(sealed_open(kr, moved, &rc, pt, sizeof pt, &len), SEALED_OK);
	assert_int_equal(len, strlen(secret_of("ep_01", "secret")));
	assert_memory_equal(pt, secret_of("ep_01", "secret"), len);
	free(moved);

	/* Nothing left to do the second time. */
	assert_int_equal(store_secrets_rewrap(fx->st, kr, 0, &s), STORE_OK);
	assert_int_equal(s.rewrapped, 0);
	assert_int_equal(store_secret_key_retire(fx->st, k1, NULL), STORE_OK);
	assert_int_equal(store_secret_key_retire(fx->st, k2, NULL), STORE_OK);
	/* After the retires, k3 is still current and seals. */
	char id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[32];
	assert_int_equal(store_secret_key_current(fx->st, id, pk), STORE_OK);
	assert_string_equal(id, k3);
}

static void test_rewrap_leaves_what_does_not_open(void **state)
{
	struct fixture *fx = *state;
	char k1[SEALED_KEY_ID_LEN + 1], k2[SEALED_KEY_ID_LEN + 1];
	struct store_rewrap_stats s;

	add_key(fx, k1);
	make_endpoint(fx, "ep_a", ORG_A, false);
	make_endpoint(fx, "ep_b", ORG_B, false);
	/* ep_b's ciphertext copied onto ep_c (another row and tenant): it must not open there. */
	make_endpoint(fx, "ep_c", ORG_A, false);
	char *b = stored_value(fx, "ep_b", "secret");
	struct db_param p[] = {P_TEXT(b), P_TEXT("ep_c")};
	raw_query(fx, "UPDATE webhook_endpoints SET secret = ? WHERE id = ?", p, 2, NULL);

	/* A keyring that lacks the current key is refused before anything changes. */
	add_key(fx, k2);
	struct sealed_keyring *old_only = sealed_keyring_new();
	char id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[32];
	assert_int_equal(sealed_keyring_generate(old_only, id, pk), SEALED_OK);
	assert_int_equal(store_secrets_rewrap(fx->st, old_only, 0, &s), STORE_ECONFLICT);
	sealed_keyring_free(old_only);
	assert_int_equal(count_for(fx, k1), 3);

	assert_int_equal(store_secrets_rewrap(fx->st, kr, 0, &s), STORE_OK);
	assert_int_equal(s.rewrapped, 2);
	assert_int_equal(s.failed, 1);
	assert_string_equal(s.first_failed, "webhook_endpoints.secret ep_c");
	assert_sealed_to(fx, "ep_a", ORG_A, "secret", k2);
	assert_sealed_to(fx, "ep_b", ORG_B, "secret", k2);
	/* Left exactly as it was, so k1 cannot be retired yet. */
	char *c = stored_value(fx, "ep_c", "secret");
	assert_string_equal(c, b);
	free(c);
	free(b);
	assert_int_equal(count_for(fx, k1), 1);
	assert_int_equal(store_secret_key_retire(fx->st, k1, NULL), STORE_ECONFLICT);
	/* Once the row is dealt with (here: deleted), k1 can go. */
	struct db_param d[] = {P_TEXT("ep_c")};
	raw_query(fx, "DELETE FROM webhook_endpoints WHERE id = ?", d, 1, NULL);
	assert_int_equal(store_secret_key_retire(fx->st, k1, NULL), STORE_OK);
}

static void test_no_key_pair(void **state)
{
	struct fixture *fx = *state;
	struct store_rewrap_stats s;
	int64_t n = -1;

	assert_int_equal(store_secrets_rewrap(fx->st, kr, 0, &s), STORE_ENOTFOUND);
	assert_int_equal(store_secrets_count_for_key(fx->st, "0123456789abcdef", &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_secrets_count_for_key(fx->st, "0123", &n), STORE_ERROR);
}

#define SECRETS_TESTS(setup)                                                                       \
	cmocka_unit_test_setup_teardown(test_keys_registry, setup, teardown_keyring),              \
	    cmocka_unit_test_setup_teardown(test_retire_refused_until_rewrap, setup,               \
	                                    teardown_keyring),                                     \
	    cmocka_unit_test_setup_teardown(test_rewrap_leaves_what_does_not_open, setup,          \
	                                    teardown_keyring),                                     \
	    cmocka_unit_test_setup_teardown(test_no_key_pair, setup, teardown_keyring)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {SECRETS_TESTS(setup_sqlite_orgs)};
	const struct CMUnitTest postgres_tests[] = {SECRETS_TESTS(setup_postgres_orgs)};
	return fixture_main("store_secrets", sqlite_tests, postgres_tests,
	                    sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
