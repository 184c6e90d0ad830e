-- iSSO's own roles held by a person, beside any organisation: "city_admin"
-- (a city administrator who reviews agencies' applications). Granted
-- and revoked only with issoctl admin grant|revoke.
-- Keep migrations/postgresql/0012-roles.sql equivalent.
CREATE TABLE roles (
	uuid TEXT NOT NULL REFERENCES persons (uuid) ON DELETE CASCADE,
	role TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (uuid, role)
);
