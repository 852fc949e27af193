//! Disposable (throw-away) e-mail domains, for the `disposable_email` rule.
//!
//! The list is the maintained community blocklist compiled in from
//! `crates/core/data/disposable_email_domains.txt` (its source, licence and
//! date are in `crates/core/data/README.md`). A domain matches when it, or
//! any parent domain of it, is listed: `x.mailinator.com` is disposable
//! because `mailinator.com` is, since these services hand out whole
//! subdomains.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// The list as compiled in: one lower-case domain per line.
const LIST: &str = include_str!("../../data/disposable_email_domains.txt");

/// Built on first use (about 8,000 entries borrowed from [`LIST`], so no
/// string is copied).
static DOMAINS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    LIST.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Whether an e-mail address (or a bare domain) is at a disposable-address
/// service.
///
/// The domain is what follows the last `@` (the whole input if there is
/// none), compared case-insensitively and without a trailing dot; it
/// matches if it or any parent domain is on the list. An empty domain is
/// not disposable.
pub fn is_disposable(email_or_domain: &str) -> bool {
    let domain = email_or_domain
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches('.');
    if domain.is_empty() {
        return false;
    }
    // The list is ASCII; most input is already lower-case, so only copy
    // when it is not.
    let domain: Cow<'_, str> = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(domain.to_ascii_lowercase())
    } else {
        Cow::Borrowed(domain)
    };
    let domains = &*DOMAINS;
    let mut rest: &str = &domain;
    loop {
        if domains.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => rest = parent,
            _ => return false,
        }
    }
}

/// How many domains the compiled-in list holds.
pub fn list_len() -> usize {
    DOMAINS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(domain: &str) -> bool {
        LIST.lines().any(|line| line == domain)
    }

    #[test]
    fn well_known_services_are_on_the_list_and_disposable() {
        for d in ["mailinator.com", "guerrillamail.com"] {
            assert!(listed(d), "{d} should be a line of the data file");
            assert!(is_disposable(d), "{d}");
            assert!(is_disposable(&format!("someone@{d}")), "someone@{d}");
        }
    }

    #[test]
    fn ordinary_providers_are_not_disposable() {
        for input in [
            "gmail.com",
            "someone@gmail.com",
            "example.com",
            "a@example.com",
            "",
            "@",
            "nobody@",
            ".",
            "com",
        ] {
            assert!(!is_disposable(input), "{input:?}");
        }
    }

    #[test]
    fn a_subdomain_of_a_listed_domain_is_disposable() {
        assert!(is_disposable("x.mailinator.com"));
        assert!(is_disposable("someone@deep.x.mailinator.com"));
        // A domain that only ends with the same letters is not (and
        // `notmailinator.com` would be a bad example: it is listed).
        assert!(!listed("notguerrillamail.com"));
        assert!(!is_disposable("notguerrillamail.com"));
        assert!(!is_disposable("mailinator.com.example.org"));
    }

    #[test]
    fn matching_ignores_case_a_trailing_dot_and_the_local_part() {
        assert!(is_disposable("Someone@MAILINATOR.com"));
        assert!(is_disposable("someone@mailinator.com."));
        assert!(is_disposable(" someone@Mailinator.Com "));
        // Only the part after the last `@` counts.
        assert!(is_disposable("\"a@gmail.com\"@mailinator.com"));
        assert!(!is_disposable("mailinator.com@gmail.com"));
    }

    #[test]
    fn every_line_of_the_data_file_is_a_lower_case_domain() {
        for (i, line) in LIST.lines().enumerate() {
            let ok = !line.is_empty()
                && line.len() <= 253
                && line.contains('.')
                && !line.starts_with('.')
                && !line.ends_with('.')
                && !line.contains("..")
                && line.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            assert!(ok, "line {}: {line:?} is not a lower-case domain", i + 1);
        }
        assert_eq!(list_len(), LIST.lines().count(), "no duplicate lines");
        assert!(list_len() > 1_000, "the maintained list, not a handful");
    }

    #[test]
    fn no_entry_is_a_public_suffix() {
        // A listed public suffix (say `github.io`) would, through the
        // parent-domain match, make every site under it disposable.
        for line in LIST.lines() {
            let suffix = psl::suffix(line.as_bytes()).filter(|s| s.is_known());
            assert!(
                suffix.is_none_or(|s| s.as_bytes() != line.as_bytes()),
                "{line} is a public suffix"
            );
        }
    }
}
