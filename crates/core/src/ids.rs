//! Prefixed, random, typed identifiers (`prg_…`, `ptn_…`, `lnk_…`).
//!
//! Ids are random rather than sequential so that several nodes can create
//! rows against one PostgreSQL database without coordination, and so that an
//! id leaks nothing about volume. The prefix makes a pasted id self-describing.

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::FieldError;

/// Length of the random part of an id: 62^20 ≈ 7·10^35 values.
const RANDOM_LEN: usize = 20;

/// Base62 digits, in ASCII order so encoded numbers sort like the numbers.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 8 base62 digits of a millisecond time (sortable until the year 8000+),
/// then 14 random base62 characters (≈83 bits, still unguessable).
///
/// For rows written at tens of thousands per second (clicks, events): ids
/// that grow with time land at the right edge of the primary-key B-tree
/// instead of on random pages, which keeps batch writes fast as tables grow.
fn ordered_suffix(now_ms: i64) -> String {
    let mut n = now_ms.max(0) as u64;
    let mut out = [b'0'; 8];
    for d in out.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let mut s = String::with_capacity(22);
    s.push_str(std::str::from_utf8(&out).expect("base62 digits are ASCII"));
    s.push_str(&random_base62(14));
    s
}

/// `len` random base62 characters from the thread's CSPRNG.
pub fn random_base62(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, random_base62(RANDOM_LEN)))
            }

            /// A fresh id that sorts by `now_ms` (see `ordered_suffix`).
            pub fn generate_ordered(now_ms: i64) -> Self {
                Self(format!("{}_{}", $prefix, ordered_suffix(now_ms)))
            }

            /// Parse an id received from outside, checking its prefix and alphabet.
            pub fn parse(s: &str) -> Result<Self, FieldError> {
                let rest = s
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or_else(|| FieldError::new("id", format!("expected an id starting with `{}_`", $prefix)))?;
                if rest.is_empty() || rest.len() > 64 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(FieldError::new("id", "malformed id"));
                }
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(s: String) -> Result<Self, FieldError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

typed_id!(/// A program's id.
    ProgramId, "prg");
typed_id!(/// A partner's id.
    PartnerId, "ptn");
typed_id!(/// A tracked link's id.
    LinkId, "lnk");
typed_id!(/// A coupon's id.
    CouponId, "cpn");
typed_id!(/// A click's id; also the `tid` appended to redirects.
    ClickId, "clk");
typed_id!(/// An API key's id (the public half of a key).
    ApiKeyId, "key");
typed_id!(/// An event's id.
    EventId, "evt");
typed_id!(/// A conversion's id.
    ConversionId, "cnv");
typed_id!(/// A person's id (one stitched identity).
    PersonId, "per");
typed_id!(/// A reward rule's id (its versions share it).
    RewardRuleId, "rwr");
typed_id!(/// A commission's id (a partner's or a team lead's override).
    CommissionId, "com");
typed_id!(/// A journal entry's id (time-ordered: entries list in the order made).
    EntryId, "jen");
typed_id!(/// A refund's or chargeback's id.
    RefundId, "rfd");
typed_id!(/// A payout batch's id.
    PayoutId, "pay");
typed_id!(/// A partner's payout request's id.
    PayoutRequestId, "prq");
typed_id!(/// A tier's id.
    TierId, "tir");
typed_id!(/// An exchange rate's id.
    FxRateId, "fxr");
typed_id!(/// An inbound integration's id (its hook URL names it).
    IntegrationId, "int");
typed_id!(/// One inbound webhook delivery as received (time-ordered).
    InboundDeliveryId, "ind");
typed_id!(/// An outbound webhook endpoint's id.
    WebhookEndpointId, "ep");
typed_id!(/// An outbound message's id: the `webhook-id`, the same on every
    /// endpoint and every retry (time-ordered).
    MessageId, "msg");
typed_id!(/// One message's delivery to one endpoint (time-ordered).
    WebhookDeliveryId, "whd");
typed_id!(/// One attempt at a delivery.
    AttemptId, "atm");
typed_id!(/// An owner's notice (an endpoint disabled, …).
    NoticeId, "ntc");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_their_prefix_and_parse_back() {
        let id = PartnerId::generate();
        assert!(id.as_str().starts_with("ptn_"));
        assert_eq!(PartnerId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn ordered_click_ids_sort_by_time_and_parse() {
        let a = ClickId::generate_ordered(1_700_000_000_000);
        let b = ClickId::generate_ordered(1_700_000_000_001);
        let c = ClickId::generate_ordered(1_800_000_000_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(ClickId::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.as_str().len(), 4 + 8 + 14);
    }

    #[test]
    fn an_id_with_the_wrong_prefix_is_refused() {
        let id = ProgramId::generate();
        assert!(PartnerId::parse(id.as_str()).is_err());
        assert!(PartnerId::parse("ptn_").is_err());
        assert!(PartnerId::parse("ptn_a-b").is_err());
    }
}
