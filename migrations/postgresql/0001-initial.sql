-- iSSO initial schema (PostgreSQL). Applied by store_open inside one
-- transaction; do not put BEGIN/COMMIT here. Times are Unix seconds.
-- Keep equivalent to migrations/sqlite/0001-initial.sql.

CREATE TABLE IF NOT EXISTS schema_version (
	version INTEGER PRIMARY KEY,
	applied_at BIGINT NOT NULL
);

CREATE TABLE clients (
	client_id TEXT PRIMARY KEY,
	secret_hash TEXT,
	name TEXT NOT NULL,
	purpose TEXT,
	redirect_uris TEXT NOT NULL DEFAULT '[]',
	post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
	backchannel_logout_uri TEXT,
	scope TEXT NOT NULL DEFAULT '',
	public_client SMALLINT NOT NULL DEFAULT 0 CHECK (public_client IN (0, 1)),
	id_token_alg TEXT NOT NULL,
	auth_method TEXT NOT NULL,
	jwks_uri TEXT,
	jwks TEXT,
	status SMALLINT NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),
	created_at BIGINT NOT NULL
);
CREATE INDEX clients_created_at ON clients (created_at, client_id);

CREATE TABLE persons (
	uuid TEXT PRIMARY KEY,
	id_hash TEXT UNIQUE,
	pii TEXT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE members (
	uuid TEXT PRIMARY KEY REFERENCES persons (uuid) ON DELETE CASCADE,
	account TEXT NOT NULL UNIQUE,
	email_hash TEXT UNIQUE,
	phone_hash TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	level SMALLINT NOT NULL DEFAULT 0 CHECK (level IN (0, 1)),
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL
);

CREATE TABLE consents (
	uuid TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scope TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (uuid, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE tokens (
	hash TEXT PRIMARY KEY,
	kind SMALLINT NOT NULL CHECK (kind IN (1, 2, 3)),
	grant_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	uuid TEXT,
	sid TEXT,
	scope TEXT NOT NULL DEFAULT '',
	data TEXT NOT NULL DEFAULT '{}',
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used SMALLINT NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
	revoked SMALLINT NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
CREATE INDEX tokens_client_uuid ON tokens (client_id, uuid);

CREATE TABLE eph (
	kind TEXT NOT NULL,
	id TEXT NOT NULL,
	data TEXT NOT NULL,
	counter INTEGER NOT NULL DEFAULT 0,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX eph_expires_at ON eph (expires_at);

CREATE TABLE rate (
	key TEXT PRIMARY KEY,
	window_start BIGINT NOT NULL,
	count INTEGER NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX rate_expires_at ON rate (expires_at);

CREATE TABLE signing_keys (
	kid TEXT PRIMARY KEY,
	alg TEXT NOT NULL,
	jwk TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	active SMALLINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
);

-- hash = sha256_hex(prev_hash "\n" seq "\n" ts "\n" event "\n" data),
-- the first row's prev_hash is 64 zeros. seq is assigned by the backend
-- under a table lock, so no sequence object.
CREATE TABLE audit (
	seq BIGINT PRIMARY KEY,
	ts BIGINT NOT NULL,
	event TEXT NOT NULL,
	data TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit is append-only';
END;
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
