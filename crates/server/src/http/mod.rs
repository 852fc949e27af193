//! What every HTTP handler shares: the one error type, the extractors (the
//! authenticated caller, JSON bodies, query strings, paging, periods) and
//! how a conversion is shown to whoever asks.
//!
//! This is the bottom layer of the server: `services`, `api` and `ingest`
//! import it; it imports none of them.

pub mod body;
pub mod client;
pub mod conversion;
pub mod error;
pub mod extract;
pub mod fallback;
pub mod query;

pub use error::{ApiError, ApiResult};
pub use extract::{ApiJson, Auth};
pub use query::{List, Paging, Period, Query};
