-- Two kinds of key. A publishable key sits in web pages and Segment write
-- keys, where anyone can read it: an ingest key that may send only events,
-- leads and pending conversions. Every other key is secret, kept on the
-- owner's servers. Keys made before kinds existed (ingest keys included)
-- are secret: they may be in use on a server, and must keep working there.
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'secret';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_kind
    CHECK (kind = 'secret' OR (kind = 'publishable' AND scope = 'ingest'));
