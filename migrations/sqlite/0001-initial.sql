-- iSSO initial schema (SQLite). Applied by store_open inside one
-- transaction; do not put BEGIN/COMMIT here. Times are Unix seconds.
-- Keep migrations/postgresql/0001-initial.sql equivalent.

-- Created by the backend before any migration runs; repeated here so this
-- file documents the whole schema.
CREATE TABLE IF NOT EXISTS schema_version (
	version INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
);

-- Agencies' applications (relying parties).
CREATE TABLE clients (
	client_id TEXT PRIMARY KEY,
	secret_hash TEXT,
	name TEXT NOT NULL,
	purpose TEXT,
	redirect_uris TEXT NOT NULL DEFAULT '[]',             -- JSON array
	post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]', -- JSON array
	backchannel_logout_uri TEXT,
	scope TEXT NOT NULL DEFAULT '',
	public_client INTEGER NOT NULL DEFAULT 0 CHECK (public_client IN (0, 1)),
	id_token_alg TEXT NOT NULL,
	auth_method TEXT NOT NULL,
	jwks_uri TEXT,
	jwks TEXT,                                             -- JSON object
	status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),
	created_at INTEGER NOT NULL
);
CREATE INDEX clients_created_at ON clients (created_at, client_id);

-- One row per human: the stable uuid.
CREATE TABLE persons (
	uuid TEXT PRIMARY KEY,
	id_hash TEXT UNIQUE,       -- keyed hash of the national ID
	pii TEXT,                  -- sealed JSON
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- TaipeiPass members.
CREATE TABLE members (
	uuid TEXT PRIMARY KEY REFERENCES persons (uuid) ON DELETE CASCADE,
	account TEXT NOT NULL UNIQUE,
	email_hash TEXT UNIQUE,
	phone_hash TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	level INTEGER NOT NULL DEFAULT 0 CHECK (level IN (0, 1)),
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);

CREATE TABLE consents (
	uuid TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scope TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (uuid, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

-- Authorization codes, access and refresh tokens, keyed by the SHA-256 of
-- the value. Used and revoked rows stay until expiry so replays show.
CREATE TABLE tokens (
	hash TEXT PRIMARY KEY,
	kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
	grant_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	uuid TEXT,
	sid TEXT,
	scope TEXT NOT NULL DEFAULT '',
	data TEXT NOT NULL DEFAULT '{}',                       -- JSON object
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
	revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
CREATE INDEX tokens_client_uuid ON tokens (client_id, uuid);

-- Sessions, login transactions, OTP challenges, reset links.
CREATE TABLE eph (
	kind TEXT NOT NULL,
	id TEXT NOT NULL,
	data TEXT NOT NULL,                                    -- JSON object
	counter INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX eph_expires_at ON eph (expires_at);

-- Fixed-window rate limits; expires_at = window_start + window length.
CREATE TABLE rate (
	key TEXT PRIMARY KEY,
	window_start INTEGER NOT NULL,
	count INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX rate_expires_at ON rate (expires_at);

CREATE TABLE signing_keys (
	kid TEXT PRIMARY KEY,
	alg TEXT NOT NULL,
	jwk TEXT NOT NULL,                                     -- sealed private JWK
	created_at INTEGER NOT NULL,
	active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
);

-- Append-only, hash-chained audit log:
-- hash = sha256_hex(prev_hash "\n" seq "\n" ts "\n" event "\n" data),
-- the first row's prev_hash is 64 zeros.
CREATE TABLE audit (
	seq INTEGER PRIMARY KEY,
	ts INTEGER NOT NULL,
	event TEXT NOT NULL,
	data TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
