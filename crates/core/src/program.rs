//! Programs: the settings every partner, link and rule of a program shares.

use serde::{Deserialize, Serialize};

use crate::attribution::ModelKind;
use crate::money::Currency;
use crate::FieldError;

mod terms;

pub use terms::CommissionTerms;

/// A site a program's links may redirect to and whose pages may send events:
/// a domain (and its subdomains), optionally with one port (`example.com:8443`).
///
/// Without a port it allows the scheme's default port only (80, 443); an
/// owner who serves on another port lists it, once per port. Refused: IP
/// addresses (a site is named by its domain; an address allows whatever is
/// hosted there) and public suffixes such as `com`, `co.uk` or `github.io`
/// (from the Public Suffix List): allowing one would allow every site under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedDomain {
    /// `host` or `host:port`, as stored and shown.
    entry: String,
    port: Option<u16>,
}

impl AllowedDomain {
    /// Parse an owner's entry, refusing IP addresses and public suffixes.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let d = Self::parse_syntax(s)?;
        let refuse = |why: &str| FieldError::new("allowed_domains", format!("`{s}` {why}"));
        if ends_in_a_number(d.host()) {
            return Err(refuse(
                "is an IP address: name the site's domain (e.g. example.com)",
            ));
        }
        if psl::domain(d.host().as_bytes()).is_none() {
            return Err(refuse(
                "is a public suffix (like com or co.uk): name a domain under it (e.g. example.com)",
            ));
        }
        Ok(d)
    }

    /// Read back an entry stored by an earlier version, which did not yet
    /// refuse IP addresses and public suffixes: only its form is checked, so
    /// a program saved then still loads (and is refused when next edited).
    pub fn from_stored(s: &str) -> Result<Self, FieldError> {
        Self::parse_syntax(s)
    }

    /// `host[:port]`: lower-cased DNS labels, a port from 1 to 65535.
    fn parse_syntax(s: &str) -> Result<Self, FieldError> {
        let err = || {
            FieldError::new(
                "allowed_domains",
                format!("`{s}` is not a domain name (e.g. example.com or example.com:8443)"),
            )
        };
        let t = s.trim().to_ascii_lowercase();
        let (host, port) = match t.split_once(':') {
            None => (t.as_str(), None),
            Some((host, port)) => {
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(err)?;
                (host, Some(port))
            }
        };
        let host = host.trim_end_matches('.');
        if host.is_empty() || host.len() > 253 {
            return Err(err());
        }
        let labels_ok = host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !labels_ok {
            return Err(err());
        }
        let entry = match port {
            None => host.to_owned(),
            Some(p) => format!("{host}:{p}"),
        };
        Ok(Self { entry, port })
    }

    /// The entry as the owner wrote it, normalised: `host` or `host:port`.
    pub fn as_str(&self) -> &str {
        &self.entry
    }

    /// The domain, without the port.
    pub fn host(&self) -> &str {
        self.entry.split(':').next().unwrap_or(&self.entry)
    }

    /// The one non-default port this entry allows, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether `host` is this domain or one of its subdomains (any port).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        let d = self.host();
        host.eq_ignore_ascii_case(d)
            || (host.len() > d.len()
                && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                && host[host.len() - d.len()..].eq_ignore_ascii_case(d))
    }

    /// Whether this entry allows `host` on `port` (`None`: the scheme's
    /// default port, as [`url::Url::port`] reports it).
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        self.port == port && self.covers(host)
    }
}

/// Whether a browser would read a host name as an IPv4 address (the WHATWG
/// URL standard's "ends in a number": the last label is decimal, or `0x`
/// hexadecimal), so `127.0.0.1`, `10.1` and `0x7f.1` all count.
fn ends_in_a_number(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

impl std::fmt::Display for AllowedDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.entry)
    }
}

impl TryFrom<String> for AllowedDomain {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<AllowedDomain> for String {
    fn from(d: AllowedDomain) -> String {
        d.entry
    }
}

/// A program's validated settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSettings {
    pub name: String,
    pub currency: Currency,
    pub allowed_domains: Vec<AllowedDomain>,
    pub default_model: ModelKind,
    /// Touches older than this many days before a conversion do not count.
    pub window_days: i64,
    /// Lifetime of the first-party cookie the snippet sets.
    pub cookie_days: i64,
    /// Days a commission stays pending before it becomes payable.
    pub hold_days: i64,
}

