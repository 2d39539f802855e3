/*
 * store_console.c: users, memberships, invitations, magic-link tokens and
 * sessions (see store_console.h). Every session check of every node reads
 * its row here, so deleting the row (logout, DELETE, disabling the user)
 * ends the session everywhere at the next request; there is no session
 * cache to invalidate.
 */
#include "store/store_console.h"

#include "core/ulid.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Expired magic-link tokens deleted with each new one: keeps the table small, bounded work. */
#define TOKEN_PURGE_BATCH 16
#define TOKEN_KEEP_MS     (24LL * 3600 * 1000)

/* ---- users ---- */

#define USER_COLS "id, email, name, operator, created_at, last_login_at, disabled_at"

static void read_user_at(const struct db_result *r, int i, int col, struct store_user *u)
{
	st_copy_str(u->id, sizeof u->id, db_text(r, i, col));
	st_copy_str(u->email, sizeof u->email, db_text(r, i, col + 1));
	st_copy_str(u->name, sizeof u->name, db_text(r, i, col + 2));
	u->operator= db_int(r, i, col + 3) != 0;
	u->created_at = db_int(r, i, col + 4);
	u->last_login_at = st_time_or_none(r, i, col + 5);
	u->disabled_at = st_time_or_none(r, i, col + 6);
}

static void read_user(const struct db_result *r, int i, void *row)
{
	read_user_at(r, i, 0, row);
}

static int user_insert_tx(struct db_conn *c, const struct store_user *u)
{
	struct db_param p[] = {P_TEXT(u->id),
	                       P_TEXT(u->email),
	                       P_TEXT(u->name),
	                       P_INT(u->operator? 1 : 0),
	                       P_INT(u->created_at),
	                       st_int_or_null(u->last_login_at),
	                       st_int_or_null(u->disabled_at)};
	return sq(c, "INSERT INTO users (" USER_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7, NULL);
}

static int user_insert_fn(struct db_conn *c, void *arg)
{
	return user_insert_tx(c, arg);
}

int store_user_insert(struct store *st, const struct store_user *u, const struct audit_input *a)
{
	return st_in_tx(st, user_insert_fn, (void *)u, a, NO_CHANGE);
}

int store_user_by_email(struct store *st, const char *email, struct store_user *out)
{
	struct db_param p[] = {P_TEXT(email)};
	return st_read_one(st, "SELECT " USER_COLS " FROM users WHERE email = ?", p, 1, read_user,
	                   out);
}

/* One row of sql's result into out in the caller's transaction; STORE_ENOTFOUND when none. */
static int one_row_tx(struct db_conn *c, const char *sql, const struct db_param *p, int n,
                      row_reader read, void *out)
{
	struct db_result *r = NULL;
	int rc = sq(c, sql, p, n, &r);
	if (rc == STORE_OK && r->nrows == 0)
		rc = STORE_ENOTFOUND;
	if (rc == STORE_OK)
		read(r, 0, out);
	db_result_free(r);
	return rc;
}

static int user_get_tx(struct db_conn *c, const char *sql, const char *value, struct store_user *u)
{
	struct db_param p[] = {P_TEXT(value)};
	return one_row_tx(c, sql, p, 1, read_user, u);
}

struct disable_args {
	const char *id;
	int64_t at;
	int64_t ended;
};

