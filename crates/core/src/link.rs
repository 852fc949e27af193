//! Tracked links: short codes, destinations, UTM parameters and the
//! redirect URL a click is sent to.

use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

use crate::ids::random_base62;
use crate::program::ProgramSettings;
use crate::FieldError;

/// Length of generated short codes: 62^8 ≈ 2·10^14, unguessable by scanning.
pub const GENERATED_CODE_LEN: usize = 8;

/// A link's short code, the `{code}` in `/r/{code}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShortCode(String);

impl ShortCode {
    /// A fresh random base62 code.
    pub fn generate() -> Self {
        Self(random_base62(GENERATED_CODE_LEN))
    }

    /// A custom code chosen by a person: 3 to 64 of `A-Z a-z 0-9 _ -`.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.len() < 3 || s.len() > 64 {
            return Err(FieldError::new("code", "must be 3 to 64 characters long"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(FieldError::new(
                "code",
                "may contain only letters, digits, `_` and `-`",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ShortCode {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<ShortCode> for String {
    fn from(c: ShortCode) -> String {
        c.0
    }
}

/// A destination URL: absolute http(s), on the program's allowed domains.
///
/// This is what keeps `/r/{code}` from being an open redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination(Url);

impl Destination {
    pub fn parse(s: &str, program: &ProgramSettings) -> Result<Self, FieldError> {
        let url = Url::parse(s.trim()).map_err(|e| {
            FieldError::new("destination", format!("`{s}` is not an absolute URL: {e}"))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(FieldError::new(
                "destination",
                "must be an http or https URL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldError::new("destination", "may not carry credentials"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| FieldError::new("destination", "must have a host"))?;
        if !program.allows_url(&url) {
            let at = match url.port() {
                None => host.to_owned(),
                Some(p) => format!("{host}:{p}"),
            };
            return Err(FieldError::new(
                "destination",
                format!("`{at}` is not on the program's allowed domains (list a port explicitly, e.g. example.com:8443)"),
            ));
        }
        Ok(Self(url))
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The UTM parameters a link appends to its destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub content: Option<String>,
}

impl Utm {
    /// The parameters generated for a partner's link, each overridable:
    /// `utm_source` = partner slug, `utm_medium` = the link's medium, else its
    /// source (`social`, `email`, …), else `partner`; campaign and content as given.
    pub fn generate(
        partner_slug: &str,
        source: Option<&str>,
        medium: Option<&str>,
        campaign: Option<&str>,
        content: Option<&str>,
    ) -> Self {
        Self {
            source: Some(partner_slug.to_owned()),
            medium: Some(medium.or(source).unwrap_or("partner").to_owned()),
            campaign: campaign.map(str::to_owned),
            content: content.map(str::to_owned),
        }
    }

    fn pairs(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("utm_source", self.source.as_deref()),
            ("utm_medium", self.medium.as_deref()),
            ("utm_campaign", self.campaign.as_deref()),
            ("utm_content", self.content.as_deref()),
        ]
    }
}

/// The query parameter carrying the click id to the destination.
pub const CLICK_ID_PARAM: &str = "tid";

/// Build the URL a click is redirected to.
///
/// Starts from the destination (its own query and fragment kept), appends the
/// visitor's query parameters, then each UTM parameter the destination does
/// not already set (a UTM the owner wrote into the destination wins), then
/// `tid` (when the click is credited). Parameters Tribute sets are never taken
/// from the visitor, so a visitor cannot forge a click id or a source.
pub fn redirect_url(
    destination: &Url,
    utm: &Utm,
    click_id: Option<&str>,
    visitor_query: Option<&str>,
) -> Url {
    let mut url = destination.clone();
    let existing: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let visitor: Vec<(String, String)> = visitor_query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k != CLICK_ID_PARAM && !k.starts_with("utm_"))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &visitor {
            q.append_pair(k, v);
        }
        for (k, v) in utm.pairs() {
            if let Some(v) = v {
                if !existing.iter().any(|e| e == k) {
                    q.append_pair(k, v);
                }
            }
        }
        if let Some(id) = click_id {
            q.append_pair(CLICK_ID_PARAM, id);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    url
}

/// [`redirect_url`] split for the hot path: the destination with its UTM
/// parameters, computed once per link, to which a click id is appended per
/// request. Equal to `redirect_url(destination, utm, Some(id), None)`.
pub fn with_click_id(base: &Url, click_id: &str) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut().append_pair(CLICK_ID_PARAM, click_id);
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn the_precomputed_base_gives_the_same_redirect() {
        let dest = Url::parse("https://acme.test/p?x=1#f").unwrap();
        let utm = Utm::generate("jane", Some("social"), None, None, None);
        let base = redirect_url(&dest, &utm, None, None);
        assert_eq!(
            with_click_id(&base, "clk_1"),
            redirect_url(&dest, &utm, Some("clk_1"), None)
        );
        let bare = Url::parse("https://acme.test/").unwrap();
        let base = redirect_url(&bare, &Utm::default(), None, None);
        assert_eq!(
            with_click_id(&base, "clk_1").as_str(),
            "https://acme.test/?tid=clk_1"
        );
    }
    use crate::program::AllowedDomain;

    fn program() -> ProgramSettings {
        ProgramSettings {
            name: "Acme".into(),
            currency: Currency::parse("USD").unwrap(),
            allowed_domains: vec![AllowedDomain::parse("acme.test").unwrap()],
            default_model: crate::attribution::ModelKind::LastTouch,
            window_days: 30,
            cookie_days: 90,
            hold_days: 30,
        }
    }

    #[test]
    fn generated_codes_are_long_random_base62() {
        let a = ShortCode::generate();
        let b = ShortCode::generate();
        assert_eq!(a.as_str().len(), GENERATED_CODE_LEN);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn custom_codes_refuse_slashes_and_short_values() {
        assert!(ShortCode::parse("spring-sale_1").is_ok());
        for bad in ["ab", "a/b/c", "héllo", "a b c"] {
            assert_eq!(
                ShortCode::parse(bad).unwrap_err().field,
                "code",
                "case {bad:?}"
            );
        }
    }

    #[test]
    fn destination_must_be_http_on_an_allowed_domain() {
        let p = program();
        assert!(Destination::parse("https://www.acme.test/pricing?x=1#top", &p).is_ok());
        for bad in [
            "https://evil.test/",
            "javascript:alert(1)",
            "ftp://acme.test/",
            "//acme.test/",
            "https://user:pw@acme.test/",
            "https://acme.test.evil.test/",
            "https://acme.test:8443/",
            "http://acme.test:8080/",
        ] {
            let err = Destination::parse(bad, &p).expect_err(bad);
            assert_eq!(err.field, "destination", "case {bad:?}");
        }
    }

    #[test]
    fn redirect_appends_utm_and_click_id_keeping_query_and_fragment() {
        let dest = Url::parse("https://acme.test/pricing?plan=pro#faq").unwrap();
        let utm = Utm::generate("jane", Some("social"), None, Some("spring"), None);
        let url = redirect_url(&dest, &utm, Some("clk_1"), Some("ref=tw"));
        assert_eq!(
            url.as_str(),
            "https://acme.test/pricing?plan=pro&ref=tw&utm_source=jane&utm_medium=social&utm_campaign=spring&tid=clk_1#faq"
        );
    }

    #[test]
    fn redirect_keeps_utm_the_destination_already_sets() {
        let dest = Url::parse("https://acme.test/?utm_source=newsletter").unwrap();
        let utm = Utm::generate("jane", None, None, None, None);
        let url = redirect_url(&dest, &utm, Some("clk_1"), None);
        assert_eq!(
            url.as_str(),
            "https://acme.test/?utm_source=newsletter&utm_medium=partner&tid=clk_1"
        );
    }

    #[test]
    fn redirect_ignores_click_ids_and_utm_forged_by_the_visitor() {
        let dest = Url::parse("https://acme.test/").unwrap();
        let utm = Utm::generate("jane", None, None, None, None);
        let url = redirect_url(
            &dest,
            &utm,
            Some("clk_real"),
            Some("tid=clk_fake&utm_source=x&a=1"),
        );
        assert_eq!(
            url.as_str(),
            "https://acme.test/?a=1&utm_source=jane&utm_medium=partner&tid=clk_real"
        );
    }
}

/// A stored tracked link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub id: crate::ids::LinkId,
    pub program_id: crate::ids::ProgramId,
    pub partner_id: crate::ids::PartnerId,
    pub code: ShortCode,
    /// The destination as validated when the link was written.
    pub destination: String,
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub content: Option<String>,
    pub utm: Utm,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Link {
    /// Whether the link has expired at `now` (an expired link answers 404).
    pub fn is_expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}
