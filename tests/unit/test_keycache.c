/*
 * test_keycache.c: unit tests for src/auth/keycache.c: misses, verified
 * secrets and when they stop counting (rotation, grace, a
 * changed previous hash), stale reads losing to newer rows and to changes
 * made while they were read, the last-used
 * coalescing and its touched_at hint, the pre-keyed secret MAC, eviction
 * bounds and least-recently-used eviction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/keycache.h"
#include "core/clock.h"

#define KEY_ID "01J00000000000000000000000"

static struct store_key row_with(const char *hash, const char *prev, int64_t prev_until,
                                 int64_t version)
{
	struct store_key k;
	memset(&k, 0, sizeof k);
	snprintf(k.id, sizeof k.id, "%s", KEY_ID);
	snprintf(k.secret_hash, sizeof k.secret_hash, "%s", hash);
	snprintf(k.prev_secret_hash, sizeof k.prev_secret_hash, "%s", prev);
	k.prev_expires_at = prev_until;
	k.version = version;
	return k;
}

static void mac_of(struct keycache *kc, const char *secret, uint8_t mac[32])
{
	keycache_secret_mac(kc, secret, strlen(secret), mac);
}

/* Cache row as verified for mac's secret, read with no change in between. */
static void verified(struct keycache *kc, const struct store_key *row, const uint8_t mac[32])
{
	assert_true(keycache_put_verified(kc, row, keycache_generation(kc, row->id),
	                                  KC_SLOT_CURRENT, row->secret_hash, mac));
}

/* Cache row as verified for some other secret than the tests present. */
static void put(struct keycache *kc, const struct store_key *row)
{
	uint8_t someone[32];
	mac_of(kc, "someone else's secret", someone);
	verified(kc, row, someone);
}

static void test_miss_and_verified(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100);
	uint8_t good[32], bad[32];
	mac_of(kc, "good-secret", good);
	mac_of(kc, "bad-secret", bad);
	struct store_key out, row = row_with("$2b$04$hashA", "", -1, 1);
	int64_t now = clock_now_ms();

	assert_int_equal(keycache_check(kc, KEY_ID, good, now, &out, NULL), KC_MISS);
	verified(kc, &row, good);
	assert_int_equal(keycache_check(kc, KEY_ID, good, now, &out, NULL), KC_VERIFIED);
	assert_string_equal(out.secret_hash, "$2b$04$hashA");
	assert_int_equal(keycache_check(kc, KEY_ID, bad, now, &out, NULL), KC_UNVERIFIED);
	/* A verification against a hash the row does not have is ignored. */
	assert_true(keycache_put_verified(kc, &row, keycache_generation(kc, KEY_ID),
	                                  KC_SLOT_CURRENT, "$2b$04$other", bad));
	assert_int_equal(keycache_check(kc, KEY_ID, bad, now, &out, NULL), KC_UNVERIFIED);
	/* So is one of an empty previous slot. */
	assert_true(keycache_put_verified(kc, &row, keycache_generation(kc, KEY_ID),
	                                  KC_SLOT_PREVIOUS, "", bad));
	assert_int_equal(keycache_check(kc, KEY_ID, bad, now + 1, &out, NULL), KC_UNVERIFIED);
	keycache_destroy(kc);
}

static void test_rotation_drops_the_old_secret(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100);
	uint8_t old[32];
	mac_of(kc, "old", old);
	struct store_key out, row = row_with("$2b$04$hashA", "", -1, 1);
	int64_t now = clock_now_ms();
	verified(kc, &row, old);

	/* Kill and lift bump the version but keep the hash: still verified. */
	row.version = 2;
	keycache_refresh(kc, &row);
	assert_int_equal(keycache_check(kc, KEY_ID, old, now, &out, NULL), KC_VERIFIED);

	/* Rotation without grace: the old secret is unverified from the next request on. */
	struct store_key rotated = row_with("$2b$04$hashB", "", -1, 3);
	keycache_refresh(kc, &rotated);
	assert_int_equal(keycache_check(kc, KEY_ID, old, now, &out, NULL), KC_UNVERIFIED);
	keycache_destroy(kc);
}