static int user_disable_fn(struct db_conn *c, void *arg)
{
	struct disable_args *d = arg;
	struct db_param p[] = {P_INT(d->at), P_TEXT(d->id)};
	struct db_result *r = NULL;
	int rc =
	    sq(c, "UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?", p, 2, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	r = NULL;
	if (rc == STORE_OK)
		rc = sq(c, "DELETE FROM sessions WHERE user_id = ?", p + 1, 1, &r);
	if (rc == STORE_OK)
		d->ended = r->changes;
	db_result_free(r);
	return rc;
}

int store_user_disable(struct store *st, const char *id, int64_t at, const struct audit_input *a,
                       int64_t *ended)
{
	struct disable_args d = {id, at, 0};
	int rc = st_in_tx(st, user_disable_fn, &d, a, NO_CHANGE);
	if (ended)
		*ended = d.ended;
	return rc;
}

/* ---- memberships ---- */

static int membership_put_tx(struct db_conn *c, const char *user_id, const char *org_id,
                             const char *role, int64_t now)
{
	struct db_param p[] = {P_TEXT(user_id), P_TEXT(org_id), P_TEXT(role), P_INT(now)};
	return sq(c,
	          "INSERT INTO memberships (user_id, org_id, role, created_at) VALUES (?, ?, ?, ?) "
	          "ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
	          p, 4, NULL);
}

#define MEMBERSHIP_SELECT                                                                          \
	"SELECT m.user_id, m.org_id, o.name, m.role, m.created_at FROM memberships m "             \
	"JOIN orgs o ON o.id = m.org_id "

static void read_membership(const struct db_result *r, int i, void *row)
{
	struct store_membership *m = row;
	st_copy_str(m->user_id, sizeof m->user_id, db_text(r, i, 0));
	st_copy_str(m->org_id, sizeof m->org_id, db_text(r, i, 1));
	st_copy_str(m->org_name, sizeof m->org_name, db_text(r, i, 2));
	st_copy_str(m->role, sizeof m->role, db_text(r, i, 3));
	m->created_at = db_int(r, i, 4);
}

int store_membership_get(struct store *st, const char *user_id, const char *org_id,
                         struct store_membership *out)
{
	struct db_param p[] = {P_TEXT(user_id), P_TEXT(org_id)};
	return st_read_one(st, MEMBERSHIP_SELECT "WHERE m.user_id = ? AND m.org_id = ?", p, 2,
	                   read_membership, out);
}

int store_memberships_of(struct store *st, const char *user_id, struct store_membership **out,
                         int *n)
{
	struct db_param p[] = {P_TEXT(user_id)};
	return st_read_all(st, MEMBERSHIP_SELECT "WHERE m.user_id = ? ORDER BY m.org_id", p, 1,
	                   read_membership, sizeof **out, (void **)out, n);
}

/* ---- invitations ---- */

#define INVITATION_COLS                                                                            \
	"id, org_id, email, role, invited_by_type, invited_by, created_at, expires_at, "           \
	"accepted_at"

static void read_invitation(const struct db_result *r, int i, void *row)
{
	struct store_invitation *v = row;
	st_copy_str(v->id, sizeof v->id, db_text(r, i, 0));
	st_copy_str(v->org_id, sizeof v->org_id, db_text(r, i, 1));
	st_copy_str(v->email, sizeof v->email, db_text(r, i, 2));
	st_copy_str(v->role, sizeof v->role, db_text(r, i, 3));
	st_copy_str(v->invited_by_type, sizeof v->invited_by_type, db_text(r, i, 4));
	st_copy_str(v->invited_by, sizeof v->invited_by, db_text(r, i, 5));
	v->created_at = db_int(r, i, 6);
	v->expires_at = db_int(r, i, 7);
	v->accepted_at = st_time_or_none(r, i, 8);
}

static int invitation_insert_fn(struct db_conn *c, void *arg)
{
	const struct store_invitation *v = arg;
	struct db_param p[] = {P_TEXT(v->id),
	                       P_TEXT(v->org_id),
	                       P_TEXT(v->email),
	                       P_TEXT(v->role),
	                       P_TEXT(v->invited_by_type),
	                       P_TEXT(v->invited_by[0] ? v->invited_by : NULL),
	                       P_INT(v->created_at),
	                       P_INT(v->expires_at),
	                       P_NULL};
	return sq(
	    c, "INSERT INTO invitations (" INVITATION_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    p, 9, NULL);
}

int store_invitation_insert(struct store *st, const struct store_invitation *inv,
                            const struct audit_input *a)
{
	return st_in_tx(st, invitation_insert_fn, (void *)inv, a, NO_CHANGE);
}

#define INVITATION_PENDING_SQL                                                                     \
	"SELECT " INVITATION_COLS " FROM invitations WHERE email = ? AND accepted_at IS NULL "     \
	"AND expires_at > ? ORDER BY id DESC LIMIT 1"

int store_invitation_pending(struct store *st, const char *email, int64_t now,
                             struct store_invitation *out)
{
	struct db_param p[] = {P_TEXT(email), P_INT(now)};
	return st_read_one(st, INVITATION_PENDING_SQL, p, 2, read_invitation, out);
}

/* ---- magic-link tokens ---- */

#define TOKEN_COLS                                                                                 \
	"token_hash, nonce_hash, user_id, invitation_id, signup_email, created_at, expires_at, "   \
	"used_at"

static const char *or_null(const char *s)
{
	return s && s[0] ? s : NULL;
}

static int token_insert_fn(struct db_conn *c, void *arg)
{
	const struct store_login_token *t = arg;
	struct db_param p[] = {P_TEXT(t->token_hash),
	                       P_TEXT(or_null(t->nonce_hash)),
	                       P_TEXT(or_null(t->user_id)),
	                       P_TEXT(or_null(t->invitation_id)),
	                       P_TEXT(or_null(t->signup_email)),
	                       P_INT(t->created_at),
	                       P_INT(t->expires_at),
	                       P_NULL};
	int rc = sq(c, "INSERT INTO login_tokens (" TOKEN_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	            p, 8, NULL);
	if (rc != STORE_OK)
		return rc;
	struct db_param q[] = {P_INT(t->created_at - TOKEN_KEEP_MS), P_INT(TOKEN_PURGE_BATCH)};
	return sq(c,
	          "DELETE FROM login_tokens WHERE token_hash IN (SELECT token_hash FROM "
	          "login_tokens WHERE expires_at < ? ORDER BY expires_at LIMIT ?)",
	          q, 2, NULL);
}

int store_login_token_insert(struct store *st, const struct store_login_token *t)
{
	return st_in_tx(st, token_insert_fn, (void *)t, NULL, NO_CHANGE);
}

static void read_token(const struct db_result *r, int i, void *row)
{
	struct store_login_token *t = row;
	st_copy_str(t->token_hash, sizeof t->token_hash, db_text(r, i, 0));
	st_copy_str(t->nonce_hash, sizeof t->nonce_hash, db_text(r, i, 1));
	st_copy_str(t->user_id, sizeof t->user_id, db_text(r, i, 2));
	st_copy_str(t->invitation_id, sizeof t->invitation_id, db_text(r, i, 3));
	st_copy_str(t->signup_email, sizeof t->signup_email, db_text(r, i, 4));
	t->created_at = db_int(r, i, 5);
	t->expires_at = db_int(r, i, 6);
	t->used_at = st_time_or_none(r, i, 7);
}

int store_login_token_get(struct store *st, const char *token_hash, struct store_login_token *out)
{
	struct db_param p[] = {P_TEXT(token_hash)};
	return st_read_one(st, "SELECT " TOKEN_COLS " FROM login_tokens WHERE token_hash = ?", p, 1,
	                   read_token, out);
}

/* ---- sessions ---- */

#define SESSION_COLS "id, token_hash, user_id, created_at, last_seen_at, expires_at, user_agent"

static void read_session_at(const struct db_result *r, int i, struct store_session *s)
{
	st_copy_str(s->id, sizeof s->id, db_text(r, i, 0));
	st_copy_str(s->token_hash, sizeof s->token_hash, db_text(r, i, 1));
	st_copy_str(s->user_id, sizeof s->user_id, db_text(r, i, 2));
	s->created_at = db_int(r, i, 3);
	s->last_seen_at = db_int(r, i, 4);
	s->expires_at = db_int(r, i, 5);
	st_copy_str(s->user_agent, sizeof s->user_agent, db_text(r, i, 6));
}

static void read_session(const struct db_result *r, int i, void *row)
{
	read_session_at(r, i, row);
}

/* What the sign-in transaction found (store_session_begin). */
struct begin_args {
	struct store_login *in;
	struct store_user *user;
	struct store_invitation inv;
	bool accept; /* inv is to be accepted */
};

/* The invitation id, pending at now; STORE_ENOTFOUND when gone. */
static int invitation_by_id_tx(struct db_conn *c, const char *id, int64_t now,
                               struct store_invitation *out)
{
	struct db_param p[] = {P_TEXT(id), P_INT(now)};
	return one_row_tx(c,
	                  "SELECT " INVITATION_COLS " FROM invitations WHERE id = ? AND "
	                  "accepted_at IS NULL AND expires_at > ?",
	                  p, 2, read_invitation, out);
}

static int invitation_pending_tx(struct db_conn *c, const char *email, int64_t now,
                                 struct store_invitation *out)
{
	struct db_param p[] = {P_TEXT(email), P_INT(now)};
	return one_row_tx(c, INVITATION_PENDING_SQL, p, 2, read_invitation, out);
}

#define USER_BY_ID_SQL    "SELECT " USER_COLS " FROM users WHERE id = ?"
#define USER_BY_EMAIL_SQL "SELECT " USER_COLS " FROM users WHERE email = ?"

/* The user of email, or a new one (not yet an operator, no name). */
static int user_find_or_create_tx(struct db_conn *c, const char *email, int64_t now,
                                  struct store_user *u)
{
	int rc = user_get_tx(c, USER_BY_EMAIL_SQL, email, u);
	if (rc != STORE_ENOTFOUND)
		return rc;
	memset(u, 0, sizeof *u);
	ulid_new(u->id);
	st_copy_str(u->email, sizeof u->email, email);
	u->created_at = now;
	u->last_login_at = u->disabled_at = -1;
	return user_insert_tx(c, u);
}

/* Consume the magic link: who it names into the args. */
static int consume_token_tx(struct db_conn *c, struct begin_args *b)
{
	struct store_login *in = b->in;
	struct db_param p[] = {P_INT(in->now), P_TEXT(in->token_hash), P_INT(in->now)};
	struct db_result *r = NULL;
	int rc = sq(c,
	            "UPDATE login_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL "
	            "AND expires_at > ? RETURNING user_id, invitation_id, signup_email",
	            p, 3, &r);
	if (rc == STORE_OK && r->nrows != 1)
		rc = STORE_ENOTFOUND;
	if (rc != STORE_OK) {
		db_result_free(r);
		return rc;
	}
	const char *user_id = db_text(r, 0, 0), *inv_id = db_text(r, 0, 1);
	const char *signup = db_text(r, 0, 2);
	if (user_id) {
		rc = user_get_tx(c, USER_BY_ID_SQL, user_id, b->user);
	} else if (inv_id) {
		rc = invitation_by_id_tx(c, inv_id, in->now, &b->inv);
		if (rc == STORE_OK) {
			b->accept = true;
			rc = user_find_or_create_tx(c, b->inv.email, in->now, b->user);
		}
	} else if (signup) {
		rc = user_find_or_create_tx(c, signup, in->now, b->user);
	} else {
		rc = STORE_ENOTFOUND; /* the dummy row of an address that may not sign in */
	}
	db_result_free(r);
	return rc;
}

/* Without a magic link (a verified address, OIDC): the user, an invitation or a signup. */
static int resolve_email_tx(struct db_conn *c, struct begin_args *b)
{
	struct store_login *in = b->in;
	int rc = user_get_tx(c, USER_BY_EMAIL_SQL, in->email, b->user);
	if (rc != STORE_ENOTFOUND)
		return rc;
	rc = invitation_pending_tx(c, in->email, in->now, &b->inv);
	if (rc == STORE_OK) {
		b->accept = true;
	} else if (rc != STORE_ENOTFOUND || !in->allow_signup) {
		return rc;
	}
	return user_find_or_create_tx(c, in->email, in->now, b->user);
}

static int accept_invitation_tx(struct db_conn *c, struct begin_args *b)
{
	struct store_login *in = b->in;
	int rc = membership_put_tx(c, b->user->id, b->inv.org_id, b->inv.role, in->now);
	struct db_param p[] = {P_INT(in->now), P_TEXT(b->user->id), P_TEXT(b->inv.id)};
	if (rc == STORE_OK)
		rc = sq(c, "UPDATE invitations SET accepted_at = ?, accepted_by = ? WHERE id = ?",
		        p, 3, NULL);
	if (rc != STORE_OK)
		return rc;
	json_t *details = json_pack("{s:s, s:s}", "email", b->inv.email, "role", b->inv.role);
	struct audit_input a = {.org_id = b->inv.org_id,
	                        .actor_type = "user",
	                        .actor_id = b->user->id,
	                        .action = "invitation.accepted",
	                        .target_type = "invitation",
	                        .target_id = b->inv.id,
	                        .request_id = in->request_id,
	                        .details = details};
	rc = st_audit_append_tx(c, &a);
	json_decref(details);
	return rc;
}

static int session_insert_tx(struct db_conn *c, const struct store_session *s)
{
	struct db_param p[] = {P_TEXT(s->id),        P_TEXT(s->token_hash),  P_TEXT(s->user_id),
	                       P_INT(s->created_at), P_INT(s->last_seen_at), P_INT(s->expires_at),
	                       P_TEXT(s->user_agent)};
	return sq(c, "INSERT INTO sessions (" SESSION_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7,
	          NULL);
}

static int session_begin_fn(struct db_conn *c, void *arg)
{
	struct begin_args *b = arg;
	struct store_login *in = b->in;
	int rc = in->token_hash ? consume_token_tx(c, b) : resolve_email_tx(c, b);
	if (rc != STORE_OK)
		return rc;
	if (b->user->disabled_at >= 0)
		return STORE_ENOTFOUND;
	if (b->accept && (rc = accept_invitation_tx(c, b)) != STORE_OK)
		return rc;
	b->user->last_login_at = in->now;
	struct db_param lp[] = {P_INT(in->now), P_TEXT(b->user->id)};
	rc = sq(c, "UPDATE users SET last_login_at = ? WHERE id = ?", lp, 2, NULL);
	if (rc == STORE_OK && in->end_token_hash) {
		struct db_param ep[] = {P_TEXT(in->end_token_hash)};
		rc = sq(c, "DELETE FROM sessions WHERE token_hash = ?", ep, 1, NULL);
	}
	if (rc == STORE_OK) {
		struct db_param xp[] = {P_TEXT(b->user->id), P_INT(in->now),
		                        P_INT(in->now - in->idle_ms)};
		rc = sq(c,
		        "DELETE FROM sessions WHERE user_id = ? AND (expires_at <= ? OR "
		        "last_seen_at <= ?)",
		        xp, 3, NULL);
	}
	if (rc != STORE_OK)
		return rc;
	st_copy_str(in->session.user_id, sizeof in->session.user_id, b->user->id);
	if ((rc = session_insert_tx(c, &in->session)) != STORE_OK)
		return rc;
	json_t *details = json_pack("{s:s, s:s}", "method", in->method ? in->method : "",
	                            "session_id", in->session.id);
	struct audit_input a = {.actor_type = "user",
	                        .actor_id = b->user->id,
	                        .action = "user.login",
	                        .target_type = "user",
	                        .target_id = b->user->id,
	                        .request_id = in->request_id,
	                        .details = details};
	rc = st_audit_append_tx(c, &a);
	json_decref(details);
	return rc;
}

int store_session_begin(struct store *st, struct store_login *in, struct store_user *user)
{
	struct begin_args b = {.in = in, .user = user};
	memset(user, 0, sizeof *user);
	if (!in->token_hash && (!in->email || !in->email[0]))
		return STORE_ENOTFOUND;
	return st_in_tx(st, session_begin_fn, &b, NULL, NO_CHANGE);
}

static void read_session_user(const struct db_result *r, int i, void *row)
{
	struct {
		struct store_session *s;
		struct store_user *u;
	} *out = row;
	read_session_at(r, i, out->s);
	read_user_at(r, i, 7, out->u);
}

int store_session_get(struct store *st, const char *token_hash, struct store_session *s,
                      struct store_user *u)
{
	struct db_param p[] = {P_TEXT(token_hash)};
	struct {
		struct store_session *s;
		struct store_user *u;
	} out = {s, u};
	memset(s, 0, sizeof *s);
	memset(u, 0, sizeof *u);
	return st_read_one(
	    st,
	    "SELECT s.id, s.token_hash, s.user_id, s.created_at, s.last_seen_at, "
	    "s.expires_at, s.user_agent, u.id, u.email, u.name, u.operator, "
	    "u.created_at, u.last_login_at, u.disabled_at FROM sessions s JOIN users "
	    "u ON u.id = s.user_id WHERE s.token_hash = ?",
	    p, 1, read_session_user, &out);
}

static int touch_fn(struct db_conn *c, void *arg)
{
	const struct db_param *p = arg;
	return sq(c, "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?", p, 3,
	          NULL);
}

int store_session_touch(struct store *st, const char *id, int64_t now)
{
	struct db_param p[] = {P_INT(now), P_TEXT(id), P_INT(now)};
	return st_tx_run(st, touch_fn, p, NULL, NO_CHANGE, false);
}

struct end_args {
	const char *user_id, *id;
};

static int session_end_fn(struct db_conn *c, void *arg)
{
	const struct end_args *e = arg;
	struct db_param p[] = {P_TEXT(e->id), P_TEXT(e->user_id)};
	struct db_result *r = NULL;
	int rc = sq(c, "DELETE FROM sessions WHERE id = ? AND user_id = ?", p, 2, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	return rc;
}

int store_session_end(struct store *st, const char *user_id, const char *id,
                      const struct audit_input *a)
{
	struct end_args e = {user_id, id};
	return st_in_tx(st, session_end_fn, &e, a, NO_CHANGE);
}

int store_sessions_of(struct store *st, const char *user_id, struct store_session **out, int *n)
{
	struct db_param p[] = {P_TEXT(user_id)};
	return st_read_all(st,
	                   "SELECT " SESSION_COLS " FROM sessions WHERE user_id = ? ORDER BY "
	                   "created_at DESC, id DESC LIMIT 100",
	                   p, 1, read_session, sizeof **out, (void **)out, n);
}
