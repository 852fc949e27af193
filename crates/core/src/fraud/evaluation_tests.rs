//! The evaluation behind docs/fraud.md: a generated program with known
//! fraudsters of five kinds among honest partners, every conversion of one
//! week scored by [`assess_conversion`] with the default settings, and the
//! precision and recall of "held" (score ≥ the review threshold) per kind
//! and overall. `cargo test -p tribute-core fraud -- --nocapture` prints
//! the tables.
//!
//! The generator's assumptions sit next to each number below (summarised
//! in docs/fraud.md): the figures measure the rules against them only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::planted::normal;
use super::*;
use crate::partner::email_hash;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Honest,
    /// Buys through their own link for the commission.
    SelfReferrer,
    /// Signs up fake customers with throw-away addresses.
    DisposableFarm,
    /// Claims credit for sales they did not cause (cookie stuffing): real
    /// buyers, an implausibly high conversion rate.
    RateOutlier,
    /// Scripts that convert seconds after the click.
    FastBot,
    /// Purchases that are refunded (stolen cards, buy-and-return).
    RefundAbuser,
}

const FRAUD_KINDS: [Kind; 5] = [
    Kind::SelfReferrer,
    Kind::DisposableFarm,
    Kind::RateOutlier,
    Kind::FastBot,
    Kind::RefundAbuser,
];

const HONEST_PARTNERS: usize = 200;
const PARTNERS_PER_KIND: usize = 8;
/// 28 days of history, then the 7 days whose conversions are scored.
const HISTORY_DAYS: usize = 28;
const EVAL_DAYS: usize = 7;

const DISPOSABLE: [&str; 5] = [
    "mailinator.com",
    "yopmail.com",
    "guerrillamail.com",
    "10minutemail.com",
    "trashmail.com",
];
const ORDINARY: [&str; 4] = ["gmail.com", "outlook.com", "yahoo.com", "proton.me"];

struct Partner {
    id: String,
    kind: Kind,
    email_hash: String,
    user_id: String,
    signup_ip: u64,
    fingerprints: Vec<String>,
    shares: Vec<String>,
    /// Clicks per day over history and the scored week.
    clicks: Vec<u64>,
    true_conversion_rate: f64,
    true_refund_rate: f64,
    conversion_rate: Option<f64>,
    refund_rate: Option<f64>,
}

struct Conversion {
    partner: usize,
    day: usize,
    label: Kind,
    email: String,
    user_id: String,
    ip: u64,
    fingerprint: String,
    click_to_conversion: Duration,
    flagged: bool,
    value: i64,
    same_customer_amount: bool,
}

impl Partner {
    /// The kind of the partner's everyday conversions: a self-referrer's
    /// are their real customers'.
    fn usual(&self) -> Kind {
        match self.kind {
            Kind::SelfReferrer => Kind::Honest,
            k => k,
        }
    }
}

fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    (median.ln() + sigma * normal(rng)).exp()
}

fn secs(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0) as i64)
}

/// A count with mean `m`: Poisson-like noise (normal approximation).
fn count(rng: &mut StdRng, m: f64) -> u64 {
    (m + m.max(0.0).sqrt() * normal(rng)).round().max(0.0) as u64
}

/// A fresh address, at a throw-away service with chance `disposable`.
fn email(rng: &mut StdRng, disposable: f64) -> String {
    let domains: &[&str] = if rng.gen_bool(disposable) {
        &DISPOSABLE
    } else {
        &ORDINARY
    };
    let domain = domains.choose(rng).unwrap();
    format!("u{}@{domain}", rng.gen::<u32>())
}

