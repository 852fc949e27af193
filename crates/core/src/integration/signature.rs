//! Checking that an inbound delivery comes from the provider: each
//! provider's own HMAC-SHA256 scheme, compared in constant time, plus a
//! freshness window so a captured delivery cannot be replayed later, and
//! the delivery's id ([`Verified::delivery_id`]) so a replay within the
//! window is recognised as a duplicate.
//!
//! | provider | signature header | signed bytes | freshness |
//! |---|---|---|---|
//! | Stripe | `stripe-signature: t=…,v1=<hex>` | `{t}.{body}` | `t` within 300 s |
//! | Shopify | `x-shopify-hmac-sha256: <base64>` | body | `x-shopify-triggered-at` within 48 h |
//! | HubSpot v3 | `x-hubspot-signature-v3: <base64>` | method + url + body + timestamp | `x-hubspot-request-timestamp` (ms) within 5 min |
//! | generic | `signature_header` (`x-signature`): hex or base64, optional `sha256=` | body, or `{timestamp}.{body}` | `timestamp_header` within `tolerance_seconds` |
//!
//! The signature is checked before the time, so a forged delivery is a
//! [`VerifyError::Mismatch`] whatever its timestamp, and [`VerifyError::Stale`]
//! means "genuine, but too old (or too far ahead) to accept".
//!
//! HubSpot signs the URL it called with some characters percent-decoded
//! (`%3A` → `:`, `%2F` → `/`, `%3F` → `?`, …, as its documentation lists).
//! The URL is tried exactly as the server passes it, then, if it holds any
//! of those escapes, with them decoded: pass the full URL as received
//! (scheme, host as HubSpot called it, path and query).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;

use super::IntegrationKind;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's and HubSpot's replay window: five minutes either way.
const FIVE_MINUTES: i64 = 300;
/// Shopify retries a failed delivery for up to 48 hours, keeping its
/// original `x-shopify-triggered-at`.
const SHOPIFY_TOLERANCE: i64 = 48 * 3600;
/// How far ahead of `now` a timestamp may be (clock skew) when the window
/// into the past is long (Shopify's).
const MAX_SKEW: i64 = FIVE_MINUTES;

/// An inbound HTTP request as received, before its body is trusted.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    /// `POST`, as received.
    pub method: &'a str,
    /// The full URL the provider called, e.g.
    /// `https://t.example.com/hooks/hubspot/int_x?a=b` (HubSpot signs it).
    pub url: &'a str,
    /// Header names lower-cased (looked up case-insensitively anyway).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl InboundRequest<'_> {
    /// The first header named `name`, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// A delivery whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key that makes a replay of this delivery a duplicate: Stripe's
    /// event id, Shopify's webhook id, a digest of HubSpot's timestamp and
    /// body, the generic `id_header` or a digest of what was signed.
    pub delivery_id: String,
}

/// Why a delivery was refused. None of these should be retried with the
/// same request; the server answers 400 (Missing, Malformed) or 401.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// A required header is absent: its name, or for a generic
    /// integration's configured header, the setting that names it
    /// (`signature_header`, `timestamp_header`).
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// A header or the body cannot be read (a signature that is neither
    /// hex nor base64, a timestamp that is not a number, no event id).
    #[error("malformed delivery: {0}")]
    Malformed(String),
    /// Signed correctly, but outside the freshness window.
    #[error("stale delivery: {0}")]
    Stale(String),
    /// The signature does not match the body with this secret.
    #[error("the signature does not match")]
    Mismatch,
}

/// Check `req`'s signature with the integration's `secret` and settings
/// (`mapping`: Shopify and generic read their window and headers from
/// it), at `now`. An empty secret never verifies.
pub fn verify(
    kind: IntegrationKind,
    secret: &str,
    settings: &Value,
    req: &InboundRequest,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    if secret.is_empty() {
        return Err(VerifyError::Mismatch);
    }
    let verified = match kind {
        IntegrationKind::Stripe => stripe(secret, req, now),
        IntegrationKind::Shopify => shopify(secret, settings, req, now),
        IntegrationKind::Hubspot => hubspot(secret, req, now),
        IntegrationKind::Generic => generic(secret, settings, req, now),
    }?;
    Ok(Verified {
        delivery_id: bounded_id(verified.delivery_id),
    })
}

/// The longest provider id kept as given.
const MAX_DELIVERY_ID: usize = 200;

/// A provider id as the delivery log keys it: as given, unless it is longer
/// than [`MAX_DELIVERY_ID`] bytes (a header may be any length; PostgreSQL
/// cannot index a long one) or holds a control character (its text holds
/// no NUL), when its digest names it instead, as uniquely.
fn bounded_id(id: String) -> String {
    if id.len() <= MAX_DELIVERY_ID && !id.chars().any(char::is_control) {
        return id;
    }
    format!("sha256:{}", hex_sha256(&[id.as_bytes()]))
}

