-- 0001: the first schema. Portable SQL (SQLite and PostgreSQL): BIGINT
-- millisecond timestamps, TEXT ids (ULIDs), no autoincrement.

CREATE TABLE orgs (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	contact_email TEXT,
	rate_limit_requests BIGINT,
	rate_limit_per_seconds BIGINT,
	rate_limit_burst BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE projects (
	id TEXT PRIMARY KEY,
	org_id TEXT NOT NULL REFERENCES orgs(id),
	name TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX projects_org ON projects(org_id, id);

-- org_id is NULL for operator (root) keys. Only bcrypt hashes are stored.
CREATE TABLE api_keys (
	id TEXT PRIMARY KEY,
	org_id TEXT REFERENCES orgs(id),
	project_id TEXT REFERENCES projects(id),
	name TEXT NOT NULL,
	env TEXT NOT NULL,
	scopes TEXT NOT NULL,
	secret_hash TEXT NOT NULL,
	prev_secret_hash TEXT,
	prev_expires_at BIGINT,
	start TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT,
	expires_at BIGINT,
	revoked_at BIGINT,
	version BIGINT NOT NULL
);
CREATE INDEX api_keys_org ON api_keys(org_id, id);

-- scope: key | organization | global; target_id is '' for global.
-- set_by: root (operator) or org (the organisation's own key).
CREATE TABLE kill_switches (
	scope TEXT NOT NULL,
	target_id TEXT NOT NULL,
	set_by TEXT NOT NULL,
	actor_id TEXT,
	reason TEXT,
	engaged_at BIGINT NOT NULL,
	PRIMARY KEY (scope, target_id)
);

-- The head of the audit hash chain: one row, updated in every append so
-- appends serialise (a row lock in PostgreSQL, the write lock in SQLite).
CREATE TABLE audit_head (
	id INTEGER PRIMARY KEY,
	seq BIGINT NOT NULL,
	hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
	seq BIGINT PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	at BIGINT NOT NULL,
	org_id TEXT,
	actor_type TEXT NOT NULL,
	actor_id TEXT,
	action TEXT NOT NULL,
	target_type TEXT,
	target_id TEXT,
	request_id TEXT,
	details TEXT,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE INDEX audit_events_org_at ON audit_events(org_id, at);

-- Request metadata: never a body, a credential, a query string or an IP.
CREATE TABLE request_log (
	request_id TEXT PRIMARY KEY,
	received_at BIGINT NOT NULL,
	org_id TEXT,
	project_id TEXT,
	key_id TEXT,
	method TEXT NOT NULL,
	path TEXT NOT NULL,
	status INTEGER NOT NULL,
	duration_ms BIGINT NOT NULL,
	region TEXT,
	bytes_in BIGINT NOT NULL,
	bytes_out BIGINT NOT NULL,
	user_agent TEXT
);
CREATE INDEX request_log_org_at ON request_log(org_id, received_at);
CREATE INDEX request_log_at ON request_log(received_at);

-- Bumped by every key, organisation or kill-switch change: nodes poll it.
CREATE TABLE state_version (
	id INTEGER PRIMARY KEY,
	version BIGINT NOT NULL
);
INSERT INTO state_version (id, version) VALUES (1, 0);
