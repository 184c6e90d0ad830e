-- Guess throttling (src/auth/throttle.c): one leaky bucket per key, for
-- password failures per account, per client address (IPv6 by its /64)
-- and per device cookie. Keep migrations/sqlite/0004-throttle.sql
-- equivalent.
--
-- Times are in milliseconds. level is a time: each failure adds the
-- kind's weight, and the level drains by one per millisecond since
-- updated_at, so it is the time until every failure is forgotten. No
-- attempt is allowed before next_at. Rows are purged at expires_at, when
-- the level has drained.
CREATE TABLE throttle (
	key TEXT PRIMARY KEY,
	level BIGINT NOT NULL CHECK (level >= 0),
	updated_at BIGINT NOT NULL,
	next_at BIGINT NOT NULL DEFAULT 0,
	expires_at BIGINT NOT NULL
);
CREATE INDEX throttle_expires_at ON throttle (expires_at);