/// A header value quoted in an error: its first 40 characters, so an
/// error (answered, and logged for a rejected delivery) stays short
/// whatever was sent.
fn quoted(v: &str) -> String {
    const MAX: usize = 40;
    match v.char_indices().nth(MAX) {
        None => v.to_owned(),
        Some((end, _)) => format!("{}…", &v[..end]),
    }
}

/// An HMAC-SHA256 keyed with the secret's bytes, exactly as given (Stripe's
/// `whsec_…` included, as Stripe's own libraries do).
fn mac(secret: &str, parts: &[&[u8]]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac
}

/// Constant-time comparison of the MAC with a claimed tag.
fn matches(mac: &HmacSha256, tag: &[u8]) -> bool {
    mac.clone().verify_slice(tag).is_ok()
}

/// Refuse a timestamp (in `unit`s per second) more than `past` seconds
/// before `now` or more than `ahead` seconds after it. In `i128`: a
/// timestamp read from a header may be anything.
fn fresh(
    at: i64,
    per_second: i64,
    now: DateTime<Utc>,
    past: i64,
    ahead: i64,
) -> Result<(), VerifyError> {
    let now = i128::from(now.timestamp_millis()) * i128::from(per_second) / 1000;
    let age = now - i128::from(at);
    let (past, ahead) = (
        i128::from(past * per_second),
        i128::from(ahead * per_second),
    );
    if age > past {
        Err(VerifyError::Stale(format!(
            "signed {} s ago, more than the {} s accepted",
            age / i128::from(per_second),
            past / i128::from(per_second)
        )))
    } else if -age > ahead {
        Err(VerifyError::Stale(format!(
            "signed {} s in the future, more than the {} s of clock skew accepted",
            -age / i128::from(per_second),
            ahead / i128::from(per_second)
        )))
    } else {
        Ok(())
    }
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn stripe(secret: &str, req: &InboundRequest, now: DateTime<Utc>) -> Result<Verified, VerifyError> {
    let header = req
        .header("stripe-signature")
        .ok_or(VerifyError::Missing("stripe-signature"))?;
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "t" => {
                let secs: i64 = v.trim().parse().map_err(|_| {
                    VerifyError::Malformed(format!(
                        "stripe-signature t=`{}` is not a Unix time",
                        quoted(v)
                    ))
                })?;
                t = Some((secs, v.trim()));
            }
            // A value that is not hex cannot match; other schemes (`v0`, the
            // test-mode one) are ignored, as Stripe's libraries do.
            "v1" => v1.extend(hex::decode(v.trim()).ok()),
            _ => {}
        }
    }
    let (secs, t_text) =
        t.ok_or_else(|| VerifyError::Malformed("stripe-signature has no t=".into()))?;
    if v1.is_empty() {
        return Err(VerifyError::Malformed(
            "stripe-signature has no v1= signature".into(),
        ));
    }
    let mac = mac(secret, &[t_text.as_bytes(), b".", req.body]);
    if !v1.iter().any(|tag| matches(&mac, tag)) {
        return Err(VerifyError::Mismatch);
    }
    fresh(secs, 1, now, FIVE_MINUTES, FIVE_MINUTES)?;
    let id = serde_json::from_slice::<Value>(req.body)
        .ok()
        .and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_owned))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| VerifyError::Malformed("the Stripe event has no id".into()))?;
    Ok(Verified { delivery_id: id })
}

fn shopify(
    secret: &str,
    settings: &Value,
    req: &InboundRequest,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    let tolerance = super::tolerance_seconds(settings, SHOPIFY_TOLERANCE)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let signature = req
        .header("x-shopify-hmac-sha256")
        .ok_or(VerifyError::Missing("x-shopify-hmac-sha256"))?;
    let triggered = req
        .header("x-shopify-triggered-at")
        .ok_or(VerifyError::Missing("x-shopify-triggered-at"))?;
    let webhook_id = req
        .header("x-shopify-webhook-id")
        .filter(|id| !id.is_empty())
        .ok_or(VerifyError::Missing("x-shopify-webhook-id"))?;
    let tag = STANDARD
        .decode(signature)
        .map_err(|_| VerifyError::Malformed("x-shopify-hmac-sha256 is not base64".into()))?;
    let at = DateTime::parse_from_rfc3339(triggered).map_err(|_| {
        VerifyError::Malformed(format!(
            "x-shopify-triggered-at `{}` is not an RFC 3339 time",
            quoted(triggered)
        ))
    })?;
    if !matches(&mac(secret, &[req.body]), &tag) {
        return Err(VerifyError::Mismatch);
    }
    // The triggered-at time is not signed: it only narrows the window of a
    // replay to Shopify's own retry period (48 h unless configured).
    fresh(at.timestamp(), 1, now, tolerance, MAX_SKEW.min(tolerance))?;
    Ok(Verified {
        delivery_id: webhook_id.to_owned(),
    })
}

