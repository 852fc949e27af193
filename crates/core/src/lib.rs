//! Tribute's domain: pure, synchronous values and decisions.
//!
//! Nothing here performs I/O, touches a clock or knows about HTTP or SQL.
//! Values are parsed once at the edge (`parse`/`TryFrom`) and are valid by
//! construction afterwards; time is always passed in.

pub mod apikey;
pub mod attribution;
pub mod click;
pub mod commission;
pub mod conversion;
pub mod coupon;
pub mod error;
pub mod fraud;
pub mod fx;
pub mod identity;
pub mod ids;
pub mod integration;
pub mod ledger;
pub mod link;
pub mod money;
pub mod partner;
pub mod payout;
pub mod postback;
pub mod program;
pub mod split;
pub mod text;
pub mod tracking;
pub mod webhook;

pub use error::FieldError;
