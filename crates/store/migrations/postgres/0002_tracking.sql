-- Tracking: identities, events, partner touches, leads, conversions (PostgreSQL).

-- A program's tracking settings (consent, snippet cookie, event mapping) and
-- the secret token of its server-to-server postback URL.
CREATE TABLE program_tracking (
    program_id     TEXT COLLATE "C" PRIMARY KEY REFERENCES programs(id),
    settings       TEXT NOT NULL,            -- JSON TrackingSettings
    postback_token TEXT NOT NULL
);

-- The identity graph: each identifier key ("anonymous_id:…", "email_hash:…",
-- "click_id:…") belongs to one person. Persons exist only through their keys;
-- merging two persons rewrites person_id here and in touches and leads.
CREATE TABLE identities (
    program_id TEXT COLLATE "C" NOT NULL,
    ident      TEXT COLLATE "C" NOT NULL,
    person_id  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (program_id, ident)
);
CREATE INDEX identities_person ON identities (person_id);

-- Events as received. Identifiers are kept (hashed where personal) rather
-- than a person id, so stitching never has to rewrite this large table.
CREATE TABLE events (
    id           TEXT COLLATE "C" PRIMARY KEY,
    program_id   TEXT COLLATE "C" NOT NULL,
    external_id  TEXT COLLATE "C",                       -- event_id / Segment messageId
    type         TEXT NOT NULL,
    name         TEXT,
    anonymous_id TEXT COLLATE "C",
    user_id      TEXT COLLATE "C",
    email_hash   TEXT,
    customer_id  TEXT COLLATE "C",
    phone_hash   TEXT,
    click_id     TEXT COLLATE "C",
    partner_id   TEXT COLLATE "C",                       -- named by ?via= or a referral
    occurred_at  BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    properties   TEXT NOT NULL
);
-- Idempotency: one event per external id (NULLs never collide).
CREATE UNIQUE INDEX events_external ON events (program_id, external_id);

-- Partner touches of a person: clicks joined through their click id, via
-- visits, referrals, coupons. What attribution considers.
CREATE TABLE touches (
    id         TEXT COLLATE "C" PRIMARY KEY,             -- the click id, or kind:source-row id
    program_id TEXT COLLATE "C" NOT NULL,
    person_id  TEXT COLLATE "C" NOT NULL,
    partner_id TEXT COLLATE "C" NOT NULL,
    kind       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    at         BIGINT NOT NULL,
    is_bot     BIGINT NOT NULL
);
CREATE INDEX touches_person ON touches (person_id, at);

-- At most one lead per partner and person counts.
CREATE TABLE leads (
    program_id TEXT COLLATE "C" NOT NULL,
    partner_id TEXT COLLATE "C" NOT NULL,
    person_id  TEXT COLLATE "C" NOT NULL,
    event_id   TEXT COLLATE "C" NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (program_id, partner_id, person_id)
);

CREATE TABLE conversions (
    id              TEXT COLLATE "C" PRIMARY KEY,
    program_id      TEXT COLLATE "C" NOT NULL,
    external_id     TEXT COLLATE "C",
    idempotency_key TEXT COLLATE "C",
    person_id       TEXT COLLATE "C",
    status          TEXT NOT NULL,
    value_minor     BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    products        TEXT NOT NULL,           -- JSON
    click_id        TEXT COLLATE "C",
    coupon          TEXT,
    occurred_at     BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    attribution     TEXT NOT NULL            -- JSON: model, window, touches, shares
);
-- A retried order or request never makes a second conversion.
CREATE UNIQUE INDEX conversions_external ON conversions (program_id, external_id);
CREATE UNIQUE INDEX conversions_idempotency ON conversions (program_id, idempotency_key);
CREATE INDEX conversions_time ON conversions (program_id, occurred_at);

-- Each partner's exact share of a conversion, for listing and metrics.
CREATE TABLE conversion_credits (
    conversion_id TEXT COLLATE "C" NOT NULL,
    program_id    TEXT COLLATE "C" NOT NULL,
    partner_id    TEXT COLLATE "C" NOT NULL,
    weight        TEXT NOT NULL,             -- exact share = weight / weight_total (u64 as text)
    weight_total  TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    PRIMARY KEY (conversion_id, partner_id)
);
CREATE INDEX conversion_credits_partner ON conversion_credits (partner_id, occurred_at);