fn partners(rng: &mut StdRng) -> Vec<Partner> {
    let mut kinds = vec![Kind::Honest; HONEST_PARTNERS];
    for k in FRAUD_KINDS {
        kinds.extend([k; PARTNERS_PER_KIND]);
    }
    let mut out: Vec<Partner> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let honest_rate = (0.03 + 0.01 * normal(rng)).max(0.003);
            let honest_refunds = (0.05 + 0.025 * normal(rng)).max(0.0);
            // Clicks a day (median); fake traffic is smaller than real.
            let (median_clicks, conv, refunds) = match kind {
                Kind::Honest | Kind::SelfReferrer => (60.0, honest_rate, honest_refunds),
                Kind::DisposableFarm => (15.0, rng.gen_range(0.15..0.40), honest_refunds),
                Kind::RateOutlier => (15.0, rng.gen_range(0.20..0.40), honest_refunds),
                Kind::FastBot => (10.0, rng.gen_range(0.10..0.30), honest_refunds),
                Kind::RefundAbuser => (40.0, honest_rate, rng.gen_range(0.35..0.70)),
            };
            let level = lognormal(rng, median_clicks, 0.9);
            let clicks = (0..HISTORY_DAYS + EVAL_DAYS)
                .map(|d| {
                    // Everyone has an occasional good day (a newsletter,
                    // a post that travels): 3% of days, 2–6 times the usual.
                    let mut m = level * (1.0 + 0.15 * normal(rng)).max(0.1);
                    if rng.gen_bool(0.03) {
                        m *= rng.gen_range(2.0..6.0);
                    }
                    // Fake traffic ramps up: on 30% of the scored days
                    // it is 3–8 times its usual.
                    let fake = matches!(
                        kind,
                        Kind::DisposableFarm | Kind::RateOutlier | Kind::FastBot
                    );
                    if fake && d >= HISTORY_DAYS && rng.gen_bool(0.3) {
                        m *= rng.gen_range(3.0..8.0);
                    }
                    count(rng, m)
                })
                .collect();
            Partner {
                id: format!("p{i:03}"),
                kind,
                email_hash: email_hash(&format!("partner{i}@example.com")),
                user_id: format!("user_partner_{i}"),
                signup_ip: rng.gen(),
                fingerprints: vec![format!("fp_partner_{i}")],
                shares: vec![],
                clicks,
                true_conversion_rate: conv,
                true_refund_rate: refunds,
                conversion_rate: None,
                refund_rate: None,
            }
        })
        .collect();
    // Shared accounts: one person runs five of the farms (one payout
    // account), and two pairs of honest partners share a sign-up IP (a
    // household, an office).
    let farms: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].kind == Kind::DisposableFarm)
        .take(5)
        .collect();
    let mut accounts: Vec<PartnerAccount> = out
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                Some(format!("acct_{}", p.id)),
                None,
                Some(p.signup_ip),
            )
        })
        .collect();
    for &f in &farms {
        accounts[f].1 = Some("acct_farmer".into());
    }
    for (a, b) in [(10, 11), (20, 21)] {
        accounts[b].3 = accounts[a].3;
    }
    let shared = shared_accounts(&accounts);
    for p in &mut out {
        p.shares = shared.get(&p.id).cloned().unwrap_or_default();
    }
    out
}

/// The time from click to conversion for each kind of conversion.
fn click_to_conversion(rng: &mut StdRng, label: Kind) -> Duration {
    match label {
        // Honest buyers: median 2 hours, widely spread (σ = 1.5 in log
        // space); the true 1st percentile is about 220 s.
        Kind::Honest => secs(lognormal(rng, 7_200.0, 1.5)),
        // They know what they want: median 10 minutes.
        Kind::SelfReferrer => secs(lognormal(rng, 600.0, 1.2)),
        // 40% scripted (1–8 s), the rest filled in by hand (median 90 s).
        Kind::DisposableFarm if rng.gen_bool(0.4) => secs(rng.gen_range(1.0..8.0)),
        Kind::DisposableFarm => secs(lognormal(rng, 90.0, 0.6)),
        // The stuffed cookie was set long before the purchase: median a day.
        Kind::RateOutlier => secs(lognormal(rng, 86_400.0, 1.2)),
        // 95% within 0.3–6 s; the rest mimic people.
        Kind::FastBot if rng.gen_bool(0.95) => secs(rng.gen_range(0.3..6.0)),
        Kind::FastBot => secs(lognormal(rng, 7_200.0, 1.5)),
        Kind::RefundAbuser => secs(lognormal(rng, 1_800.0, 1.2)),
    }
}

