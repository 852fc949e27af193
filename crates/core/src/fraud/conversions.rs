//! The conversion rules and the risk score that decides whether a
//! conversion's commissions are held for review.
//!
//! The server gathers what it knows (the buyer's identifiers, the credited
//! partner's own, the program's distributions, whether the order or the
//! customer and amount were seen before) into plain facts, and
//! [`assess_conversion`] turns them into a [`Risk`]: each rule that fires
//! adds a [`Reason`] with its evidence and its weight from the program's
//! [`FraudConfig`], and the weights combine as independent chances
//! (noisy-or, see [`Risk::from_reasons`]).
//!
//! The evidence is written for the program's owner. It names which of the
//! buyer's identifiers matched the partner's, never their values, and it
//! carries the numbers behind each statistical signal ("conversion rate 41%
//! vs program median 3%, robust z 9.8"). Partners never see it: the reasons
//! would teach the fraud.
//!
//! The statistical signals compare a partner with the program itself
//! ([`stats`](super::stats)), so they need enough of it: five partners'
//! rates, [`MIN_CONVERSION_TIMES`] conversion times for the 1st percentile,
//! a week of the partner's click history. Below that they stay silent
//! rather than guess.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;

use super::disposable::is_disposable;
use super::stats::{self, Scale};
use super::{FraudConfig, Reason, Risk};

/// The rate outlier rules need at least this many partners' rates: below
/// it the median and MAD say nothing about "the program".
pub const MIN_PROGRAM_RATES: usize = 5;

/// [`click_to_conversion_p1`] needs at least this many conversion times:
/// with fewer, the 1st percentile is just the fastest one or two.
pub const MIN_CONVERSION_TIMES: usize = 100;

/// When every partner in the program has the same rate (no spread at all,
/// so no z-score), a rate is an outlier only if it exceeds that rate by
/// more than this (5 percentage points).
pub const RATE_MARGIN: f64 = 0.05;

/// What the server knows about the converting buyer and the credited
/// partner's click.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversionFacts<'a> {
    /// The conversion's value in minor units of the program's currency.
    pub value_minor: i64,
    pub order_id: Option<&'a str>,
    pub customer_key: Option<&'a str>,
    /// The raw e-mail if known (for the disposable-domain check, and for
    /// self-referral when no `email_hash` is given).
    pub email: Option<&'a str>,
    /// The hex SHA-256 of the normalised e-mail, as
    /// [`crate::partner::email_hash`] computes it.
    pub email_hash: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub ip_hash: Option<u64>,
    pub payment_fingerprint: Option<&'a str>,
    /// From the credited click to the conversion.
    pub click_to_conversion: Option<Duration>,
    /// The credited click carried a click rule's reason.
    pub credited_click_flagged: bool,
}

/// What the server knows about the credited partner.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartnerFacts<'a> {
    pub partner_id: &'a str,
    /// The hash of the partner's own e-mail (as [`crate::partner::email_hash`]).
    pub email_hash: Option<&'a str>,
    /// The partner's user id in the merchant's system, if they are also a
    /// customer there.
    pub user_id: Option<&'a str>,
    pub signup_ip_hash: Option<u64>,
    /// Payment fingerprints the partner is known to have used.
    pub payment_fingerprints: &'a [String],
    /// Other partner ids sharing a payout account, e-mail or sign-up IP
    /// with this one (see [`shared_accounts`]).
    pub shares_account_with: &'a [String],
    /// Conversions per click over the program's window; `None` without
    /// enough clicks to say.
    pub conversion_rate: Option<f64>,
    /// Refunded conversions per conversion; `None` without enough
    /// conversions to say.
    pub refund_rate: Option<f64>,
    /// Clicks per day before today, oldest first.
    pub daily_clicks: &'a [u64],
    pub clicks_today: u64,
}

/// The program's own distributions, which the statistical signals measure
/// a partner against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgramFacts {
    /// The 1st percentile of the program's click-to-conversion times
    /// (see [`click_to_conversion_p1`]).
    pub click_to_conversion_p1: Option<Duration>,
    /// One conversion rate per partner with enough data, in any order
    /// (ascending is cheapest: each assessment sorts a copy).
    pub conversion_rates: Vec<f64>,
    /// One refund rate per partner with enough data, in any order
    /// (ascending is cheapest).
    pub refund_rates: Vec<f64>,
}

