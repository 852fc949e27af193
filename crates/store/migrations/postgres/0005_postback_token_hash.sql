-- Postback tokens are stored as SHA-256 hashes, like API keys: the token is
-- shown once, when an admin makes or rotates it, and a copy of the database
-- no longer holds working postback URLs. The hint (prefix and last four
-- characters) tells tokens apart. Both NULL: no token yet, and postbacks
-- are refused until an admin makes one.
--
-- The clear-text column is renamed rather than copied: right after this SQL
-- it still holds clear tokens (with no hint), and this migration's data
-- step (`hash_postback_tokens` in src/migrate.rs, the same transaction)
-- replaces each by its hash and hint, so postback URLs already handed to
-- networks keep working. SQLite has no SHA-256 function, which is why that
-- step is Rust on both backends.
ALTER TABLE program_tracking RENAME COLUMN postback_token TO postback_token_hash;
ALTER TABLE program_tracking ALTER COLUMN postback_token_hash DROP NOT NULL;
ALTER TABLE program_tracking ADD COLUMN postback_token_hint TEXT;