static void test_rotation_with_grace_keeps_the_old_secret_until_it_ends(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100);
	uint8_t old[32];
	mac_of(kc, "old", old);
	struct store_key out, row = row_with("$2b$04$hashA", "", -1, 1);
	int64_t now = clock_now_ms();
	verified(kc, &row, old);

	struct store_key rotated = row_with("$2b$04$hashB", "$2b$04$hashA", now + 60000, 2);
	keycache_refresh(kc, &rotated);
	assert_int_equal(keycache_check(kc, KEY_ID, old, now, &out, NULL), KC_VERIFIED);
	/* Past the grace the previous slot no longer counts. */
	assert_int_equal(keycache_check(kc, KEY_ID, old, now + 61000, &out, NULL), KC_UNVERIFIED);

	/* A second rotation replaces the previous hash: the first secret is gone. */
	struct store_key again = row_with("$2b$04$hashC", "$2b$04$hashB", now + 60000, 3);
	keycache_refresh(kc, &again);
	assert_int_equal(keycache_check(kc, KEY_ID, old, now, &out, NULL), KC_UNVERIFIED);
	keycache_destroy(kc);
}

static void test_a_stale_read_cannot_overwrite_a_newer_row(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100);
	struct store_key out, newer = row_with("$2b$04$hashB", "", -1, 5);
	struct store_key older = row_with("$2b$04$hashA", "", -1, 4);
	uint8_t mac[32];
	mac_of(kc, "x", mac);
	put(kc, &newer);
	put(kc, &older);
	assert_int_equal(keycache_check(kc, KEY_ID, mac, clock_now_ms(), &out, NULL),
	                 KC_UNVERIFIED);
	assert_int_equal(out.version, 5);
	assert_string_equal(out.secret_hash, "$2b$04$hashB");
	keycache_destroy(kc);
}

/*
 * Issue 9 item 3: a lookup reads the row, a revocation lands (the key is not
 * cached yet, so the refresh finds nothing to update), then the lookup
 * caches what it read. That row predates the revocation and must not be
 * cached: the put is refused, and the lookup's second read caches the
 * revoked row. Same for an invalidation (a key gone, or a change whose
 * re-read failed).
 */
static void test_a_row_read_before_a_change_is_not_cached_after_it(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100);
	uint8_t mac[32];
	mac_of(kc, "x", mac);
	struct store_key out, before = row_with("$2b$04$h", "", -1, 1);
	before.revoked_at = -1;
	struct store_key revoked = before;
	revoked.revoked_at = 1000;
	revoked.version = 2;

	uint64_t gen = keycache_generation(kc, KEY_ID); /* the lookup starts */
	keycache_refresh(kc, &revoked);                 /* the revocation lands */
	assert_false(
	    keycache_put_verified(kc, &before, gen, KC_SLOT_CURRENT, before.secret_hash, mac));
	assert_int_equal(keycache_check(kc, KEY_ID, mac, clock_now_ms(), &out, NULL), KC_MISS);
	gen = keycache_generation(kc, KEY_ID); /* read again */
	assert_true(
	    keycache_put_verified(kc, &revoked, gen, KC_SLOT_CURRENT, revoked.secret_hash, mac));
	assert_int_equal(keycache_check(kc, KEY_ID, mac, clock_now_ms(), &out, NULL), KC_VERIFIED);
	assert_int_equal(out.revoked_at, 1000);

	/* An invalidation or a clear refuses an older read too, cached id or not. */
	struct store_key other = before;
	memcpy(other.id, "01J00000000000000000000009", sizeof other.id);
	gen = keycache_generation(kc, other.id);
	keycache_invalidate(kc, other.id);
	assert_false(
	    keycache_put_verified(kc, &other, gen, KC_SLOT_CURRENT, other.secret_hash, mac));
	gen = keycache_generation(kc, KEY_ID);
	keycache_clear(kc);
	assert_false(
	    keycache_put_verified(kc, &revoked, gen, KC_SLOT_CURRENT, revoked.secret_hash, mac));
	assert_int_equal(keycache_check(kc, KEY_ID, mac, clock_now_ms(), &out, NULL), KC_MISS);
	keycache_destroy(kc);
}

static void test_touch_due_once_a_minute(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100);
	struct store_key row = row_with("$2b$04$hashA", "", -1, 1);
	int64_t now = clock_now_ms();
	assert_false(keycache_touch_due(kc, KEY_ID, now)); /* not cached */
	put(kc, &row);
	assert_true(keycache_touch_due(kc, KEY_ID, now));
	assert_false(keycache_touch_due(kc, KEY_ID, now + 1000));
	assert_false(keycache_touch_due(kc, KEY_ID, now + 59999));
	assert_true(keycache_touch_due(kc, KEY_ID, now + 60000));
	keycache_destroy(kc);
}

