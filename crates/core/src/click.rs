//! Clicks: what is kept of a visitor (truncated IP, keyed hashes) and
//! whether the visitor is a bot.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The IP address with its host part removed: IPv4 to its /24, IPv6 to its /48.
///
/// This is what Tribute stores in clear; the full address only ever enters a
/// keyed hash.
pub fn truncate_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return truncate_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Keyed hashes of a visitor, with a server secret so they cannot be reversed
/// by enumerating the IPv4 space.
///
/// SipHash-1-3 with a 128-bit key is a keyed pseudo-random function: without
/// the key the hashes reveal nothing, and it costs tens of nanoseconds where
/// HMAC-SHA-256 cost half a microsecond on the redirect path.
#[derive(Clone)]
pub struct VisitorHasher {
    key: [u8; 16],
}

impl VisitorHasher {
    /// `key` is any secret; it is condensed to SipHash's 128-bit key.
    pub fn new(key: &[u8]) -> Self {
        let digest = Sha256::digest(key);
        let mut k = [0u8; 16];
        k.copy_from_slice(&digest[..16]);
        Self { key: k }
    }

    fn digest(&self, tag: u8, ip: IpAddr, extra: &[u8]) -> String {
        // 64 bits: plenty to tell apart the visitors of one link on one day
        // (or one IP's clicks), and 16 bytes less on every click row.
        format!("{:016x}", self.digest64(tag, ip, extra))
    }

    fn digest64(&self, tag: u8, ip: IpAddr, extra: &[u8]) -> u64 {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher13::new_with_key(&self.key);
        h.write_u8(tag);
        match ip {
            IpAddr::V4(v4) => h.write(&v4.octets()),
            IpAddr::V6(v6) => h.write(&v6.octets()),
        }
        h.write(extra);
        h.finish()
    }

    /// [`Self::ip_hash`] as the number it prints (the fraud rules' key).
    pub fn ip_key(&self, ip: IpAddr) -> u64 {
        self.digest64(b'i', ip, &[])
    }

    /// [`Self::visitor_hash`] as the number it prints.
    pub fn visitor_key(&self, ip: IpAddr, user_agent: &str) -> u64 {
        self.digest64(b'v', ip, user_agent.as_bytes())
    }

    /// Hash of the full IP: the key for per-IP velocity checks.
    pub fn ip_hash(&self, ip: IpAddr) -> String {
        self.digest(b'i', ip, &[])
    }

    /// Hash of IP and user agent: one visitor, for unique-click counting.
    pub fn visitor_hash(&self, ip: IpAddr, user_agent: &str) -> String {
        self.digest(b'v', ip, user_agent.as_bytes())
    }
}

/// Recognises bots and crawlers by user agent, using the maintained pattern
/// list of the `isbot` project. Build it once: it compiles a large regex.
#[derive(Default)]
pub struct BotDetector {
    bots: isbot::Bots,
}

impl BotDetector {
    /// A missing or empty user agent is a bot: every browser sends one.
    pub fn is_bot(&self, user_agent: Option<&str>) -> bool {
        match user_agent.map(str::trim) {
            None | Some("") => true,
            Some(ua) => self.bots.is_bot(ua),
        }
    }
}

/// Days since the Unix epoch (UTC): the "day" of one-unique-click-per-day.
pub fn epoch_day(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_truncated_to_its_slash_24() {
        assert_eq!(
            truncate_ip("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
    }

    #[test]
    fn ipv6_is_truncated_to_its_slash_48() {
        assert_eq!(
            truncate_ip("2001:db8:abcd:12:1:2:3:4".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
        assert_eq!(
            truncate_ip("::ffff:198.51.100.9".parse().unwrap()),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn the_numeric_keys_are_the_hashes_stored_as_text() {
        let h = VisitorHasher::new(b"one");
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(format!("{:016x}", h.ip_key(ip)), h.ip_hash(ip));
        assert_eq!(
            format!("{:016x}", h.visitor_key(ip, "ua")),
            h.visitor_hash(ip, "ua")
        );
        assert_ne!(h.ip_key(ip), h.visitor_key(ip, ""));
    }

    #[test]
    fn visitor_hashes_depend_on_the_key_and_the_full_address() {
        let a = VisitorHasher::new(b"one");
        let b = VisitorHasher::new(b"two");
        let ip: IpAddr = "203.0.113.77".parse().unwrap();
        let near: IpAddr = "203.0.113.78".parse().unwrap();
        assert_ne!(a.ip_hash(ip), b.ip_hash(ip));
        assert_ne!(a.ip_hash(ip), a.ip_hash(near));
        assert_eq!(a.visitor_hash(ip, "ua"), a.visitor_hash(ip, "ua"));
        assert_ne!(a.visitor_hash(ip, "ua"), a.visitor_hash(ip, "ub"));
    }

    #[test]
    fn crawlers_and_missing_user_agents_are_bots_browsers_are_not() {
        let d = BotDetector::default();
        assert!(d.is_bot(Some("Googlebot/2.1 (+http://www.google.com/bot.html)")));
        assert!(d.is_bot(Some("curl/8.5.0")));
        assert!(d.is_bot(None));
        assert!(!d.is_bot(Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
        )));
    }

    #[test]
    fn epoch_day_changes_at_utc_midnight() {
        let a: DateTime<Utc> = "2026-01-01T23:59:59Z".parse().unwrap();
        let b: DateTime<Utc> = "2026-01-02T00:00:00Z".parse().unwrap();
        assert_eq!(epoch_day(b) - epoch_day(a), 1);
    }
}

/// A click as recorded by the redirect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Click {
    pub id: crate::ids::ClickId,
    pub program_id: crate::ids::ProgramId,
    pub link_id: crate::ids::LinkId,
    pub partner_id: crate::ids::PartnerId,
    pub at: DateTime<Utc>,
    /// IPv4 /24 or IPv6 /48: the only form of the address kept in clear.
    pub ip_truncated: String,
    #[serde(skip)]
    pub ip_hash: String,
    #[serde(skip)]
    pub visitor_hash: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    /// The link's source (website, social, email, …), copied for metrics.
    pub source: Option<String>,
    /// A bot, or a click any fraud rule flagged: kept as evidence, left out
    /// of unique clicks and attribution.
    pub is_bot: bool,
    /// Why the click was flagged: the fraud rules' reasons (empty when
    /// clean, or a bot told only by `is_bot`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<crate::fraud::Reason>,
}

/// Click counts of a partner or a source over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClickCounts {
    /// Clicks by humans (bots excluded).
    pub clicks: i64,
    /// Human clicks counted once per visitor, link and UTC day.
    pub unique_clicks: i64,
    /// Clicks flagged as bots or crawlers.
    pub bot_clicks: i64,
}
