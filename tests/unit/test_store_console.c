/*
 * test_store_console.c: the console's people in the store
 * (src/store/store_console.h) on SQLite always and on PostgreSQL when
 * PORTCULLIS_TEST_PG_URL is set: addresses unique whatever their case, a
 * magic link consumed once and never after its expiry, the dummy row of an
 * unknown address never signs anyone in, an invitation accepted by its
 * link (user and membership made), a disabled user's sessions gone and no
 * new one, sessions ended only by their own user.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ulid.h"
#include "store/store_console.h"

#define FIXTURE_DB_NAME "portcullis_test_console"
#define FIXTURE_TMP     "pcl-console"
#include "store_fixture.h"

#define ORG_A "ORGA0000000000000000000001"
#define MIN   (60LL * 1000)

static struct audit_input cli_audit(const char *action, const char *id)
{
	return (struct audit_input){.actor_type = "system",
	                            .actor_id = "cli",
	                            .action = action,
	                            .target_type = "user",
	                            .target_id = id};
}

static void make_user(struct store *st, const char *email, bool op, struct store_user *u)
{
	memset(u, 0, sizeof *u);
	ulid_new(u->id);
	snprintf(u->email, sizeof u->email, "%s", email);
	u->operator= op;
	u->created_at = clock_now_ms();
	u->last_login_at = u->disabled_at = -1;
	struct audit_input a = cli_audit("user.created", u->id);
	assert_int_equal(store_user_insert(st, u, &a), STORE_OK);
}

/* A hash-shaped text: c repeated 64 times. */
static void fake_hash(char out[STORE_HASH_HEX_LEN + 1], char c)
{
	memset(out, c, STORE_HASH_HEX_LEN);
	out[STORE_HASH_HEX_LEN] = '\0';
}

static void make_token(struct store *st, char c, const char *user_id, const char *inv_id,
                       int64_t now, int64_t ttl)
{
	struct store_login_token t = {.created_at = now, .expires_at = now + ttl};
	fake_hash(t.token_hash, c);
	fake_hash(t.nonce_hash, 'n');
	snprintf(t.user_id, sizeof t.user_id, "%s", user_id ? user_id : "");
	snprintf(t.invitation_id, sizeof t.invitation_id, "%s", inv_id ? inv_id : "");
	assert_int_equal(store_login_token_insert(st, &t), STORE_OK);
}

static void login_of(struct store_login *in, const char *token_hash, char sess, int64_t now)
{
	memset(in, 0, sizeof *in);
	in->token_hash = token_hash;
	in->method = "magic_link";
	in->now = now;
	in->idle_ms = 30 * MIN;
	ulid_new(in->session.id);
	fake_hash(in->session.token_hash, sess);
	in->session.created_at = in->session.last_seen_at = now;
	in->session.expires_at = now + 720 * MIN;
	snprintf(in->session.user_agent, sizeof in->session.user_agent, "test");
}

static void test_email_unique_whatever_its_case(void **state)
{
	struct fixture *fx = *state;
	struct store_user u, got;
	make_user(fx->st, "ada@example.com", false, &u);
	struct store_user dup = u;
	ulid_new(dup.id);
	/* The store keeps addresses lower-case; SQLite's NOCASE refuses another case too. */
	if (!is_pg(fx))
		snprintf(dup.email, sizeof dup.email, "ADA@example.com");
	struct audit_input a = cli_audit("user.created", dup.id);
	assert_int_equal(store_user_insert(fx->st, &dup, &a), STORE_ECONFLICT);
	assert_int_equal(store_user_by_email(fx->st, "ada@example.com", &got), STORE_OK);
	assert_string_equal(got.id, u.id);
	assert_false(got.operator);
	assert_int_equal(store_user_by_email(fx->st, "bob@example.com", &got), STORE_ENOTFOUND);
}