/// What the store found about earlier conversions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// The same order id arrived from another source (another partner, an
    /// integration, a manual entry).
    pub same_order_other_source: bool,
    /// The same customer paid the same amount within
    /// [`FraudConfig::duplicate_conversion_hours`].
    pub same_customer_amount_within_window: bool,
}

/// The 1st percentile of the program's click-to-conversion times,
/// estimated robustly: `exp(m − 2.326·σ)` where `m` is the median and `σ`
/// the [robust σ](stats::robust_sigma) of the log-times (the 1st
/// percentile of a lognormal, the usual shape of time to purchase).
/// `None` with fewer than [`MIN_CONVERSION_TIMES`] positive times;
/// times of 0 or less (a conversion stamped before its click) are left
/// out of the fit.
///
/// Why not the plain empirical percentile ([`stats::percentile`])? The
/// times come from all of the program's conversions, fraud included,
/// since the server cannot tell which are fraud. Once instant conversions
/// are more than 1% of the program's, the empirical 1st percentile falls
/// among them and they look ordinary: the rule would stop working exactly
/// when a bot is busiest. The median and the quartiles of the log-times
/// ignore that share until it passes a quarter of all conversions.
///
/// The price is an assumption about shape. If the program's honest times
/// are not roughly lognormal (say, two clear modes), `σ` comes out wide
/// and the estimate low: the rule then fires less, not more.
pub fn click_to_conversion_p1(times: &[Duration]) -> Option<Duration> {
    let mut logs: Vec<f64> = times
        .iter()
        .filter(|d| *d > &Duration::zero())
        .map(|d| (d.num_milliseconds().max(1) as f64 / 1000.0).ln())
        .collect();
    if logs.len() < MIN_CONVERSION_TIMES {
        return None;
    }
    logs.sort_unstable_by(f64::total_cmp);
    let m = stats::percentile(&logs, 50.0)?;
    let sigma = stats::robust_sigma(&logs)?;
    let secs = (m - Z_AT_P1 * sigma).exp();
    Some(Duration::milliseconds((secs * 1000.0).round() as i64))
}

/// `−Φ⁻¹(0.01)`: the 1st percentile of a normal lies 2.326 σ below its
/// mean.
const Z_AT_P1: f64 = 2.326_348;

/// Score a conversion: every conversion rule of [`super::config::RULES`]
/// that fires and has a weight above 0 adds a reason; the reasons combine
/// into the score. With fraud checks off (`config.enabled` false) nothing
/// fires and the score is 0.
///
/// Cost: the rate outliers take the median of the program's rates on each
/// call (`O(n log n)` in the number of partners with data), the rest is
/// constant.
pub fn assess_conversion(
    c: &ConversionFacts,
    p: &PartnerFacts,
    program: &ProgramFacts,
    dup: &Duplicates,
    config: &FraudConfig,
) -> Risk {
    if !config.enabled {
        return Risk::default();
    }
    let input = Input {
        c,
        p,
        program,
        dup,
        config,
    };
    let reasons = CHECKS
        .iter()
        .filter_map(|(rule, check)| {
            let contribution = config.weight(rule);
            if contribution == 0 {
                return None;
            }
            check(&input).map(|evidence| Reason {
                rule: (*rule).to_owned(),
                evidence,
                contribution,
            })
        })
        .collect();
    Risk::from_reasons(reasons)
}

/// What [`shared_accounts`] compares: `(partner id, payout account,
/// e-mail hash, sign-up IP hash)`.
pub type PartnerAccount = (String, Option<String>, Option<String>, Option<u64>);

/// For each partner that shares a payout account, an e-mail hash or a
/// sign-up IP hash with another, the other partners' ids (sorted, without
/// itself). Partners that share nothing are left out of the map. Only
/// direct sharing counts: if A shares an account with B and B an IP with
/// C, A's list holds B, not C.
///
/// Empty strings are not identifiers and match nothing; e-mail hashes
/// compare case-insensitively (hex). A value many partners share (an
/// office or university IP) makes each of them list all the others.
pub fn shared_accounts(partners: &[PartnerAccount]) -> BTreeMap<String, Vec<String>> {
    // Each identifier, tagged by kind so a payout account never matches an
    // e-mail hash that happens to be spelt the same.
    let mut groups: BTreeMap<(u8, String), BTreeSet<&str>> = BTreeMap::new();
    for (id, payout, email, ip) in partners {
        let keys = [
            payout
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| (0, s.to_owned())),
            email
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| (1, s.to_ascii_lowercase())),
            ip.map(|ip| (2, ip.to_string())),
        ];
        for key in keys.into_iter().flatten() {
            groups.entry(key).or_default().insert(id);
        }
    }
    let mut shared: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        for &id in members {
            let others = shared.entry(id.to_owned()).or_default();
            others.extend(members.iter().copied().filter(|&o| o != id));
        }
    }
    shared
        .into_iter()
        .filter(|(_, others)| !others.is_empty())
        .map(|(id, others)| (id, others.into_iter().map(str::to_owned).collect()))
        .collect()
}

