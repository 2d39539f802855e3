-- 0014: people of the browser console (docs/console.md, CONSOLE.md), SQLite
-- form. The PostgreSQL form differs only in how an address is unique
-- whatever its case (there: a CHECK that it is stored lower-case, as
-- store_console.c always writes it; here COLLATE NOCASE as well).
--
-- users: one row per person. email is unique case-insensitively (ASCII
-- addresses only, stored lower-case: src/console/ refuses others).
-- operator = 1: the platform's own staff, with what root keys may do.
-- disabled_at: the user cannot sign in; their sessions were deleted with it.
CREATE TABLE users (
	id TEXT PRIMARY KEY,
	email TEXT NOT NULL COLLATE NOCASE UNIQUE,
	name TEXT NOT NULL,
	operator INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	last_login_at BIGINT,
	disabled_at BIGINT
);
-- memberships: a user's role in an organisation.
CREATE TABLE memberships (
	user_id TEXT NOT NULL REFERENCES users(id),
	org_id TEXT NOT NULL REFERENCES orgs(id),
	role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
	created_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, org_id)
);
CREATE INDEX memberships_org ON memberships(org_id);
-- invitations: an address invited into an organisation with a role, until
-- accepted (a user with that address signs in) or expired.
CREATE TABLE invitations (
	id TEXT PRIMARY KEY,
	org_id TEXT NOT NULL REFERENCES orgs(id),
	email TEXT NOT NULL COLLATE NOCASE,
	role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
	invited_by_type TEXT NOT NULL,
	invited_by TEXT,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	accepted_at BIGINT,
	accepted_by TEXT
);
CREATE INDEX invitations_email ON invitations(email);
-- login_tokens: magic links. token_hash is the SHA-256 hex of the 256-bit
-- token (the token itself exists only in the mail); nonce_hash the SHA-256
-- hex of the __Host-pcl_login cookie of the browser that asked (NULL for an
-- invitation's link, which no browser asked for). user_id, invitation_id
-- and signup_email say who may sign in with it; all NULL: the dummy row of
-- an address that may not (the same write as a real one).
CREATE TABLE login_tokens (
	token_hash TEXT PRIMARY KEY,
	nonce_hash TEXT,
	user_id TEXT,
	invitation_id TEXT,
	signup_email TEXT,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT
);
CREATE INDEX login_tokens_expires ON login_tokens(expires_at);
-- sessions: token_hash is the SHA-256 hex of the 256-bit session id in the
-- __Host-pcl_session cookie (the id itself is never stored); id is the
-- public handle (GET/DELETE /console/api/sessions). The CSRF token is an
-- HMAC of the session id, so it needs no column. A session ends when its
-- row is deleted (logout, DELETE, user disabled) or at expires_at (absolute)
-- or last_seen_at + [console] session_idle_minutes (idle).
CREATE TABLE sessions (
	id TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL UNIQUE,
	user_id TEXT NOT NULL REFERENCES users(id),
	created_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	user_agent TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