static void test_magic_link_is_single_use_and_expires(void **state)
{
	struct fixture *fx = *state;
	struct store_user u, who;
	make_user(fx->st, "ada@example.com", true, &u);
	int64_t now = clock_now_ms();
	make_token(fx->st, 'a', u.id, NULL, now, 10 * MIN);
	char h[STORE_HASH_HEX_LEN + 1];
	fake_hash(h, 'a');
	struct store_login in;
	login_of(&in, h, '1', now);
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_OK);
	assert_string_equal(who.id, u.id);
	assert_true(who.operator);
	assert_int_equal(who.last_login_at, now);
	struct store_session s;
	struct store_user su;
	assert_int_equal(store_session_get(fx->st, in.session.token_hash, &s, &su), STORE_OK);
	assert_string_equal(s.user_id, u.id);
	assert_string_equal(su.email, "ada@example.com");
	/* Used: never again. */
	login_of(&in, h, '2', now + 1);
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_ENOTFOUND);
	/* Expired: never, and it stays unused. */
	make_token(fx->st, 'b', u.id, NULL, now - 11 * MIN, 10 * MIN);
	fake_hash(h, 'b');
	login_of(&in, h, '3', now);
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_ENOTFOUND);
	struct store_login_token t;
	assert_int_equal(store_login_token_get(fx->st, h, &t), STORE_OK);
	assert_int_equal(t.used_at, -1);
	char n[STORE_HASH_HEX_LEN + 1];
	fake_hash(n, 'n');
	assert_string_equal(t.nonce_hash, n);
	/* The dummy row of an unknown address signs nobody in. */
	make_token(fx->st, 'c', NULL, NULL, now, 10 * MIN);
	fake_hash(h, 'c');
	login_of(&in, h, '4', now);
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_ENOTFOUND);
	/* Only the one session exists; the audit log has the login, as the user. */
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM sessions", NULL, NULL), 1);
	assert_int_equal(
	    raw_int(fx->st,
	            "SELECT COUNT(*) FROM audit_events WHERE action = 'user.login' AND "
	            "actor_type = 'user' AND actor_id = ?",
	            u.id, NULL),
	    1);
}

