//! Programs: the settings every partner, link and rule of a program shares.

use serde::{Deserialize, Serialize};

use crate::attribution::ModelKind;
use crate::money::Currency;
use crate::FieldError;

/// A host name a program's links may redirect to (and its subdomains).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedDomain(String);

impl AllowedDomain {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let err = || {
            FieldError::new(
                "allowed_domains",
                format!("`{s}` is not a domain name (e.g. example.com)"),
            )
        };
        if d.is_empty() || d.len() > 253 {
            return Err(err());
        }
        let labels_ok = d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !labels_ok {
            return Err(err());
        }
        Ok(Self(d))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `host` is this domain or one of its subdomains.
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        host.eq_ignore_ascii_case(&self.0)
            || (host.len() > self.0.len()
                && host.as_bytes()[host.len() - self.0.len() - 1] == b'.'
                && host[host.len() - self.0.len()..].eq_ignore_ascii_case(&self.0))
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
        d.0
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
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(FieldError::new("name", "must be 1 to 200 characters"));
        }
        for (field, v, max) in [
            ("window_days", self.window_days, 3650),
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

    /// Whether a destination host is on this program's allow-list.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allowed_domains.iter().any(|d| d.covers(host))
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
}

/// A stored program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    pub id: crate::ids::ProgramId,
    #[serde(flatten)]
    pub settings: ProgramSettings,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