impl ProgramSettings {
    /// Check every field, naming the first one that is wrong.
    pub fn validate(&self) -> Result<(), FieldError> {
        crate::text::PlainText::parse("name", &self.name, 200)?;
        // The same window rule as a what-if's or comparison's override.
        crate::attribution::check_window_days("window_days", self.window_days)?;
        for (field, v, max) in [
            ("cookie_days", self.cookie_days, 3650),
            ("hold_days", self.hold_days, 3650),
        ] {
            let min = if field == "hold_days" { 0 } else { 1 };
            if v < min || v > max {
                return Err(FieldError::new(
                    field,
                    format!("must be between {min} and {max}"),
                ));
            }
        }
        Ok(())
    }

    /// A default model named in the API; the error names `default_model`.
    pub fn parse_default_model(s: &str) -> Result<ModelKind, FieldError> {
        ModelKind::parse(s).map_err(|_| {
            let names: Vec<&str> = ModelKind::ALL.iter().map(|m| m.as_str()).collect();
            FieldError::new(
                "default_model",
                format!("must be one of {}", names.join(", ")),
            )
        })
    }

    /// Whether a URL (a destination, a CORS origin) is on this program's
    /// allowed domains: its host under one of them, and its port the one
    /// that entry lists (none listed: the scheme's default port only).
    pub fn allows_url(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        self.allowed_domains
            .iter()
            .any(|d| d.allows(host, url.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_domain_covers_itself_and_subdomains_only() {
        let d = AllowedDomain::parse("Example.com").unwrap();
        assert!(d.covers("example.com"));
        assert!(d.covers("shop.example.com"));
        assert!(!d.covers("evilexample.com"));
        assert!(!d.covers("example.com.evil.net"));
    }

    #[test]
    fn allowed_domain_refuses_urls_and_wildcards() {
        for bad in ["https://example.com", "*.example.com", "", "exa mple.com"] {
            assert!(AllowedDomain::parse(bad).is_err(), "case {bad:?}");
        }
    }

    #[test]
    fn allowed_domains_refuse_public_suffixes_ip_addresses_and_bad_ports() {
        let cases = [
            ("a bare top-level domain", "com"),
            ("a bare top-level domain with a dot", "com."),
            ("a country's second-level suffix", "co.uk"),
            ("a hosting suffix from the private section", "github.io"),
            ("a wildcard suffix", "anything.ck"),
            ("an unknown single label", "localhost"),
            ("an unknown top-level domain", "test"),
            ("a public suffix with a port", "com:8443"),
            ("an IPv4 address", "127.0.0.1"),
            ("an IPv4 address with a port", "192.168.1.10:8080"),
            ("a shorthand IPv4 address", "10.1"),
            ("a hexadecimal IPv4 address", "0x7f.1"),
            ("an IPv6 address", "[::1]"),
            ("a bare IPv6 address", "::1"),
            ("port zero", "example.com:0"),
            ("a port past 65535", "example.com:65536"),
            ("a signed port", "example.com:+80"),
            ("an empty port", "example.com:"),
            ("two ports", "example.com:80:81"),
            ("a path", "example.com/shop"),
        ];
        for (case, entry) in cases {
            let err = AllowedDomain::parse(entry).expect_err(case);
            assert_eq!(err.field, "allowed_domains", "case {case}");
            assert!(err.message.contains(entry.trim()), "case {case}: {err}");
        }
    }

    #[test]
    fn allowed_domains_accept_registrable_domains_subdomains_and_explicit_ports() {
        let cases = [
            ("a registrable domain", "example.com", "example.com", None),
            (
                "upper case and a trailing dot",
                "Example.COM.",
                "example.com",
                None,
            ),
            ("a subdomain", "shop.example.com", "shop.example.com", None),
            (
                "a domain under a second-level suffix",
                "acme.co.uk",
                "acme.co.uk",
                None,
            ),
            (
                "a site under a hosting suffix",
                "acme.github.io",
                "acme.github.io",
                None,
            ),
            (
                "a domain under an unknown suffix",
                "acme.test",
                "acme.test",
                None,
            ),
            (
                "a local development name",
                "shop.localhost",
                "shop.localhost",
                None,
            ),
            (
                "an explicit port",
                "example.com:8443",
                "example.com:8443",
                Some(8443),
            ),
            (
                "a leading zero in a port",
                "example.com:08443",
                "example.com:8443",
                Some(8443),
            ),
        ];
        for (case, entry, shown, port) in cases {
            let d = AllowedDomain::parse(entry).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(d.as_str(), shown, "case {case}");
            assert_eq!(d.port(), port, "case {case}");
            assert_eq!(String::from(d.clone()), shown, "case {case}");
        }
    }

    #[test]
    fn stored_entries_from_before_the_public_suffix_rule_still_load() {
        for (case, entry) in [
            ("a bare top-level domain", "com"),
            ("an IPv4 address", "127.0.0.1"),
        ] {
            assert!(AllowedDomain::parse(entry).is_err(), "case {case}");
            assert_eq!(
                AllowedDomain::from_stored(entry).unwrap().as_str(),
                entry,
                "case {case}"
            );
        }
        assert!(AllowedDomain::from_stored("https://example.com").is_err());
    }

    #[test]
    fn a_url_is_allowed_only_on_the_ports_its_entry_lists() {
        let mut s = settings();
        s.allowed_domains = vec![
            AllowedDomain::parse("acme.test").unwrap(),
            AllowedDomain::parse("shop.acme.test:8443").unwrap(),
        ];
        let cases = [
            ("https on the default port", "https://acme.test/", true),
            (
                "https with the default port written out",
                "https://acme.test:443/",
                true,
            ),
            ("http on the default port", "http://www.acme.test/", true),
            (
                "a subdomain on the default port",
                "https://shop.acme.test/x",
                true,
            ),
            (
                "the listed port on its domain",
                "https://shop.acme.test:8443/",
                true,
            ),
            (
                "the listed port on a subdomain of its domain",
                "https://a.shop.acme.test:8443/",
                true,
            ),
            ("an unlisted port", "https://acme.test:8080/", false),
            (
                "the listed port on another subdomain",
                "https://acme.test:8443/",
                false,
            ),
            ("another domain", "https://evil.test/", false),
            ("a look-alike suffix", "https://notacme.test/", false),
        ];
        for (case, url, allowed) in cases {
            let url = url::Url::parse(url).unwrap();
            assert_eq!(s.allows_url(&url), allowed, "case {case}");
        }
    }

    fn settings() -> ProgramSettings {
        ProgramSettings {
            name: "Acme".into(),
            currency: Currency::parse("EUR").unwrap(),
            allowed_domains: vec![AllowedDomain::parse("acme.test").unwrap()],
            default_model: ModelKind::LastTouch,
            window_days: 30,
            cookie_days: 90,
            hold_days: 30,
        }
    }

    #[test]
    fn program_settings_name_the_wrong_field() {
        assert!(settings().validate().is_ok());
        // The model is typed: a bad name is refused where it is parsed.
        assert_eq!(
            ProgramSettings::parse_default_model("magic")
                .unwrap_err()
                .field,
            "default_model"
        );
        let mut s = settings();
        s.window_days = 0;
        assert_eq!(s.validate().unwrap_err().field, "window_days");
        let mut s = settings();
        s.name = "  ".into();
        assert_eq!(s.validate().unwrap_err().field, "name");
    }

    #[test]
    fn program_names_refuse_control_and_bidi_characters() {
        for (case, name) in [
            ("nul", "Acme\u{0}"),
            ("newline", "Acme\nInc"),
            ("right-to-left override", "Acme\u{202e}cnI"),
            ("first strong isolate", "\u{2068}Acme"),
        ] {
            let mut s = settings();
            s.name = name.into();
            assert_eq!(s.validate().unwrap_err().field, "name", "case {case}");
        }
        let mut s = settings();
        s.name = "Café Ünïcode 商店".into();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn a_program_window_uses_the_same_bounds_as_a_what_if() {
        for (case, days, ok) in [
            ("one day", 1, true),
            (
                "ten years",
                i64::from(crate::attribution::MAX_WINDOW_DAYS),
                true,
            ),
            ("zero", 0, false),
            (
                "past ten years",
                i64::from(crate::attribution::MAX_WINDOW_DAYS) + 1,
                false,
            ),
            ("u32::MAX", i64::from(u32::MAX), false),
        ] {
            let mut s = settings();
            s.window_days = days;
            assert_eq!(s.validate().is_ok(), ok, "case {case}");
            let cfg = crate::attribution::ModelConfig::new(crate::attribution::ModelKind::Linear)
                .with_window_days(u32::try_from(days).unwrap());
            assert_eq!(
                cfg.validate().is_ok(),
                ok,
                "case {case} as a what-if window"
            );
        }
    }
}

/// A stored program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    pub id: crate::ids::ProgramId,
    #[serde(flatten)]
    pub settings: ProgramSettings,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
