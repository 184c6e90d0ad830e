-- What the citizen agreed to and what was released, for the citizen's
-- own page (/account). Keep migrations/sqlite and migrations/postgresql
-- equivalent.

-- The consent record beside its scopes: a JSON object with the version
-- of the notice the citizen saw ("notice") and the optional scopes the
-- citizen left unticked ("declined"); '{}' for consents given before.
ALTER TABLE consents ADD COLUMN record TEXT NOT NULL DEFAULT '{}';

-- One row per release of personal data to a client (an authorization
-- code issued, fresh login or single sign-on), written with the audit
-- event "release" and holding the same JSON: the claim names, method,
-- acr, whether single sign-on — never the values. Read per person.
CREATE TABLE releases (
	id BIGSERIAL PRIMARY KEY,
	uuid TEXT NOT NULL,
	ts BIGINT NOT NULL,
	client_id TEXT NOT NULL,
	data TEXT NOT NULL
);
CREATE INDEX releases_person ON releases (uuid, ts);
