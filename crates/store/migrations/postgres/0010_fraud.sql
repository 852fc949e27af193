-- Fraud and quality (docs/fraud.md).
--
-- Each program's fraud settings are one JSON document (`FraudConfig`);
-- without a row the defaults apply. A click any rule flagged keeps its
-- reasons (JSON) and is stored with is_bot = 1, so unique clicks and
-- attribution leave it out while the evidence remains.
--
-- Every conversion gets a risk row in the transaction that records it: the
-- score, its reasons, the credited partner scored, the order key (to find
-- the same order from another source) and the click-to-conversion time
-- (the program's own distribution). `review` is none (not held), held,
-- approved or rejected; each hold and each decision is also a row of
-- `fraud_decisions`, with who made it and when.

CREATE TABLE program_fraud (
    program_id TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

ALTER TABLE clicks ADD COLUMN reasons TEXT;

-- What the self-referral and shared-account rules compare beside the
-- partner's e-mail and payout e-mail: their user id in the merchant's
-- system, a payment fingerprint, and the keyed hash of their sign-up IP.
CREATE TABLE partner_identifiers (
    partner_id          TEXT PRIMARY KEY,
    program_id          TEXT NOT NULL,
    user_id             TEXT,
    payment_fingerprint TEXT,
    signup_ip_hash      TEXT,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX partner_identifiers_program ON partner_identifiers (program_id);

CREATE TABLE conversion_risk (
    conversion_id TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL,
    partner_id    TEXT,
    score         BIGINT NOT NULL,
    reasons       TEXT NOT NULL,
    order_key     TEXT,
    click_ms      BIGINT,
    review        TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX conversion_risk_order ON conversion_risk (program_id, order_key);
CREATE INDEX conversion_risk_review ON conversion_risk (review, program_id, at);
CREATE INDEX conversion_risk_program ON conversion_risk (program_id, at);

CREATE TABLE fraud_decisions (
    id            TEXT PRIMARY KEY,
    conversion_id TEXT NOT NULL,
    program_id    TEXT NOT NULL,
    decision      TEXT NOT NULL,
    note          TEXT,
    actor         TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX fraud_decisions_conversion ON fraud_decisions (conversion_id, at);