static void test_touched_at_hint(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100);
	struct store_key out, row = row_with("$2b$04$hashA", "", -1, 1);
	uint8_t mac[32];
	mac_of(kc, "x", mac);
	int64_t now = clock_now_ms(), touched = -5;
	put(kc, &row);
	assert_int_equal(keycache_check(kc, KEY_ID, mac, now, &out, &touched), KC_UNVERIFIED);
	assert_true(now - touched >= KEYCACHE_TOUCH_INTERVAL_MS); /* never touched: due */
	assert_true(keycache_touch_due(kc, KEY_ID, now));
	assert_int_equal(keycache_check(kc, KEY_ID, mac, now, &out, &touched), KC_UNVERIFIED);
	assert_int_equal(touched, now);
	/* The hint and keycache_touch_due agree on when the next touch is due. */
	assert_false(keycache_touch_due(kc, KEY_ID, touched + KEYCACHE_TOUCH_INTERVAL_MS - 1));
	assert_true(keycache_touch_due(kc, KEY_ID, touched + KEYCACHE_TOUCH_INTERVAL_MS));
	keycache_destroy(kc);
}

/* The MAC starts from a pre-keyed context every time: no state carries over. */
static void test_secret_mac_is_a_keyed_function(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(100), *other = keycache_create(100);
	uint8_t a1[32], b[32], a2[32], prefix[32], a_other[32];
	mac_of(kc, "secret-a", a1);
	mac_of(kc, "secret-b", b);
	mac_of(kc, "secret-a", a2);
	assert_memory_equal(a1, a2, 32);
	assert_memory_not_equal(a1, b, 32);
	/* Only len bytes count. */
	keycache_secret_mac(kc, "secret-abc", 8, prefix);
	assert_memory_equal(a1, prefix, 32);
	/* Another cache has another pepper. */
	mac_of(other, "secret-a", a_other);
	assert_memory_not_equal(a1, a_other, 32);
	/* Many MACs later (every buffer and block boundary of SHA-256), still the same. */
	char longer[200];
	memset(longer, 'x', sizeof longer);
	for (size_t n = 0; n <= sizeof longer; n++) {
		uint8_t m[32];
		keycache_secret_mac(kc, longer, n, m);
	}
	mac_of(kc, "secret-a", a2);
	assert_memory_equal(a1, a2, 32);
	keycache_destroy(kc);
	keycache_destroy(other);
}

static void test_bounded_and_invalidated(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(64); /* about one entry per stripe */
	char ids[2000][STORE_ID_LEN + 1];
	for (int i = 0; i < 2000; i++) {
		char id[STORE_ID_LEN + 1];
		snprintf(id, sizeof id, "01J%023d", i);
		struct store_key row = row_with("$2b$04$h", "", -1, 1);
		memcpy(row.id, id, sizeof id);
		put(kc, &row);
	}
	size_t n = keycache_ids(kc, ids, 2000);
	assert_true(n >= 1 && n <= 64 + 64); /* each of 64 stripes holds at most cap/64 + 1 */
	keycache_invalidate(kc, ids[0]);
	assert_int_equal(keycache_ids(kc, ids, 2000), n - 1);
	keycache_clear(kc);
	assert_int_equal(keycache_ids(kc, ids, 2000), 0);
	keycache_destroy(kc);
}

/*
 * A full stripe drops its least recently used entry: a key in use survives
 * any number of newcomers (and only verified keys are ever newcomers).
 */
static void test_eviction_drops_the_least_recently_used(void **state)
{
	(void)state;
	struct keycache *kc = keycache_create(64); /* two entries per stripe */
	uint8_t mac[32];
	mac_of(kc, "in use", mac);
	struct store_key out, hot = row_with("$2b$04$hot", "", -1, 1);
	verified(kc, &hot, mac);
	for (int i = 0; i < 5000; i++) {
		struct store_key row = row_with("$2b$04$h", "", -1, 1);
		snprintf(row.id, sizeof row.id, "01K%023d", i);
		put(kc, &row);
		assert_int_equal(keycache_check(kc, KEY_ID, mac, clock_now_ms(), &out, NULL),
		                 KC_VERIFIED);
	}
	char ids[200][STORE_ID_LEN + 1];
	assert_true(keycache_ids(kc, ids, 200) <= 2 * 64);
	keycache_destroy(kc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_miss_and_verified),
	    cmocka_unit_test(test_rotation_drops_the_old_secret),
	    cmocka_unit_test(test_rotation_with_grace_keeps_the_old_secret_until_it_ends),
	    cmocka_unit_test(test_a_stale_read_cannot_overwrite_a_newer_row),
	    cmocka_unit_test(test_a_row_read_before_a_change_is_not_cached_after_it),
	    cmocka_unit_test(test_touch_due_once_a_minute),
	    cmocka_unit_test(test_touched_at_hint),
	    cmocka_unit_test(test_secret_mac_is_a_keyed_function),
	    cmocka_unit_test(test_bounded_and_invalidated),
	    cmocka_unit_test(test_eviction_drops_the_least_recently_used),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
