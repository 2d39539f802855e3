-- 0008: GitHub secret scanning (docs/secret-scanning.md, INCIDENT.md).
-- secret_scanning_keys: GitHub's published signing keys, as the background
-- tier last fetched them from [secret_scanning] github_keys_url (PEM
-- SubjectPublicKeyInfo, checked to be P-256 before it is stored); the API
-- verifies reports against these rows only.
CREATE TABLE secret_scanning_keys (
	key_identifier TEXT PRIMARY KEY,
	public_key TEXT NOT NULL,
	is_current INTEGER NOT NULL,
	fetched_at BIGINT NOT NULL
);
-- One row: when the key set was last fetched, when a fetch was last tried
-- (claimed by one worker, at most once a minute cluster-wide), and when the
-- API last asked for a refresh (a report named a key id not in the set).
CREATE TABLE secret_scanning_state (
	id INTEGER PRIMARY KEY,
	fetched_at BIGINT,
	attempted_at BIGINT,
	refresh_requested_at BIGINT
);
INSERT INTO secret_scanning_state (id) VALUES (1);
-- Reports handled (true positives), once per token: token_hash is the
-- SHA-256 hex of the reported token (the token itself is never stored).
CREATE TABLE secret_scanning_reports (
	token_hash TEXT PRIMARY KEY,
	key_id TEXT NOT NULL,
	org_id TEXT NOT NULL,
	token_type TEXT NOT NULL,
	source TEXT NOT NULL,
	url TEXT NOT NULL,
	action TEXT NOT NULL,
	reported_at BIGINT NOT NULL
);
