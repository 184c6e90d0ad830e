-- Strict grants per client, and the durable job queue (back-channel
-- logout notices) that background workers of every node share.
-- Keep migrations/sqlite/0003-grants-jobs.sql equivalent.

-- The grant types a client was registered for, space-separated. Existing
-- clients keep what every client could always do, except
-- client_credentials, which now needs registering.
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL
	DEFAULT 'authorization_code refresh_token';

-- Work done outside request threads. A worker claims a due row by setting
-- a lease (owner, lease_until); a lease that lapses (the node died) makes
-- the row claimable again. Rows past expires_at are given up and purged.
CREATE TABLE jobs (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	data TEXT NOT NULL,                                    -- JSON object
	attempts INTEGER NOT NULL DEFAULT 0,
	run_at BIGINT NOT NULL,
	lease_owner TEXT,
	lease_until BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (kind, run_at);
CREATE INDEX jobs_expires_at ON jobs (expires_at);
