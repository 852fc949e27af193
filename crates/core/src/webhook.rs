//! Outbound webhooks: the event catalogue and its payloads, Standard
//! Webhooks signatures, the retry schedule, and the rules an endpoint's
//! address must keep (no private, loopback or link-local targets).
//!
//! A message is made in the transaction of the change it reports (the
//! store's outbox); everything here is the pure part: what it says, how it
//! is signed, when it is tried again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::FieldError;

/// The payload version every message carries (`version`). A change that
/// removes or renames a field makes a new version; added fields do not.
pub const PAYLOAD_VERSION: u32 = 1;

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What a message reports. Endpoints subscribe by these names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind { $($(#[$doc])* $variant,)* }

        impl EventKind {
            /// Every event, in catalogue order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self { $(EventKind::$variant => $name,)* }
            }

            /// Parse an event name; the error names `field`.
            pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
                match s {
                    $($name => Ok(EventKind::$variant),)*
                    _ => Err(FieldError::new(field, format!(
                        "`{s}` is not an event; known events: {}",
                        EventKind::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        }
    };
}

event_kinds! {
    /// A partner's first lead-like event for a person.
    LeadCreated = "lead.created",
    /// A conversion recorded and attributed.
    ConversionCreated = "conversion.created",
    /// Money returned on a conversion (a refund or a chargeback).
    ConversionRefunded = "conversion.refunded",
    /// A commission accrued (pending its hold).
    CommissionCreated = "commission.created",
    /// A commission became payable (its hold ended, or the owner approved it).
    CommissionApproved = "commission.approved",
    /// A commission reversed in part or in whole (refund, rejection).
    CommissionReversed = "commission.reversed",
    /// A payout batch paid a partner.
    PayoutPaid = "payout.paid",
    PartnerCreated = "partner.created",
    PartnerTierChanged = "partner.tier_changed",
    /// An endpoint was disabled (it kept failing, or answered 410 Gone).
    EndpointDisabled = "endpoint.disabled",
}

/// Which events an endpoint receives: every one (an empty list), or those
/// named. Stored as `,a,b,` so the outbox can match with `LIKE`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter(Vec<EventKind>);

impl EventFilter {
    pub fn parse(field: &str, names: &[String]) -> Result<Self, FieldError> {
        let mut kinds = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let k = EventKind::parse(&format!("{field}[{i}]"), n)?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        Ok(Self(kinds))
    }

    pub fn all() -> Self {
        Self(Vec::new())
    }

    pub fn matches(&self, kind: EventKind) -> bool {
        self.0.is_empty() || self.0.contains(&kind)
    }

    /// The names subscribed to (empty: all).
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|k| k.as_str()).collect()
    }

    /// The stored form: `` (all) or `,a,b,`.
    pub fn stored(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        format!(",{},", self.names().join(","))
    }

    /// Read the stored form back; unknown names (from a later version) are
    /// kept out rather than failing the endpoint.
    pub fn from_stored(s: &str) -> Self {
        Self(
            s.split(',')
                .filter_map(|n| EventKind::parse("events", n).ok())
                .collect(),
        )
    }
}

/// What every message's body is: `{type, version, timestamp, data}`. The
/// data is any serializable value: a `serde_json::Value` when read back,
/// a borrowed one when written (the outbox serializes without copying).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope<D = serde_json::Value> {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub timestamp: DateTime<Utc>,
    pub data: D,
}

impl<D> Envelope<D> {
    /// `data` as `kind`'s message at `at`, in the current version.
    pub fn wrap(kind: EventKind, at: DateTime<Utc>, data: D) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            version: PAYLOAD_VERSION,
            timestamp: at,
            data,
        }
    }
}

impl Envelope {
    pub fn new<T: Serialize>(kind: EventKind, at: DateTime<Utc>, data: &T) -> Self {
        Self::wrap(
            kind,
            at,
            serde_json::to_value(data).expect("event data serializes"),
        )
    }
}

/// `conversion.created`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConversionData {
    pub id: String,
    pub program_id: String,
    pub external_id: Option<String>,
    pub status: String,
    /// Minor units of `currency` (the program's).
    pub value: i64,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
    /// The partners credited and their share of the value.
    pub credits: Vec<CreditData>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CreditData {
    pub partner_id: String,
    pub amount: i64,
}

/// `conversion.refunded`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefundData {
    pub id: String,
    pub conversion_id: String,
    pub program_id: String,
    pub external_id: String,
    /// `refund` or `chargeback`.
    pub kind: String,
    pub amount: i64,
    pub currency: String,
}

/// `commission.created`, `commission.approved`, `commission.reversed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommissionData {
    pub id: String,
    pub program_id: String,
    pub partner_id: String,
    /// The conversion it was earned on, when the change names it.
    pub conversion_id: Option<String>,
    /// What this change moved, minor units: the amount accrued, made
    /// payable, or taken back.
    pub amount: i64,
    pub currency: String,
}

/// `lead.created`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeadData {
    pub program_id: String,
    pub partner_id: String,
    pub person_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// `payout.paid`: one per partner paid in the batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PayoutData {
    pub id: String,
    pub program_id: String,
    pub partner_id: String,
    pub amount: i64,
    pub currency: String,
}

