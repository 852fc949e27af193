-- Integrations (inbound webhooks) and outbound webhooks with their outbox.
--
-- Inbound: each integration has a provider kind, the signing secret the
-- provider uses (kept as given: verifying an HMAC needs the key itself, as
-- in svix and every webhook receiver; docs/security.md says how to protect
-- the database), and its mapping settings. Every delivery is logged, the
-- rejected ones too (without their body), and a verified delivery's key
-- (the provider's event or webhook id) is unique per integration, so a
-- replay is found and never processed twice.
--
-- Outbound: a message is written to `webhook_deliveries`, one row per
-- endpoint it goes to, in the same transaction as the change it reports,
-- so an acknowledged change always gets its webhook. Senders claim due rows
-- with a lease (lease_owner, lease_until): on PostgreSQL under
-- FOR UPDATE SKIP LOCKED, on SQLite in one UPDATE … RETURNING (SQLite has
-- one writer at a time). A lease that runs out (a node died mid-attempt)
-- makes the row due again; `attempts` counts claims, so an attempt is
-- never sent twice at once and a result is kept only by its lease holder.

CREATE TABLE integrations (
    id         TEXT PRIMARY KEY,
    program_id TEXT NOT NULL REFERENCES programs(id),
    kind       TEXT NOT NULL,               -- stripe | shopify | hubspot | generic
    secret     TEXT NOT NULL,
    mapping    TEXT NOT NULL DEFAULT '{}',  -- JSON object, checked by tribute_core::integration
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX integrations_program ON integrations (program_id);

CREATE TABLE inbound_deliveries (
    id             TEXT PRIMARY KEY,        -- ind_, time-ordered
    integration_id TEXT NOT NULL REFERENCES integrations(id),
    delivery_key   TEXT,                    -- provider's id; NULL when not verified
    topic          TEXT,                    -- Shopify's topic header
    received_at    BIGINT NOT NULL,
    verified       BIGINT NOT NULL,
    status         TEXT NOT NULL,           -- rejected | processing | processed | ignored | failed
    result         TEXT,                    -- JSON: what was done (conversion ids, refund ids, reasons)
    error          TEXT,
    body           TEXT,                    -- kept for verified deliveries, to re-process by hand
    attempts       BIGINT NOT NULL DEFAULT 0,
    started_at     BIGINT,                  -- when processing last began (a stale 'processing' is taken over)
    processed_at   BIGINT
);
CREATE UNIQUE INDEX inbound_deliveries_key ON inbound_deliveries (integration_id, delivery_key);
CREATE INDEX inbound_deliveries_list ON inbound_deliveries (integration_id, id);

-- Provider ids that name a conversion (a Stripe payment intent, charge,
-- invoice, checkout session), so a refund naming any of them finds it.
CREATE TABLE integration_refs (
    program_id    TEXT NOT NULL,
    ref           TEXT NOT NULL,
    conversion_id TEXT NOT NULL REFERENCES conversions(id),
    PRIMARY KEY (program_id, ref)
);

CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    program_id      TEXT NOT NULL REFERENCES programs(id),
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    events          TEXT NOT NULL DEFAULT '',  -- '' (all) or ',a,b,'
    partner_id      TEXT REFERENCES partners(id),
    secret          TEXT NOT NULL,             -- whsec_…: signing needs the key itself
    previous_secret TEXT,                      -- still signed with until previous_until, after a rotation
    previous_until  BIGINT,
    enabled         BIGINT NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    failing_since   BIGINT,                    -- first failure since the last success
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_program ON webhook_endpoints (program_id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,          -- whd_, time-ordered
    msg_id          TEXT NOT NULL,             -- msg_: the webhook-id, same on retries
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id),
    program_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,             -- pending | delivered | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    last_attempt_at BIGINT,
    delivered_at    BIGINT
) WITHOUT ROWID; -- keyed by id alone: one B-tree less to write per message, in the conversion's transaction
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id              TEXT PRIMARY KEY,
    delivery_id     TEXT NOT NULL REFERENCES webhook_deliveries(id),
    attempt         BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    status_code     BIGINT,                    -- NULL: no answer (refused, timed out, blocked address)
    error           TEXT,
    response        TEXT,                      -- the answer's first 1,000 characters
    next_attempt_at BIGINT                     -- when it is tried again; NULL: not again
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- What the console shows the owner (an endpoint disabled, …).
CREATE TABLE notices (
    id           TEXT PRIMARY KEY,
    program_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject_id   TEXT,
    message      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    dismissed_at BIGINT
);
CREATE INDEX notices_program ON notices (program_id, id);
