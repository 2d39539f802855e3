-- 0003: the change log. Every state-version bump also writes one row here
-- with the new version as its seq, naming what changed (kind key, org or
-- kills, and the key or organisation id; '' for kills), in the same
-- transaction. The version row's lock orders the bumps, so a reader that
-- saw version v finds every seq up to v. Nodes re-read only the rows named
-- after the seq they last applied instead of every cached key. The most
-- recent STORE_CHANGES_KEEP rows are kept (each bump deletes the oldest);
-- a node further behind, or one whose seqs predate this table, re-checks
-- everything it caches.

CREATE TABLE changes (
	seq BIGINT PRIMARY KEY,
	kind TEXT NOT NULL,
	target_id TEXT NOT NULL,
	at BIGINT NOT NULL
);