/// `partner.created`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartnerData {
    pub id: String,
    pub program_id: String,
    pub slug: String,
    pub name: String,
    pub status: String,
}

/// `partner.tier_changed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TierChangedData {
    pub partner_id: String,
    pub program_id: String,
    pub from_tier: Option<String>,
    pub to_tier: Option<String>,
    pub reason: String,
}

/// `endpoint.disabled`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointDisabledData {
    pub endpoint_id: String,
    pub url: String,
    pub reason: String,
}

/// An endpoint's signing secret: `whsec_` and base64 of 32 random bytes,
/// as Standard Webhooks and svix make them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_…)")
    }
}

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self(format!("whsec_{}", B64.encode(key)))
    }

    /// Read a stored secret back.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let key = s
            .strip_prefix("whsec_")
            .and_then(|k| B64.decode(k).ok())
            .filter(|k| k.len() >= 24);
        match key {
            Some(_) => Ok(Self(s.to_owned())),
            None => Err(FieldError::new(
                "secret",
                "must be `whsec_` followed by base64 of at least 24 bytes",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        B64.decode(&self.0["whsec_".len()..])
            .expect("checked when made")
    }

    /// The `webhook-signature` value for a message: `v1,` and base64 of
    /// HMAC-SHA256 over `{id}.{timestamp}.{body}` (Standard Webhooks).
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key()).expect("any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// When a failed delivery is tried again: svix's schedule (5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: about three days), each delay
/// jittered by ±20 %, and never sooner than the receiver's `Retry-After`
/// (at most a day). `scale` shrinks the schedule and the disabling period
/// for tests (1.0 in production); a `Retry-After` is never scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub scale: f64,
}

/// Seconds to wait after the 1st, 2nd, … failed attempt.
pub const RETRY_SCHEDULE: [u64; 9] = [
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
];

/// How long an endpoint may keep failing before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The longest `Retry-After` honoured; a larger one waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { scale: 1.0 }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, after `attempts` failed ones
    /// (1 for the first); `None` when the schedule is spent. `unit` is a
    /// random number in [0, 1) for the jitter.
    pub fn next_delay(
        &self,
        attempts: u32,
        unit: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *RETRY_SCHEDULE.get(attempts.checked_sub(1)? as usize)?;
        let jitter = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
        let scheduled = Duration::from_secs_f64(base as f64 * jitter * self.scale);
        // The receiver's own ask is not scaled: it is what it said it needs.
        let asked = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
        Some(scheduled.max(asked.unwrap_or_default()))
    }

    /// How long an endpoint may fail before it is disabled, scaled.
    pub fn disable_after(&self) -> Duration {
        DISABLE_AFTER.mul_f64(self.scale)
    }

    /// The most attempts a message gets: the first and one per delay.
    pub fn max_attempts(&self) -> u32 {
        RETRY_SCHEDULE.len() as u32 + 1
    }
}

/// What an attempt's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: done.
    Delivered,
    /// 410 Gone: the receiver asks never to be called again.
    Gone,
    /// Anything else, or no answer: try again later.
    Failed,
}

impl Outcome {
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(200..=299) => Self::Delivered,
            Some(410) => Self::Gone,
            _ => Self::Failed,
        }
    }
}

/// Whether Tribute may send to `ip`: a public unicast address. Private,
/// loopback, link-local (cloud metadata at 169.254.169.254), shared
/// (100.64/10), unspecified, multicast, documentation and benchmarking
/// ranges are refused, as are IPv4-mapped forms of any of those and every
/// IPv6 address outside global unicast (SSRF).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

/// Only global unicast (2000::/3) is public. Everything else is reserved,
/// local or special: loopback, unspecified, IPv4-compatible (`::a.b.c.d`)
/// and IPv4-translated forms, NAT64 (64:ff9b::/96, 64:ff9b:1::/48),
/// discard (100::/64), unique-local, link- and site-local, multicast.
/// Within 2000::/3, the forms that carry an IPv4 address a relay may
/// reach (6to4 2002::/16, Teredo 2001::/32) and documentation ranges are
/// refused too.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    (first & 0xe000) == 0x2000
        && !(first == 0x2002 // 6to4
            || (first == 0x2001 && second == 0x0000) // Teredo
            || (first == 0x2001 && second == 0x0db8) // documentation
            || (first & 0xfff0) == 0x3ff0) // documentation (3fff::/20)
}

/// Check an endpoint URL when the owner saves it: `http` or `https`, a
/// host, no credentials, at most 2,000 characters; an IP literal must be
/// public unless `allow_private`. Names are resolved and checked again on
/// every delivery.
pub fn parse_endpoint_url(
    field: &str,
    s: &str,
    allow_private: bool,
) -> Result<url::Url, FieldError> {
    let err = |m: &str| FieldError::new(field, m);
    if s.len() > 2000 {
        return Err(err("must be at most 2000 characters"));
    }
    let url = url::Url::parse(s.trim()).map_err(|e| err(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err("must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("must not carry credentials"));
    }
    let host = match url.host() {
        Some(h) => h,
        None => return Err(err("must name a host")),
    };
    let ip = match host {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = ip {
        if !allow_private && !is_public_ip(ip) {
            return Err(err(
                "points at a private, loopback or link-local address, which webhooks may not reach",
            ));
        }
    }
    Ok(url)
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
