//! What the server does, apart from how a request asked for it: recording a
//! conversion, the fit policy of the data-driven models, and acting on a
//! verified inbound webhook (later: fraud, privacy).
//!
//! Services take parsed domain values and the [`AppState`](crate::AppState),
//! and are called by `api`, `ingest` and the workers; they never import
//! `api` or `ingest`. Anything that must be atomic with a conversion
//! (credits, and later commissions, ledger postings, outbox rows) is written
//! by the store in one transaction through one connection.

pub mod conversions;
pub mod fit;
pub mod inbound;
