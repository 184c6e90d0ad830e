-- Device keys of the TaipeiPass app: the app enrols a P-256 public key
-- once and signs each QR approval with it (docs/taipeipass-app.md).
-- revoked_at is 0 while the key is in use; a revoked row stays so that
-- the member's device list shows it.
-- Keep migrations/sqlite and migrations/postgresql equivalent.
CREATE TABLE devices (
	id TEXT PRIMARY KEY,
	uuid TEXT NOT NULL REFERENCES members (uuid) ON DELETE CASCADE,
	jwk TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX devices_uuid ON devices (uuid, created_at);
