-- Further registered settings of a client, one JSON object that the OpenID
-- Provider validates and reads (per-client protocol requirements and the
-- like), so that adding such a setting needs no schema change.
-- Keep migrations/sqlite and migrations/postgresql equivalent.
ALTER TABLE clients ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
