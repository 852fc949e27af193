-- Postback tokens are stored as SHA-256 hashes, like API keys: the token is
-- shown once, when an admin makes or rotates it, and a copy of the database
-- no longer holds working postback URLs. The hint (prefix and last four
-- characters) tells tokens apart. Both NULL: no token yet, and postbacks
-- are refused until an admin makes one.
--
-- SQLite cannot drop a NOT NULL constraint, so the (small) table is rebuilt.
-- Right after this SQL the hash column still holds the clear tokens (with no
-- hint), and this migration's data step (`hash_postback_tokens` in
-- src/migrate.rs, the same transaction) replaces each by its hash and hint,
-- so postback URLs already handed to networks keep working. SQLite has no
-- SHA-256 function, which is why that step is Rust on both backends.
CREATE TABLE program_tracking_hashed (
    program_id          TEXT PRIMARY KEY REFERENCES programs(id),
    settings            TEXT NOT NULL,   -- JSON TrackingSettings
    postback_token_hash TEXT,            -- SHA-256 of the token, hex
    postback_token_hint TEXT             -- prefix and last four characters
);
INSERT INTO program_tracking_hashed (program_id, settings, postback_token_hash)
    SELECT program_id, settings, postback_token FROM program_tracking;
DROP TABLE program_tracking;
ALTER TABLE program_tracking_hashed RENAME TO program_tracking;