/// The characters HubSpot decodes in the URL before signing (its v3
/// signature documentation's table).
const HUBSPOT_DECODED: [(&str, &str); 13] = [
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
    ("%23", "#"),
];

fn hubspot_decoded(url: &str) -> Option<String> {
    let mut out = url.to_owned();
    for (from, to) in HUBSPOT_DECODED {
        out = out
            .replace(from, to)
            .replace(&from.to_ascii_lowercase(), to);
    }
    (out != url).then_some(out)
}

fn hubspot(
    secret: &str,
    req: &InboundRequest,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    let signature = req
        .header("x-hubspot-signature-v3")
        .ok_or(VerifyError::Missing("x-hubspot-signature-v3"))?;
    let timestamp = req
        .header("x-hubspot-request-timestamp")
        .ok_or(VerifyError::Missing("x-hubspot-request-timestamp"))?;
    let millis: i64 = timestamp.parse().map_err(|_| {
        VerifyError::Malformed(format!(
            "x-hubspot-request-timestamp `{}` is not Unix milliseconds",
            quoted(timestamp)
        ))
    })?;
    let tag = STANDARD
        .decode(signature)
        .map_err(|_| VerifyError::Malformed("x-hubspot-signature-v3 is not base64".into()))?;
    let signed = |url: &str| {
        mac(
            secret,
            &[
                req.method.as_bytes(),
                url.as_bytes(),
                req.body,
                timestamp.as_bytes(),
            ],
        )
    };
    let ok = matches(&signed(req.url), &tag)
        || hubspot_decoded(req.url).is_some_and(|url| matches(&signed(&url), &tag));
    if !ok {
        return Err(VerifyError::Mismatch);
    }
    fresh(millis, 1000, now, FIVE_MINUTES, FIVE_MINUTES)?;
    Ok(Verified {
        delivery_id: format!(
            "hubspot:{}",
            hex_sha256(&[timestamp.as_bytes(), b".", req.body])
        ),
    })
}

/// A header name from the generic settings, lower case; `default` when
/// absent or null.
fn header_setting(settings: &Value, key: &str, default: Option<&str>) -> Option<String> {
    match settings.get(key).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Some(s.to_ascii_lowercase()),
        _ => default.map(str::to_owned),
    }
}

/// A generic signature: hex (64 digits) or base64 (standard or URL-safe),
/// optionally prefixed `sha256=`.
fn generic_tag(value: &str) -> Result<Vec<u8>, VerifyError> {
    let v = value.trim();
    let v = match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256=") => &v[7..],
        _ => v,
    };
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(v).map_err(|_| VerifyError::Malformed("bad hex signature".into()));
    }
    STANDARD
        .decode(v)
        .or_else(|_| URL_SAFE.decode(v))
        .map_err(|_| VerifyError::Malformed("the signature is neither hex nor base64".into()))
}

fn generic(
    secret: &str,
    settings: &Value,
    req: &InboundRequest,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    let tolerance = super::tolerance_seconds(settings, FIVE_MINUTES)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let signature_header =
        header_setting(settings, "signature_header", Some("x-signature")).unwrap_or_default();
    let missing_signature = if signature_header == "x-signature" {
        "x-signature"
    } else {
        "signature_header"
    };
    let signature = req
        .header(&signature_header)
        .ok_or(VerifyError::Missing(missing_signature))?;
    let timestamp = match header_setting(settings, "timestamp_header", None) {
        None => None,
        Some(name) => {
            let text = req
                .header(&name)
                .ok_or(VerifyError::Missing("timestamp_header"))?;
            let secs: i64 = text.parse().map_err(|_| {
                VerifyError::Malformed(format!(
                    "the timestamp `{}` is not Unix seconds",
                    quoted(text)
                ))
            })?;
            Some((secs, text))
        }
    };
    let tag = generic_tag(signature)?;
    let mac = match timestamp {
        Some((_, text)) => mac(secret, &[text.as_bytes(), b".", req.body]),
        None => mac(secret, &[req.body]),
    };
    if !matches(&mac, &tag) {
        return Err(VerifyError::Mismatch);
    }
    if let Some((secs, _)) = timestamp {
        fresh(secs, 1, now, tolerance, tolerance)?;
    }
    let configured_id = header_setting(settings, "id_header", None).and_then(|name| {
        req.header(&name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    });
    let delivery_id = configured_id.unwrap_or_else(|| {
        let digest = match timestamp {
            Some((_, text)) => hex_sha256(&[text.as_bytes(), b".", req.body]),
            None => hex_sha256(&[req.body]),
        };
        format!("generic:{digest}")
    });
    Ok(Verified { delivery_id })
}
