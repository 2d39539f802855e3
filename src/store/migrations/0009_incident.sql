-- 0009: what the incident report (INCIDENT.md "The incident report",
-- store_incident.h) reads by key. Portable SQL.
--
-- A key's audit history (created, rotated, killed, lifted, revoked, leak
-- reports: every event whose target is the key) by target, in order, so
-- the report reads those events and nothing else of the chain.
CREATE INDEX audit_events_target ON audit_events(target_id, seq);