static void test_invitation_link_makes_the_member(void **state)
{
	struct fixture *fx = *state;
	make_org(fx->st, ORG_A, NULL);
	int64_t now = clock_now_ms();
	struct store_invitation inv = {
	    .created_at = now, .expires_at = now + 7 * 1440 * MIN, .accepted_at = -1};
	ulid_new(inv.id);
	snprintf(inv.org_id, sizeof inv.org_id, ORG_A);
	snprintf(inv.email, sizeof inv.email, "new@example.com");
	snprintf(inv.role, sizeof inv.role, "developer");
	snprintf(inv.invited_by_type, sizeof inv.invited_by_type, "root");
	struct audit_input a = audit(ORG_A, "invitation.created", "invitation", inv.id);
	assert_int_equal(store_invitation_insert(fx->st, &inv, &a), STORE_OK);
	struct store_invitation got;
	assert_int_equal(store_invitation_pending(fx->st, "new@example.com", now, &got), STORE_OK);
	assert_string_equal(got.id, inv.id);
	make_token(fx->st, 'i', NULL, inv.id, now, 10 * MIN);
	char h[STORE_HASH_HEX_LEN + 1];
	fake_hash(h, 'i');
	struct store_login in;
	struct store_user who;
	login_of(&in, h, '1', now);
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_OK);
	assert_string_equal(who.email, "new@example.com");
	struct store_membership m;
	assert_int_equal(store_membership_get(fx->st, who.id, ORG_A, &m), STORE_OK);
	assert_string_equal(m.role, "developer");
	assert_string_equal(m.org_name, "org " ORG_A);
	assert_int_equal(store_invitation_pending(fx->st, "new@example.com", now, &got),
	                 STORE_ENOTFOUND);
	/* A verified address without a link (OIDC): the same user, no new one. */
	login_of(&in, NULL, '2', now);
	in.email = "new@example.com";
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_OK);
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM users", NULL, NULL), 1);
	/* An unknown address: nobody, unless sign-up is allowed. */
	login_of(&in, NULL, '3', now);
	in.email = "stranger@example.com";
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_ENOTFOUND);
	in.allow_signup = true;
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_OK);
	assert_string_equal(who.email, "stranger@example.com");
	struct store_membership *all = NULL;
	int n = -1;
	assert_int_equal(store_memberships_of(fx->st, who.id, &all, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(all);
}

static void test_disabling_ends_every_session(void **state)
{
	struct fixture *fx = *state;
	struct store_user u, other, who;
	make_user(fx->st, "ada@example.com", false, &u);
	make_user(fx->st, "bob@example.com", false, &other);
	int64_t now = clock_now_ms();
	struct store_login in;
	for (int i = 0; i < 2; i++) {
		login_of(&in, NULL, (char)('1' + i), now);
		in.email = "ada@example.com";
		assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_OK);
	}
	login_of(&in, NULL, '9', now);
	in.email = "bob@example.com";
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_OK);
	struct store_session *list = NULL;
	int n = 0;
	assert_int_equal(store_sessions_of(fx->st, u.id, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	/* Bob cannot end Ada's session; Ada can. */
	assert_int_equal(store_session_end(fx->st, other.id, list[0].id, NULL), STORE_ENOTFOUND);
	assert_int_equal(store_session_end(fx->st, u.id, list[0].id, NULL), STORE_OK);
	free(list);
	int64_t ended = -1;
	struct audit_input a = cli_audit("user.disabled", u.id);
	assert_int_equal(store_user_disable(fx->st, u.id, now, &a, &ended), STORE_OK);
	assert_int_equal(ended, 1);
	assert_int_equal(store_sessions_of(fx->st, u.id, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(list);
	/* No new session for a disabled user; Bob's stays. */
	login_of(&in, NULL, '5', now);
	in.email = "ada@example.com";
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_ENOTFOUND);
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM sessions", NULL, NULL), 1);
	assert_int_equal(store_user_disable(fx->st, "01ARZ3NDEKTSV4RRFFQ69G5FAV", now, &a, NULL),
	                 STORE_ENOTFOUND);
}

static void test_touch_moves_last_seen_forward_only(void **state)
{
	struct fixture *fx = *state;
	struct store_user u, who;
	make_user(fx->st, "ada@example.com", false, &u);
	int64_t now = clock_now_ms();
	struct store_login in;
	login_of(&in, NULL, '1', now);
	in.email = "ada@example.com";
	assert_int_equal(store_session_begin(fx->st, &in, &who), STORE_OK);
	assert_int_equal(store_session_touch(fx->st, in.session.id, now + 5000), STORE_OK);
	assert_int_equal(store_session_touch(fx->st, in.session.id, now + 1000), STORE_OK);
	struct store_session s;
	assert_int_equal(store_session_get(fx->st, in.session.token_hash, &s, &who), STORE_OK);
	assert_int_equal(s.last_seen_at, now + 5000);
	assert_int_equal(s.created_at, now);
}

#define CONSOLE_TESTS(setup)                                                                       \
	cmocka_unit_test_setup_teardown(test_email_unique_whatever_its_case, setup, teardown),     \
	    cmocka_unit_test_setup_teardown(test_magic_link_is_single_use_and_expires, setup,      \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(test_invitation_link_makes_the_member, setup,          \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(test_disabling_ends_every_session, setup, teardown),   \
	    cmocka_unit_test_setup_teardown(test_touch_moves_last_seen_forward_only, setup,        \
	                                    teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {CONSOLE_TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {CONSOLE_TESTS(setup_postgres)};
	return fixture_main("store_console", sqlite_tests, postgres_tests,
	                    sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