fn conversion(
    rng: &mut StdRng,
    partners: &[Partner],
    i: usize,
    day: usize,
    label: Kind,
) -> Conversion {
    let p = &partners[i];
    let mut c = Conversion {
        partner: i,
        day,
        label,
        // 1.5% of honest buyers use a throw-away address.
        email: email(rng, 0.015),
        user_id: format!("user_{}", rng.gen::<u64>()),
        ip: rng.gen(),
        fingerprint: format!("fp_{}", rng.gen::<u64>()),
        click_to_conversion: click_to_conversion(rng, label),
        // 2% of honest conversions come from a click a click rule flagged
        // wrongly.
        flagged: rng.gen_bool(0.02),
        value: lognormal(rng, 5_000.0, 0.8) as i64,
        // 0.5% of honest buyers buy the same again the same day.
        same_customer_amount: rng.gen_bool(0.005),
    };
    match label {
        Kind::Honest => {}
        Kind::SelfReferrer => {
            // Each of their own identifiers shows independently; 8% of
            // the purchases show none (new address, VPN, another card).
            if rng.gen_bool(0.4) {
                c.email = format!("partner{i}@example.com");
            }
            if rng.gen_bool(0.3) {
                c.user_id = p.user_id.clone();
            }
            if rng.gen_bool(0.5) {
                c.ip = p.signup_ip;
            }
            if rng.gen_bool(0.6) {
                c.fingerprint = p.fingerprints[0].clone();
            }
        }
        Kind::DisposableFarm => {
            c.email = email(rng, 0.85);
            if rng.gen_bool(0.15) {
                c.ip = p.signup_ip;
            }
            c.flagged = rng.gen_bool(0.10);
            c.value = 900;
        }
        Kind::RateOutlier => c.flagged = rng.gen_bool(0.40),
        Kind::FastBot => {
            c.email = email(rng, 0.30);
            c.flagged = rng.gen_bool(0.35);
        }
        Kind::RefundAbuser => {
            if rng.gen_bool(0.10) {
                c.fingerprint = p.fingerprints[0].clone();
            }
            c.same_customer_amount = rng.gen_bool(0.25);
            c.flagged = rng.gen_bool(0.05);
            c.value = lognormal(rng, 15_000.0, 0.8) as i64;
        }
    }
    c
}

/// The program: partners, their measured rates, the 1st percentile of
/// click-to-conversion times, and the scored week's conversions.
struct Program {
    partners: Vec<Partner>,
    facts: ProgramFacts,
    empirical_p1: Duration,
    week: Vec<Conversion>,
}

fn generate(seed: u64) -> Program {
    let rng = &mut StdRng::seed_from_u64(seed);
    let mut partners = partners(rng);
    // History: rates are measured over 28 days (fraud included, as the
    // server would), and each conversion contributes its time.
    let mut times = Vec::new();
    for p in &mut partners {
        let clicks: u64 = p.clicks[..HISTORY_DAYS].iter().sum();
        let conversions = count(rng, clicks as f64 * p.true_conversion_rate);
        let refunds = count(rng, conversions as f64 * p.true_refund_rate).min(conversions);
        times.extend((0..conversions).map(|_| click_to_conversion(rng, p.usual())));
        // "Enough data": 300 clicks for a conversion rate, 20 conversions
        // for a refund rate.
        p.conversion_rate = (clicks >= 300).then(|| conversions as f64 / clicks as f64);
        p.refund_rate = (conversions >= 20).then(|| refunds as f64 / conversions as f64);
    }
    let mut ms: Vec<f64> = times.iter().map(|d| d.num_milliseconds() as f64).collect();
    ms.sort_by(f64::total_cmp);
    let empirical_p1 = Duration::milliseconds(stats::percentile(&ms, 1.0).unwrap() as i64);
    // Sorted once, as a server would cache them: each assessment's sort
    // of its copy is then linear.
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let facts = ProgramFacts {
        click_to_conversion_p1: click_to_conversion_p1(&times),
        conversion_rates: sorted(partners.iter().filter_map(|p| p.conversion_rate).collect()),
        refund_rates: sorted(partners.iter().filter_map(|p| p.refund_rate).collect()),
    };
    // The scored week: conversions follow each day's clicks; self-referrers
    // add 2–5 purchases of their own to their real customers' over the week.
    let mut week = Vec::new();
    for i in 0..partners.len() {
        for day in HISTORY_DAYS..HISTORY_DAYS + EVAL_DAYS {
            let p = &partners[i];
            let n = count(rng, p.clicks[day] as f64 * p.true_conversion_rate);
            let label = p.usual();
            for _ in 0..n {
                week.push(conversion(rng, &partners, i, day, label));
            }
        }
        if partners[i].kind == Kind::SelfReferrer {
            for _ in 0..rng.gen_range(2..=5) {
                let day = rng.gen_range(HISTORY_DAYS..HISTORY_DAYS + EVAL_DAYS);
                week.push(conversion(rng, &partners, i, day, Kind::SelfReferrer));
            }
        }
    }
    Program {
        partners,
        facts,
        empirical_p1,
        week,
    }
}