/// Everything a check may look at.
struct Input<'x, 'a> {
    c: &'x ConversionFacts<'a>,
    p: &'x PartnerFacts<'a>,
    program: &'x ProgramFacts,
    dup: &'x Duplicates,
    config: &'x FraudConfig,
}

/// A rule's check: its evidence when it fires.
type Check = fn(&Input) -> Option<String>;

/// Every conversion rule, by its name in [`super::config::RULES`].
const CHECKS: &[(&str, Check)] = &[
    ("self_referral", self_referral),
    ("disposable_email", disposable_email),
    ("duplicate_order", duplicate_order),
    ("duplicate_customer_amount", duplicate_customer_amount),
    ("above_amount", above_amount),
    ("shared_account", shared_account),
    ("suspicious_click", suspicious_click),
    ("fast_conversion", fast_conversion),
    ("conversion_rate_outlier", conversion_rate_outlier),
    ("refund_rate_outlier", refund_rate_outlier),
    ("click_volume_jump", click_volume_jump),
];

fn present(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn self_referral(i: &Input) -> Option<String> {
    let (c, p) = (i.c, i.p);
    let mut matched = Vec::new();
    if let Some(own) = present(p.email_hash) {
        // The hash the client sent, else the raw e-mail's (hashing is the
        // costliest step here, so only when needed).
        let same = match present(c.email_hash) {
            Some(h) => h.eq_ignore_ascii_case(own),
            None => present(c.email)
                .is_some_and(|e| crate::partner::email_hash(e).eq_ignore_ascii_case(own)),
        };
        if same {
            matched.push("e-mail");
        }
    }
    if let (Some(buyer), Some(own)) = (present(c.user_id), present(p.user_id)) {
        if buyer == own {
            matched.push("user id");
        }
    }
    if c.ip_hash.is_some() && c.ip_hash == p.signup_ip_hash {
        matched.push("IP address (the partner's sign-up IP)");
    }
    if let Some(buyer) = present(c.payment_fingerprint) {
        if p.payment_fingerprints.iter().any(|f| f.trim() == buyer) {
            matched.push("payment fingerprint");
        }
    }
    (!matched.is_empty()).then(|| {
        format!(
            "the buyer's {} {} the partner's own",
            join_and(&matched),
            if matched.len() == 1 { "is" } else { "are" }
        )
    })
}

fn disposable_email(i: &Input) -> Option<String> {
    let email = present(i.c.email)?;
    let domain = email.rsplit('@').next().unwrap_or_default().trim();
    is_disposable(email).then(|| {
        format!(
            "the buyer's e-mail is at {}, a disposable-address service",
            domain.to_ascii_lowercase()
        )
    })
}

fn duplicate_order(i: &Input) -> Option<String> {
    i.dup
        .same_order_other_source
        .then(|| match present(i.c.order_id) {
            Some(id) => format!(
                "order {} was also reported from another source",
                clip(id, 64)
            ),
            None => "the same order was also reported from another source".to_owned(),
        })
}

fn duplicate_customer_amount(i: &Input) -> Option<String> {
    i.dup.same_customer_amount_within_window.then(|| {
        format!(
            "the same customer paid the same amount ({} minor units) within {} hours",
            i.c.value_minor, i.config.duplicate_conversion_hours
        )
    })
}

fn above_amount(i: &Input) -> Option<String> {
    let limit = i.config.review_above_amount?;
    (i.c.value_minor > limit).then(|| {
        format!(
            "value {} is above the program's review amount {} (minor units)",
            i.c.value_minor, limit
        )
    })
}

fn shared_account(i: &Input) -> Option<String> {
    let others = i.p.shares_account_with;
    if others.is_empty() {
        return None;
    }
    const SHOWN: usize = 10;
    let mut list = others
        .iter()
        .take(SHOWN)
        .map(|s| clip(s, 64))
        .collect::<Vec<_>>()
        .join(", ");
    if others.len() > SHOWN {
        list.push_str(&format!(" and {} more", others.len() - SHOWN));
    }
    Some(format!(
        "the partner shares a payout account, e-mail or sign-up IP with {}: {list}",
        plural(others.len(), "other partner", "other partners")
    ))
}

fn suspicious_click(i: &Input) -> Option<String> {
    i.c.credited_click_flagged
        .then(|| "the credited click was flagged (see the click's reasons)".to_owned())
}

fn fast_conversion(i: &Input) -> Option<String> {
    let took = i.c.click_to_conversion?;
    let p1 = i.program.click_to_conversion_p1?;
    (took < p1).then(|| {
        let when = if took < Duration::zero() {
            format!("{} before the credited click", human(-took))
        } else {
            format!("{} after the credited click", human(took))
        };
        format!(
            "converted {when}; 99% of the program's conversions take at least {}",
            human(p1)
        )
    })
}

fn conversion_rate_outlier(i: &Input) -> Option<String> {
    rate_outlier(
        "conversion rate",
        i.p.conversion_rate?,
        &i.program.conversion_rates,
        i.config.outlier_z,
    )
}

fn refund_rate_outlier(i: &Input) -> Option<String> {
    rate_outlier(
        "refund rate",
        i.p.refund_rate?,
        &i.program.refund_rates,
        i.config.outlier_z,
    )
}

/// A partner's rate far above the program's (high side only: a low
/// conversion or refund rate is not fraud).
fn rate_outlier(what: &str, rate: f64, program: &[f64], limit: f64) -> Option<String> {
    if !rate.is_finite() {
        return None;
    }
    let finite;
    let rates = if program.iter().all(|r| r.is_finite()) {
        program
    } else {
        finite = program
            .iter()
            .copied()
            .filter(|r| r.is_finite())
            .collect::<Vec<_>>();
        &finite
    };
    if rates.len() < MIN_PROGRAM_RATES {
        return None;
    }
    let s = stats::standing(rate, rates, RATE_MARGIN)?;
    if s.z < limit {
        return None;
    }
    let (rate, median) = (pct(rate), pct(s.median));
    let n = rates.len();
    Some(match s.scale {
        Scale::Robust => format!(
            "{what} {rate} vs program median {median}, robust z {:.1} ({n} partners)",
            s.z
        ),
        Scale::MeanAbsDev => format!(
            "{what} {rate} vs program median {median}, z {:.1} on the mean absolute \
             deviation (over three quarters of the {n} partners share one rate)",
            s.z
        ),
        Scale::Margin => format!(
            "{what} {rate}, while all {n} partners with enough data have {median} \
             (more than {} points above)",
            pct(RATE_MARGIN).trim_end_matches('%')
        ),
    })
}

fn click_volume_jump(i: &Input) -> Option<String> {
    let p = i.p;
    let z = stats::volume_jump(p.daily_clicks, p.clicks_today)?;
    if z < i.config.outlier_z {
        return None;
    }
    let median = stats::median_daily(p.daily_clicks)?;
    Some(format!(
        "{} today vs a median of {} a day over the previous {} days, {z:.1} robust sd above",
        plural(p.clicks_today as usize, "click", "clicks"),
        trim_number(&format!("{median:.1}")),
        p.daily_clicks.len()
    ))
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// At most `max` characters of a caller's text.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// "41%", "3.1%", "0.4%": a rate in percent with at most one decimal.
fn pct(rate: f64) -> String {
    format!("{}%", trim_number(&format!("{:.1}", rate * 100.0)))
}

fn trim_number(s: &str) -> String {
    s.strip_suffix(".0").unwrap_or(s).to_owned()
}

/// "0.8 s", "3 min 20 s", "1 min", "2 h 5 min", "3 d 4 h".
fn human(d: Duration) -> String {
    let ms = d.num_milliseconds();
    let s = d.num_seconds();
    let (big, small) = if ms < 60_000 {
        return format!("{} s", trim_number(&format!("{:.1}", ms as f64 / 1000.0)));
    } else if s < 3_600 {
        ((s / 60, "min"), (s % 60, "s"))
    } else if s < 86_400 {
        ((s / 3_600, "h"), (s % 3_600 / 60, "min"))
    } else {
        ((s / 86_400, "d"), (s % 86_400 / 3_600, "h"))
    };
    if small.0 == 0 {
        format!("{} {}", big.0, big.1)
    } else {
        format!("{} {} {} {}", big.0, big.1, small.0, small.1)
    }
}

#[cfg(test)]
#[path = "conversions_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "planted_tests.rs"]
mod planted;

#[cfg(test)]
#[path = "evaluation_tests.rs"]
mod evaluation;
