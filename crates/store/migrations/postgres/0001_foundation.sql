-- Foundation: programs, partners, links, coupons, clicks, API keys (PostgreSQL).
--
-- Ids, codes and keys use the "C" collation: byte order, as in SQLite, so
-- time-ordered ids sort by time and every `ORDER BY ..., id` tie-break is
-- the same on both backends whatever the server's locale.
--
-- Conventions shared with the SQLite schema so one set of queries serves
-- both: ids are prefixed random TEXT (several nodes create rows without
-- coordination), times are BIGINT Unix milliseconds (no time-zone or
-- driver-specific timestamp types), flags are BIGINT 0/1, lists are JSON TEXT.

CREATE TABLE programs (
    id              TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT NOT NULL,
    currency        TEXT NOT NULL,
    allowed_domains TEXT NOT NULL,            -- JSON array of host names
    default_model   TEXT NOT NULL,
    window_days     BIGINT NOT NULL,
    cookie_days     BIGINT NOT NULL,
    hold_days       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE partners (
    id           TEXT COLLATE "C" PRIMARY KEY,
    program_id   TEXT COLLATE "C" NOT NULL REFERENCES programs(id),
    slug         TEXT NOT NULL,
    name         TEXT NOT NULL,
    email        TEXT,
    status       TEXT NOT NULL,
    tier         TEXT,
    group_name   TEXT,
    team_lead_id TEXT COLLATE "C" REFERENCES partners(id),
    created_at   BIGINT NOT NULL,
    -- The slug is a partner's public handle within a program (utm_source, ?via=).
    UNIQUE (program_id, slug)
);

CREATE TABLE links (
    id           TEXT COLLATE "C" PRIMARY KEY,
    program_id   TEXT COLLATE "C" NOT NULL REFERENCES programs(id),
    partner_id   TEXT COLLATE "C" NOT NULL REFERENCES partners(id),
    -- Codes are global, not per program: /r/{code} has no program in it.
    code         TEXT COLLATE "C" NOT NULL UNIQUE,
    destination  TEXT NOT NULL,
    source       TEXT,
    medium       TEXT,
    campaign     TEXT,
    content      TEXT,
    utm_source   TEXT,
    utm_medium   TEXT,
    utm_campaign TEXT,
    utm_content  TEXT,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX links_partner ON links (partner_id, created_at);

CREATE TABLE coupons (
    id         TEXT COLLATE "C" PRIMARY KEY,
    program_id TEXT COLLATE "C" NOT NULL REFERENCES programs(id),
    partner_id TEXT COLLATE "C" NOT NULL REFERENCES partners(id),
    code       TEXT COLLATE "C" NOT NULL,                 -- upper-case: codes compare case-insensitively
    created_at BIGINT NOT NULL,
    UNIQUE (program_id, code)
);

-- Clicks are written in batches by the redirect's writer; no foreign keys so
-- a batch never fails as a whole on one row (links are never deleted).
CREATE TABLE clicks (
    id            TEXT COLLATE "C" PRIMARY KEY,
    program_id    TEXT COLLATE "C" NOT NULL,
    link_id       TEXT COLLATE "C" NOT NULL,
    partner_id    TEXT COLLATE "C" NOT NULL,
    at            BIGINT NOT NULL,
    day           BIGINT NOT NULL,            -- UTC days since epoch, for unique clicks
    ip_truncated  TEXT NOT NULL,
    ip_hash       TEXT NOT NULL,
    visitor_hash  TEXT NOT NULL,
    ua_id         BIGINT,                     -- user_agents.id: each distinct user agent is stored once
    referrer      TEXT,
    source        TEXT,
    is_bot        BIGINT NOT NULL
);
CREATE INDEX clicks_partner_at ON clicks (partner_id, at);

-- A click's user agent is ~110 bytes and the same few hundred strings come
-- back millions of times: stored once here, keyed by a 64-bit hash of the
-- string, the click row is a third smaller and the redirect writer faster.
CREATE TABLE user_agents (
    id         BIGINT PRIMARY KEY,
    user_agent TEXT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,          -- SHA-256 of the key; the key itself is never stored
    scope      TEXT NOT NULL,
    partner_id TEXT COLLATE "C" REFERENCES partners(id),
    program_id TEXT COLLATE "C" REFERENCES programs(id),
    name       TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Server-wide secrets made on first start and shared by every node (e.g. the
-- key of the visitor hashes, which must survive restarts for unique clicks
-- to stay unique).
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