/// The scores of the week's conversions under `config`.
fn score(program: &Program, config: &FraudConfig) -> Vec<Risk> {
    program
        .week
        .iter()
        .map(|c| {
            let p = &program.partners[c.partner];
            let hash = email_hash(&c.email);
            let facts = ConversionFacts {
                value_minor: c.value,
                order_id: None,
                customer_key: None,
                email: Some(&c.email),
                email_hash: Some(&hash),
                user_id: Some(&c.user_id),
                ip_hash: Some(c.ip),
                payment_fingerprint: Some(&c.fingerprint),
                click_to_conversion: Some(c.click_to_conversion),
                credited_click_flagged: c.flagged,
            };
            let partner = PartnerFacts {
                partner_id: &p.id,
                email_hash: Some(&p.email_hash),
                user_id: Some(&p.user_id),
                signup_ip_hash: Some(p.signup_ip),
                payment_fingerprints: &p.fingerprints,
                shares_account_with: &p.shares,
                conversion_rate: p.conversion_rate,
                refund_rate: p.refund_rate,
                daily_clicks: &p.clicks[c.day - HISTORY_DAYS..c.day],
                clicks_today: p.clicks[c.day],
            };
            let dup = Duplicates {
                same_order_other_source: false,
                same_customer_amount_within_window: c.same_customer_amount,
            };
            assess_conversion(&facts, &partner, &program.facts, &dup, config)
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    conversions: usize,
    held: usize,
    partners: usize,
    partners_held: usize,
}

struct Measured {
    by_kind: BTreeMap<Kind, Tally>,
    /// Conversions of each kind on which each rule fired.
    fired: BTreeMap<(Kind, String), usize>,
    /// Honest conversions held (false positives).
    false_held: usize,
}

impl Measured {
    fn recall(&self, k: Kind) -> f64 {
        let t = self.by_kind[&k];
        t.held as f64 / t.conversions as f64
    }

    /// Precision were `k` the program's only fraud: its held conversions
    /// against all honest ones held.
    fn precision(&self, k: Kind) -> f64 {
        let t = self.by_kind[&k];
        t.held as f64 / (t.held + self.false_held) as f64
    }

    /// The mean of the kinds' recalls: what the mix of kinds does not sway.
    fn macro_recall(&self) -> f64 {
        FRAUD_KINDS.iter().map(|&k| self.recall(k)).sum::<f64>() / FRAUD_KINDS.len() as f64
    }

    /// Fraudulent partners caught, out of all of them.
    fn partners_caught(&self) -> (usize, usize) {
        FRAUD_KINDS.iter().fold((0, 0), |(c, n), k| {
            let t = self.by_kind[k];
            (c + t.partners_held, n + t.partners)
        })
    }

    /// The share of `k`'s conversions on which `rule` fired.
    fn fired(&self, k: Kind, rule: &str) -> f64 {
        let n = self.fired.get(&(k, rule.to_owned())).copied().unwrap_or(0);
        n as f64 / self.by_kind[&k].conversions as f64
    }

    fn overall(&self) -> (f64, f64) {
        let fraud = FRAUD_KINDS.iter().map(|k| self.by_kind[k]);
        let (held, total) = fraud.fold((0, 0), |(h, n), t| (h + t.held, n + t.conversions));
        let precision = held as f64 / (held + self.false_held) as f64;
        (precision, held as f64 / total as f64)
    }
}

fn measure(program: &Program, risks: &[Risk], threshold: u8) -> Measured {
    let mut by_kind: BTreeMap<Kind, Tally> = BTreeMap::new();
    let mut partner_held = vec![false; program.partners.len()];
    let mut fired: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    for (c, r) in program.week.iter().zip(risks) {
        for reason in &r.reasons {
            *fired.entry((c.label, reason.rule.clone())).or_default() += 1;
        }
        let held = r.score >= threshold;
        let t = by_kind.entry(c.label).or_default();
        t.conversions += 1;
        t.held += usize::from(held);
        // A partner is caught when one of their fraudulent conversions is
        // held (a self-referrer's real customers do not count).
        partner_held[c.partner] |= held && c.label == program.partners[c.partner].kind;
    }
    for (p, held) in program.partners.iter().zip(partner_held) {
        let t = by_kind.entry(p.kind).or_default();
        t.partners += 1;
        t.partners_held += usize::from(held);
    }
    Measured {
        false_held: by_kind[&Kind::Honest].held,
        by_kind,
        fired,
    }
}

fn table(m: &Measured) -> String {
    let mut out = String::new();
    out.push_str("| kind | conversions | held | recall | precision¹ | partners caught² |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for k in FRAUD_KINDS {
        let t = m.by_kind[&k];
        let _ = writeln!(
            out,
            "| {k:?} | {} | {} | {:.2} | {:.2} | {}/{} |",
            t.conversions,
            t.held,
            m.recall(k),
            m.precision(k),
            t.partners_held,
            t.partners
        );
    }
    let h = m.by_kind[&Kind::Honest];
    let (precision, recall) = m.overall();
    let fraud: usize = FRAUD_KINDS.iter().map(|k| m.by_kind[k].conversions).sum();
    let held: usize = FRAUD_KINDS.iter().map(|k| m.by_kind[k].held).sum();
    let (caught, of) = m.partners_caught();
    let _ = writeln!(
        out,
        "| **all fraud** | {fraud} | {held} | **{recall:.2}** (mean of kinds {:.2}) | \
         **{precision:.2}** | {caught}/{of} |",
        m.macro_recall()
    );
    let _ = writeln!(
        out,
        "| Honest (false positives) | {} | {} | rate {:.4} | | {}/{} |",
        h.conversions,
        h.held,
        h.held as f64 / h.conversions as f64,
        h.partners_held,
        h.partners
    );
    out
}

/// How often each rule fired on honest and on fraudulent conversions.
fn firing(m: &Measured) -> String {
    let mut out = String::from("| rule | weight | fires on honest | fires on fraud |\n");
    out.push_str("|---|---:|---:|---:|\n");
    let fraud: usize = FRAUD_KINDS.iter().map(|k| m.by_kind[k].conversions).sum();
    for (rule, _) in CHECKS {
        let on_fraud: usize = FRAUD_KINDS
            .iter()
            .filter_map(|&k| m.fired.get(&(k, (*rule).to_owned())))
            .sum();
        let _ = writeln!(
            out,
            "| {rule} | {} | {:.1}% | {:.1}% |",
            FraudConfig::default().weight(rule),
            100.0 * m.fired(Kind::Honest, rule),
            100.0 * on_fraud as f64 / fraud as f64
        );
    }
    out
}

/// Other weights to compare with the defaults (printed, not asserted).
const WHAT_IF: &[(&str, &[(&str, u8)])] = &[(
    "the rate outliers weigh 45 and fast_conversion 50",
    &[
        ("conversion_rate_outlier", 45),
        ("refund_rate_outlier", 45),
        ("fast_conversion", 50),
    ],
)];

/// The honest conversions held, counted by their set of rules.
fn honest_held(program: &Program, risks: &[Risk], threshold: u8) -> Vec<(String, usize)> {
    let mut combos: BTreeMap<String, usize> = BTreeMap::new();
    for (c, r) in program.week.iter().zip(risks) {
        if c.label == Kind::Honest && r.score >= threshold {
            let mut rules: Vec<&str> = r.reasons.iter().map(|x| x.rule.as_str()).collect();
            rules.sort_unstable();
            *combos.entry(rules.join(" + ")).or_default() += 1;
        }
    }
    let mut out: Vec<(String, usize)> = combos.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[test]
fn held_conversions_on_a_generated_program_with_known_fraudsters() {
    let program = generate(2026);
    let config = FraudConfig::default();
    let risks = score(&program, &config);
    let m = measure(&program, &risks, config.review_threshold);

    println!(
        "\nHeld at score ≥ {} (default settings), one scored week:\n\n{}",
        config.review_threshold,
        table(&m)
    );
    println!(
        "¹ were this the only kind of fraud: its held / (its held + honest held)\n\
         ² partners with at least one fraudulent conversion held in the week\n"
    );
    println!("{}", firing(&m));
    println!(
        "click-to-conversion 1st percentile: robust estimate {} s, empirical {} s\n",
        program.facts.click_to_conversion_p1.unwrap().num_seconds(),
        program.empirical_p1.num_seconds()
    );
    println!("Honest conversions held, by their reasons:\n");
    for (combo, n) in honest_held(&program, &risks, config.review_threshold) {
        println!("- {n} × {combo}");
    }
    for (name, weights) in WHAT_IF {
        let mut alt = FraudConfig::default();
        for (rule, w) in *weights {
            alt.weights.insert((*rule).into(), *w);
        }
        let alt_risks = score(&program, &alt);
        let alt_m = measure(&program, &alt_risks, alt.review_threshold);
        println!("\nWhat if {name}:\n\n{}", table(&alt_m));
        for (combo, n) in honest_held(&program, &alt_risks, alt.review_threshold) {
            println!("- {n} × {combo}");
        }
    }
    println!("\n| review threshold | precision | recall | honest held |\n|---:|---:|---:|---:|");
    for threshold in [30, 40, 50, 60, 70, 80, 90] {
        let m = measure(&program, &risks, threshold);
        let (p, r) = m.overall();
        println!("| {threshold} | {p:.2} | {r:.2} | {} |", m.false_held);
    }

    check_floors(&m, "seed 2026");
}

/// Floors a little under the lowest of what seeds 2026, 1 and 2 measure
/// (see docs/fraud.md): a rule that stops firing, or starts firing on
/// honest buyers, fails.
fn check_floors(m: &Measured, seed: &str) {
    let (precision, recall) = m.overall();
    assert!(
        precision >= 0.95,
        "{seed}: overall precision {precision:.3}"
    );
    assert!(recall >= 0.45, "{seed}: overall recall {recall:.3}");
    let macro_recall = m.macro_recall();
    assert!(
        macro_recall >= 0.55,
        "{seed}: mean recall {macro_recall:.3}"
    );
    let floors = [
        (Kind::SelfReferrer, 0.80),
        (Kind::DisposableFarm, 0.85),
        (Kind::FastBot, 0.50),
        (Kind::RateOutlier, 0.15),
        (Kind::RefundAbuser, 0.08),
    ];
    for (kind, floor) in floors {
        let r = m.recall(kind);
        assert!(r >= floor, "{seed}: {kind:?} recall {r:.3} under {floor}");
    }
    // Each kind's own signal fires on most of its conversions and on
    // almost no honest one, whether or not it reaches the threshold alone.
    let signatures = [
        (Kind::SelfReferrer, "self_referral", 0.80),
        (Kind::DisposableFarm, "disposable_email", 0.75),
        (Kind::RateOutlier, "conversion_rate_outlier", 0.60),
        (Kind::FastBot, "fast_conversion", 0.80),
        (Kind::RefundAbuser, "refund_rate_outlier", 0.50),
    ];
    for (kind, rule, floor) in signatures {
        let on_kind = m.fired(kind, rule);
        let on_honest = m.fired(Kind::Honest, rule);
        assert!(
            on_kind >= floor,
            "{seed}: {rule} fired on {on_kind:.3} of {kind:?}"
        );
        assert!(
            on_honest <= 0.02,
            "{seed}: {rule} fired on {on_honest:.3} of honest"
        );
    }
    let (caught, of) = m.partners_caught();
    assert!(
        caught * 100 >= of * 75,
        "{seed}: partners caught {caught}/{of}"
    );
    let honest = m.by_kind[&Kind::Honest];
    let fp_rate = honest.held as f64 / honest.conversions as f64;
    assert!(
        fp_rate <= 0.02,
        "{seed}: honest conversions held {fp_rate:.4}"
    );
    assert!(
        honest.partners_held <= 5,
        "{seed}: honest partners held {}",
        honest.partners_held
    );
}

#[test]
fn the_floors_hold_on_other_generated_programs() {
    for seed in [1, 2] {
        let program = generate(seed);
        let config = FraudConfig::default();
        let m = measure(&program, &score(&program, &config), config.review_threshold);
        println!("\nseed {seed}:\n\n{}", table(&m));
        check_floors(&m, &format!("seed {seed}"));
    }
}
