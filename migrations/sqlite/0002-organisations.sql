-- Organisations (組織 / 公司企業) and the members who act for them.
-- Keep migrations/postgresql/0002-organisations.sql equivalent.

-- An organisation by its 統一編號 (8 digits, checked by idnum_is_ubn).
CREATE TABLE organisations (
	ubn TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

-- A TaipeiPass member allowed to log in for an organisation.
CREATE TABLE org_members (
	ubn TEXT NOT NULL REFERENCES organisations (ubn) ON DELETE CASCADE,
	uuid TEXT NOT NULL REFERENCES members (uuid) ON DELETE CASCADE,
	role TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	PRIMARY KEY (ubn, uuid)
);
CREATE INDEX org_members_uuid ON org_members (uuid);
