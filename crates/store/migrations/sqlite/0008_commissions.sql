-- Commissions: reward rules, tiers, exchange rates, the ledger, refunds and
-- payouts.
--
-- The ledger is append-only: `ledger_entries` and `ledger_lines` are only
-- ever inserted into. An account's balance is the sum of its lines (no
-- running balance row: on PostgreSQL one hot row per program would
-- serialise every node's conversions). Line amounts flow into the account
-- (negative: out of it); tribute_core::ledger documents the accounts.
--
-- `commissions` is the position of each commission (or team lead override)
-- as it moves through the ledger: accrued = pending + posted + voided. It is
-- a projection of the entries that name it, kept in the same transaction as
-- they are written, so a refund knows what is left to reverse without
-- replaying the journal. `explanation` is the JSON the API shows next to
-- each ledger line: touches, credit, rule and version, tier, override chain.

-- The program's team override levels (basis points per level, level 1
-- first; empty: no overrides) and minimum payout.
ALTER TABLE programs ADD COLUMN override_levels_bps TEXT NOT NULL DEFAULT '[]';
ALTER TABLE programs ADD COLUMN payout_min_amount BIGINT NOT NULL DEFAULT 0;
-- Where a partner is paid (PayPal / Wise e-mail); the partner's e-mail if unset.
ALTER TABLE partners ADD COLUMN payout_email TEXT;

-- customer_key: whose payment this is, for `once` / N months / lifetime
-- durations (the customer id, else the person). fx: the original amount and
-- the rate used when the conversion came in another currency (JSON), so the
-- books can be reproduced. metadata: what the owner's backend said about
-- the sale (JSON object), read by rule conditions. refunded_minor: refunds so far, in the program's
-- currency, never above the value.
ALTER TABLE conversions ADD COLUMN customer_key TEXT;
ALTER TABLE conversions ADD COLUMN fx TEXT;
ALTER TABLE conversions ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE conversions ADD COLUMN refunded_minor BIGINT NOT NULL DEFAULT 0;
CREATE INDEX conversions_customer ON conversions (program_id, customer_key, occurred_at);

-- Leads are paid by the commission worker, at most once each (the leads
-- table already holds one row per partner and person).
ALTER TABLE leads ADD COLUMN accrued BIGINT NOT NULL DEFAULT 0;
CREATE INDEX leads_unaccrued ON leads (accrued, program_id);

-- A rule is edited by adding a version; commissions name the version they
-- were computed with (rate lock). deleted_at retires a rule's latest version.
CREATE TABLE reward_rules (
    id         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    program_id TEXT NOT NULL REFERENCES programs(id),
    terms      TEXT NOT NULL,               -- JSON, tribute_core::commission::RuleTerms
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (id, version)
);
CREATE INDEX reward_rules_program ON reward_rules (program_id, id, version);

CREATE TABLE tiers (
    id             TEXT PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs(id),
    name           TEXT NOT NULL,
    multiplier_bps BIGINT NOT NULL,
    rank           BIGINT NOT NULL,
    threshold      TEXT,                     -- JSON; NULL: assigned by hand only
    created_at     BIGINT NOT NULL,
    UNIQUE (program_id, name),
    UNIQUE (program_id, rank)
);

-- Every tier change, automatic or by hand, with its reason.
CREATE TABLE tier_changes (
    id         TEXT PRIMARY KEY,
    program_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    from_tier  TEXT,
    to_tier    TEXT,
    reason     TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX tier_changes_partner ON tier_changes (partner_id, at);

-- 1 unit of from_currency = rate units of to_currency (the program's), from
-- effective_at on. The rate is an exact decimal kept as text.
CREATE TABLE fx_rates (
    id            TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL REFERENCES programs(id),
    from_currency TEXT NOT NULL,
    to_currency   TEXT NOT NULL,
    rate          TEXT NOT NULL,
    effective_at  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (program_id, from_currency, to_currency, effective_at)
);

CREATE TABLE commissions (
    id            TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL,
    partner_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,             -- commission | override
    event         TEXT NOT NULL,             -- sale | lead | click
    level         BIGINT NOT NULL,           -- 0, or the override's level
    conversion_id TEXT,
    person_id     TEXT,
    -- What made it, when that is not a conversion (a lead, a run of clicks):
    -- unique, so the worker never pays the same source twice.
    source_key    TEXT UNIQUE,
    derives_from  TEXT,
    currency      TEXT NOT NULL,
    accrued       BIGINT NOT NULL,
    pending       BIGINT NOT NULL,
    posted        BIGINT NOT NULL,
    voided        BIGINT NOT NULL,
    -- held: waiting for a decision (an unverified browser conversion, a
    -- fraud flag); never released by the hold-period job.
    held          BIGINT NOT NULL,
    payable_at    BIGINT NOT NULL,
    status        TEXT NOT NULL,             -- pending | held | payable | paid | voided
    rule_id       TEXT,
    rule_version  BIGINT,
    explanation   TEXT NOT NULL,
    payout_id     TEXT,
    occurred_at   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX commissions_partner ON commissions (partner_id, created_at);
CREATE INDEX commissions_conversion ON commissions (conversion_id);
CREATE INDEX commissions_due ON commissions (status, payable_at);
CREATE INDEX commissions_cap ON commissions (partner_id, occurred_at);

CREATE TABLE ledger_entries (
    id            TEXT PRIMARY KEY,          -- time-ordered
    program_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,             -- accrual | override | post | void | payout | adjustment
    commission_id TEXT,
    conversion_id TEXT,
    payout_id     TEXT,
    memo          TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX ledger_entries_commission ON ledger_entries (commission_id);

CREATE TABLE ledger_lines (
    entry_id   TEXT NOT NULL,
    line_no    BIGINT NOT NULL,
    program_id TEXT NOT NULL,
    partner_id TEXT,                         -- NULL for the program's accounts
    account    TEXT NOT NULL,                -- pending | payable | paid | expense | payouts
    amount     BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (entry_id, line_no)
);
CREATE INDEX ledger_lines_partner ON ledger_lines (partner_id, account, at);
CREATE INDEX ledger_lines_program ON ledger_lines (program_id, account);

-- A refund or chargeback, idempotent by (conversion, external id).
-- applied: the part that counted (never more than what was left of the value).
CREATE TABLE refunds (
    id            TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL,
    conversion_id TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    kind          TEXT NOT NULL,             -- refund | chargeback
    amount        BIGINT NOT NULL,
    applied       BIGINT NOT NULL,
    reversed      BIGINT NOT NULL,           -- commission and overrides voided
    reason        TEXT NOT NULL,
    at            BIGINT NOT NULL,
    UNIQUE (conversion_id, external_id)
);

CREATE TABLE payouts (
    id         TEXT PRIMARY KEY,
    program_id TEXT NOT NULL,
    currency   TEXT NOT NULL,
    status     TEXT NOT NULL,                -- created | paid
    until_at   BIGINT NOT NULL,
    min_amount BIGINT NOT NULL,
    total      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    paid_at    BIGINT
);

CREATE TABLE payout_items (
    payout_id  TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (payout_id, partner_id)
);
CREATE INDEX payout_items_partner ON payout_items (partner_id);

CREATE TABLE payout_requests (
    id         TEXT PRIMARY KEY,
    program_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    status     TEXT NOT NULL,                -- open | batched | paid
    payout_id  TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX payout_requests_partner ON payout_requests (partner_id, created_at);

-- How far the click commission worker has paid, per program (a click id:
-- ids are time-ordered).
CREATE TABLE commission_cursors (
    program_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    position   TEXT NOT NULL,
    PRIMARY KEY (program_id, kind)
);
