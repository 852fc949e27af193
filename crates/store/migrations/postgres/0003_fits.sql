-- (PostgreSQL) Fits of the data-driven attribution models (Markov, Shapley) over a
-- period of a program's journeys. Kept with their period so an attribution
-- made with a fit can be reproduced later, whatever has happened since.
CREATE TABLE attribution_fits (
    id          TEXT COLLATE "C" PRIMARY KEY,
    program_id  TEXT COLLATE "C" NOT NULL,
    model       TEXT NOT NULL,
    period_from BIGINT NOT NULL,
    period_to   BIGINT NOT NULL,
    journeys    BIGINT NOT NULL,
    fit         TEXT NOT NULL,               -- JSON tribute_core::attribution::Fit
    created_at  BIGINT NOT NULL
);
CREATE INDEX attribution_fits_latest ON attribution_fits (program_id, model, created_at);
