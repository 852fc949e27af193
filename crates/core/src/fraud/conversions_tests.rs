//! Each conversion rule with a case that fires and cases that must not;
//! weights and the off switch; the 1st-percentile estimate; shared
//! accounts. Generated distributions with planted outliers are in
//! `planted_tests.rs`, the evaluation in `evaluation_tests.rs`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::planted::lognormal_times;
use super::*;
use crate::fraud::config::RULES;
use crate::partner::email_hash;

/// The credited partner's own data, owned so tests can borrow it.
struct Partner {
    email_hash: String,
    fingerprints: Vec<String>,
    shares: Vec<String>,
    history: Vec<u64>,
    conversion_rate: Option<f64>,
    refund_rate: Option<f64>,
    clicks_today: u64,
}

impl Partner {
    fn honest() -> Self {
        Self {
            email_hash: email_hash("partner@example.com"),
            fingerprints: vec!["fp_partner_card".into()],
            shares: vec![],
            history: vec![95, 102, 99, 110, 90, 104, 100, 97, 101, 98],
            conversion_rate: Some(0.03),
            refund_rate: Some(0.05),
            clicks_today: 105,
        }
    }

    fn facts(&self) -> PartnerFacts<'_> {
        PartnerFacts {
            partner_id: "p_alice",
            email_hash: Some(&self.email_hash),
            user_id: Some("u_partner"),
            signup_ip_hash: Some(7),
            payment_fingerprints: &self.fingerprints,
            shares_account_with: &self.shares,
            conversion_rate: self.conversion_rate,
            refund_rate: self.refund_rate,
            daily_clicks: &self.history,
            clicks_today: self.clicks_today,
        }
    }
}

fn program() -> ProgramFacts {
    ProgramFacts {
        click_to_conversion_p1: Some(Duration::seconds(60)),
        conversion_rates: vec![
            0.02, 0.025, 0.03, 0.035, 0.04, 0.028, 0.032, 0.03, 0.027, 0.033,
        ],
        refund_rates: vec![0.03, 0.05, 0.04, 0.06, 0.05, 0.07, 0.045, 0.055],
    }
}

/// A buyer who is nobody the partner knows.
pub(super) fn buyer() -> ConversionFacts<'static> {
    ConversionFacts {
        value_minor: 4_900,
        order_id: Some("ord_1001"),
        customer_key: Some("cus_bob"),
        email: Some("bob@gmail.com"),
        email_hash: Some("ab".repeat(32).leak()),
        user_id: Some("u_bob"),
        ip_hash: Some(42),
        payment_fingerprint: Some("fp_bob_card"),
        click_to_conversion: Some(Duration::hours(3)),
        credited_click_flagged: false,
    }
}

fn assess_with(
    c: &ConversionFacts,
    p: &PartnerFacts,
    dup: &Duplicates,
    config: &FraudConfig,
) -> Risk {
    assess_conversion(c, p, &program(), dup, config)
}

fn rules_of(risk: &Risk) -> Vec<&str> {
    risk.reasons.iter().map(|r| r.rule.as_str()).collect()
}

/// The reasons' rules for a conversion under the default settings.
fn fired(c: &ConversionFacts, p: &PartnerFacts, dup: &Duplicates) -> Vec<String> {
    let risk = assess_with(c, p, dup, &FraudConfig::default());
    rules_of(&risk).into_iter().map(str::to_owned).collect()
}

fn evidence(c: &ConversionFacts, p: &PartnerFacts, dup: &Duplicates, rule: &str) -> String {
    let risk = assess_with(c, p, dup, &FraudConfig::default());
    risk.reasons
        .into_iter()
        .find(|r| r.rule == rule)
        .unwrap_or_else(|| panic!("{rule} should fire"))
        .evidence
}

pub(super) const NO_DUP: Duplicates = Duplicates {
    same_order_other_source: false,
    same_customer_amount_within_window: false,
};

#[test]
fn an_ordinary_conversion_has_no_reasons_and_scores_zero() {
    let partner = Partner::honest();
    let risk = assess_with(&buyer(), &partner.facts(), &NO_DUP, &FraudConfig::default());
    assert_eq!(risk, Risk::default());
}

#[test]
fn every_conversion_rule_of_the_table_has_a_check() {
    let first = RULES
        .iter()
        .position(|(name, _, _)| *name == "self_referral")
        .unwrap();
    let table: Vec<&str> = RULES[first..].iter().map(|(n, _, _)| *n).collect();
    let checks: Vec<&str> = CHECKS.iter().map(|(n, _)| *n).collect();
    assert_eq!(checks, table);
}

#[test]
fn self_referral_names_the_identifier_that_matched_and_never_its_value() {
    let partner = Partner::honest();
    let p = partner.facts();
    let own_hash = partner.email_hash.to_uppercase();
    let cases: Vec<(&str, ConversionFacts, &str)> = vec![
        (
            "e-mail hash, any case",
            ConversionFacts {
                email: None,
                email_hash: Some(&own_hash),
                ..buyer()
            },
            "the buyer's e-mail is the partner's own",
        ),
        (
            "raw e-mail, hashed here",
            ConversionFacts {
                email: Some(" Partner@Example.com"),
                email_hash: None,
                ..buyer()
            },
            "the buyer's e-mail is the partner's own",
        ),
        (
            "user id",
            ConversionFacts {
                user_id: Some("u_partner"),
                ..buyer()
            },
            "the buyer's user id is the partner's own",
        ),
        (
            "ip hash",
            ConversionFacts {
                ip_hash: Some(7),
                ..buyer()
            },
            "the buyer's IP address (the partner's sign-up IP) is the partner's own",
        ),
        (
            "payment fingerprint",
            ConversionFacts {
                payment_fingerprint: Some("fp_partner_card"),
                ..buyer()
            },
            "the buyer's payment fingerprint is the partner's own",
        ),
        (
            "three at once",
            ConversionFacts {
                user_id: Some("u_partner"),
                ip_hash: Some(7),
                payment_fingerprint: Some("fp_partner_card"),
                ..buyer()
            },
            "the buyer's user id, IP address (the partner's sign-up IP) and payment \
             fingerprint are the partner's own",
        ),
    ];
    for (case, c, want) in cases {
        assert_eq!(fired(&c, &p, &NO_DUP), ["self_referral"], "{case}");
        let got = evidence(&c, &p, &NO_DUP, "self_referral");
        assert_eq!(got, want, "{case}");
        for secret in [&partner.email_hash, "u_partner", "fp_partner_card", "7"] {
            assert!(!got.contains(secret), "{case}: evidence leaks {secret}");
        }
    }
}

#[test]
fn self_referral_needs_an_identifier_on_both_sides_that_is_not_empty() {
    let mut partner = Partner::honest();
    partner.fingerprints = vec![String::new()];
    let p = PartnerFacts {
        email_hash: None,
        user_id: Some(""),
        signup_ip_hash: None,
        ..partner.facts()
    };
    let c = ConversionFacts {
        email: Some("partner@example.com"),
        user_id: Some(""),
        ip_hash: None,
        payment_fingerprint: Some(" "),
        ..buyer()
    };
    assert!(fired(&c, &p, &NO_DUP).is_empty());
}

#[test]
fn disposable_email_fires_on_a_listed_domain_only() {
    let partner = Partner::honest();
    let p = partner.facts();
    let c = ConversionFacts {
        email: Some("x7@Mailinator.com"),
        ..buyer()
    };
    assert_eq!(fired(&c, &p, &NO_DUP), ["disposable_email"]);
    assert_eq!(
        evidence(&c, &p, &NO_DUP, "disposable_email"),
        "the buyer's e-mail is at mailinator.com, a disposable-address service"
    );
    for email in [Some("bob@gmail.com"), Some(""), None] {
        let c = ConversionFacts { email, ..buyer() };
        assert!(fired(&c, &p, &NO_DUP).is_empty(), "{email:?}");
    }
}

#[test]
fn duplicates_fire_on_what_the_store_found() {
    let partner = Partner::honest();
    let p = partner.facts();
    let order = Duplicates {
        same_order_other_source: true,
        ..NO_DUP
    };
    assert_eq!(fired(&buyer(), &p, &order), ["duplicate_order"]);
    assert_eq!(
        evidence(&buyer(), &p, &order, "duplicate_order"),
        "order ord_1001 was also reported from another source"
    );
    let same = Duplicates {
        same_customer_amount_within_window: true,
        ..NO_DUP
    };
    assert_eq!(fired(&buyer(), &p, &same), ["duplicate_customer_amount"]);
    assert_eq!(
        evidence(&buyer(), &p, &same, "duplicate_customer_amount"),
        "the same customer paid the same amount (4900 minor units) within 24 hours"
    );
    assert!(fired(&buyer(), &p, &NO_DUP).is_empty());
}

#[test]
fn above_amount_fires_strictly_above_the_review_amount_and_only_when_set() {
    let partner = Partner::honest();
    let p = partner.facts();
    let config = FraudConfig {
        review_above_amount: Some(10_000),
        ..FraudConfig::default()
    };
    let at = |v: i64| {
        let c = ConversionFacts {
            value_minor: v,
            ..buyer()
        };
        rules_of(&assess_with(&c, &p, &NO_DUP, &config))
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(at(10_001), ["above_amount"]);
    assert!(at(10_000).is_empty());
    let c = ConversionFacts {
        value_minor: i64::MAX,
        ..buyer()
    };
    assert!(fired(&c, &p, &NO_DUP).is_empty(), "no review amount set");
    let risk = assess_with(
        &ConversionFacts {
            value_minor: 25_000,
            ..buyer()
        },
        &p,
        &NO_DUP,
        &config,
    );
    assert_eq!(
        risk.reasons[0].evidence,
        "value 25000 is above the program's review amount 10000 (minor units)"
    );
    assert!(risk.holds(&config), "above the amount alone holds");
}

#[test]
fn shared_account_lists_the_other_partners() {
    let mut partner = Partner::honest();
    assert!(fired(&buyer(), &partner.facts(), &NO_DUP).is_empty());
    partner.shares = vec!["p_bob".into(), "p_carol".into()];
    let p = partner.facts();
    assert_eq!(fired(&buyer(), &p, &NO_DUP), ["shared_account"]);
    assert_eq!(
        evidence(&buyer(), &p, &NO_DUP, "shared_account"),
        "the partner shares a payout account, e-mail or sign-up IP with 2 other \
         partners: p_bob, p_carol"
    );
    partner.shares = (0..12).map(|i| format!("p_{i}")).collect();
    let e = evidence(&buyer(), &partner.facts(), &NO_DUP, "shared_account");
    assert!(e.ends_with("p_9 and 2 more"), "{e}");
}

#[test]
fn suspicious_click_fires_when_the_credited_click_was_flagged() {
    let partner = Partner::honest();
    let c = ConversionFacts {
        credited_click_flagged: true,
        ..buyer()
    };
    assert_eq!(fired(&c, &partner.facts(), &NO_DUP), ["suspicious_click"]);
    assert!(fired(&buyer(), &partner.facts(), &NO_DUP).is_empty());
}

#[test]
fn fast_conversion_fires_below_the_programs_first_percentile() {
    let partner = Partner::honest();
    let p = partner.facts();
    let at = |d: Option<Duration>| ConversionFacts {
        click_to_conversion: d,
        ..buyer()
    };
    let c = at(Some(Duration::milliseconds(1_400)));
    assert_eq!(fired(&c, &p, &NO_DUP), ["fast_conversion"]);
    assert_eq!(
        evidence(&c, &p, &NO_DUP, "fast_conversion"),
        "converted 1.4 s after the credited click; 99% of the program's conversions \
         take at least 1 min"
    );
    let before = at(Some(Duration::seconds(-5)));
    assert!(evidence(&before, &p, &NO_DUP, "fast_conversion").contains("5 s before"));
    for d in [Some(Duration::seconds(60)), Some(Duration::days(3)), None] {
        assert!(fired(&at(d), &p, &NO_DUP).is_empty(), "{d:?}");
    }
    // A program without enough conversions has no percentile.
    let no_p1 = ProgramFacts {
        click_to_conversion_p1: None,
        ..program()
    };
    let risk = assess_conversion(&c, &p, &no_p1, &NO_DUP, &FraudConfig::default());
    assert_eq!(risk.score, 0);
}

#[test]
fn the_first_percentile_needs_a_hundred_positive_times() {
    let mut times: Vec<Duration> = (1..=99).map(Duration::seconds).collect();
    assert_eq!(click_to_conversion_p1(&times), None);
    times.push(Duration::zero());
    assert_eq!(click_to_conversion_p1(&times), None, "0 is not a time");
    times.push(Duration::seconds(100));
    assert!(click_to_conversion_p1(&times).is_some());
}

#[test]
fn the_first_percentile_estimate_is_not_dragged_down_by_a_busy_bot() {
    let mut rng = StdRng::seed_from_u64(3);
    // Honest: median 2 hours, σ = 1.5: the true 1st percentile is
    // 7200·e^(−2.326·1.5) ≈ 220 s.
    let mut times = lognormal_times(&mut rng, 4_000, 7_200.0, 1.5);
    let honest = click_to_conversion_p1(&times).unwrap();
    assert!(
        (180..270).contains(&honest.num_seconds()),
        "{honest:?} on honest times"
    );
    // A bot adds 6% of the program's conversions, each within 5 seconds.
    times.extend((0..250).map(|_| Duration::milliseconds(rng.gen_range(300..5_000))));
    // The quartiles move a little (≈ 140 s here), still far above the bot.
    let robust = click_to_conversion_p1(&times).unwrap();
    assert!(robust.num_seconds() >= 100, "{robust:?} with the bot");
    let mut ms: Vec<f64> = times.iter().map(|d| d.num_milliseconds() as f64).collect();
    ms.sort_by(f64::total_cmp);
    let empirical = stats::percentile(&ms, 1.0).unwrap();
    assert!(
        empirical < 5_000.0,
        "the empirical percentile falls among the bot's times ({empirical} ms)"
    );
}

#[test]
fn rate_outliers_fire_high_above_the_program_only() {
    let mut partner = Partner::honest();
    partner.conversion_rate = Some(0.41);
    partner.refund_rate = Some(0.5);
    let p = partner.facts();
    assert_eq!(
        fired(&buyer(), &p, &NO_DUP),
        ["conversion_rate_outlier", "refund_rate_outlier"]
    );
    let e = evidence(&buyer(), &p, &NO_DUP, "conversion_rate_outlier");
    // Program median 3%, MAD 0.3 points: z = 0.6745 × 38 / 0.3 ≈ 85.4.
    assert_eq!(
        e,
        "conversion rate 41% vs program median 3%, robust z 85.4 (10 partners)"
    );
    // Ordinary, low, unknown: nothing.
    for (conv, refund) in [(0.036, 0.06), (0.0, 0.0), (f64::NAN, f64::NAN)] {
        partner.conversion_rate = Some(conv);
        partner.refund_rate = Some(refund);
        assert!(
            fired(&buyer(), &partner.facts(), &NO_DUP).is_empty(),
            "{conv} {refund}"
        );
    }
    partner.conversion_rate = None;
    partner.refund_rate = None;
    assert!(fired(&buyer(), &partner.facts(), &NO_DUP).is_empty());
}

#[test]
fn rate_outliers_need_five_program_rates() {
    let mut partner = Partner::honest();
    partner.conversion_rate = Some(0.41);
    let small = ProgramFacts {
        conversion_rates: vec![0.03, 0.02, 0.04, 0.03],
        ..program()
    };
    let risk = assess_conversion(
        &buyer(),
        &partner.facts(),
        &small,
        &NO_DUP,
        &FraudConfig::default(),
    );
    assert_eq!(risk.score, 0);
}

#[test]
fn refund_rates_that_are_mostly_zero_fall_back_to_mean_deviation_then_a_margin() {
    let mut partner = Partner::honest();
    partner.refund_rate = Some(0.4);
    let mostly_zero = ProgramFacts {
        refund_rates: [vec![0.0; 10], vec![0.05, 0.1, 0.04]].concat(),
        ..program()
    };
    let cfg = FraudConfig::default();
    let risk = assess_conversion(&buyer(), &partner.facts(), &mostly_zero, &NO_DUP, &cfg);
    assert_eq!(rules_of(&risk), ["refund_rate_outlier"]);
    assert!(
        risk.reasons[0].evidence.contains("mean absolute deviation"),
        "{:?}",
        risk.reasons
    );
    let all_zero = ProgramFacts {
        refund_rates: vec![0.0; 9],
        ..program()
    };
    let risk = assess_conversion(&buyer(), &partner.facts(), &all_zero, &NO_DUP, &cfg);
    assert_eq!(
        risk.reasons[0].evidence,
        "refund rate 40%, while all 9 partners with enough data have 0% (more than 5 \
         points above)"
    );
    partner.refund_rate = Some(0.04);
    let risk = assess_conversion(&buyer(), &partner.facts(), &all_zero, &NO_DUP, &cfg);
    assert_eq!(risk.score, 0, "within the margin");
}

#[test]
fn click_volume_jump_fires_against_the_partners_own_history() {
    let mut partner = Partner::honest();
    partner.clicks_today = 900;
    let p = partner.facts();
    assert_eq!(fired(&buyer(), &p, &NO_DUP), ["click_volume_jump"]);
    let e = evidence(&buyer(), &p, &NO_DUP, "click_volume_jump");
    assert!(
        e.starts_with("900 clicks today vs a median of 99.5 a day over the previous 10 days,"),
        "{e}"
    );
    partner.clicks_today = 120;
    assert!(fired(&buyer(), &partner.facts(), &NO_DUP).is_empty());
    partner.clicks_today = 900;
    partner.history.truncate(6);
    assert!(
        fired(&buyer(), &partner.facts(), &NO_DUP).is_empty(),
        "under a week of history"
    );
}

/// Owned facts under which every conversion rule fires.
fn everything_fires() -> (Partner, FraudConfig, Duplicates) {
    let mut partner = Partner::honest();
    partner.shares = vec!["p_bob".into()];
    partner.conversion_rate = Some(0.4);
    partner.refund_rate = Some(0.6);
    partner.clicks_today = 5_000;
    let config = FraudConfig {
        review_above_amount: Some(100),
        ..FraudConfig::default()
    };
    let dup = Duplicates {
        same_order_other_source: true,
        same_customer_amount_within_window: true,
    };
    (partner, config, dup)
}

fn bad_buyer() -> ConversionFacts<'static> {
    ConversionFacts {
        email: Some("me@yopmail.com"),
        user_id: Some("u_partner"),
        click_to_conversion: Some(Duration::milliseconds(300)),
        credited_click_flagged: true,
        ..buyer()
    }
}

#[test]
fn a_weight_of_zero_turns_a_rule_off() {
    let (partner, config, dup) = everything_fires();
    let all = assess_with(&bad_buyer(), &partner.facts(), &dup, &config);
    assert_eq!(all.reasons.len(), CHECKS.len(), "{:?}", rules_of(&all));
    assert_eq!(all.score, 100);
    for (rule, _) in CHECKS {
        let mut off = config.clone();
        off.weights.insert((*rule).into(), 0);
        let risk = assess_with(&bad_buyer(), &partner.facts(), &dup, &off);
        assert!(!rules_of(&risk).contains(rule), "{rule} still fired");
        assert_eq!(risk.reasons.len(), CHECKS.len() - 1, "{rule}");
    }
    let mut only_click = FraudConfig::default();
    for (rule, _) in CHECKS {
        only_click.weights.insert((*rule).into(), 0);
    }
    only_click.weights.insert("suspicious_click".into(), 55);
    let risk = assess_with(&bad_buyer(), &partner.facts(), &dup, &only_click);
    assert_eq!(rules_of(&risk), ["suspicious_click"]);
    assert_eq!((risk.score, risk.reasons[0].contribution), (55, 55));
}

#[test]
fn with_fraud_checks_off_nothing_fires_and_nothing_is_held() {
    let (partner, mut config, dup) = everything_fires();
    config.enabled = false;
    let risk = assess_with(&bad_buyer(), &partner.facts(), &dup, &config);
    assert_eq!(risk, Risk::default());
    assert!(!risk.holds(&config));
}

#[test]
fn reasons_add_up_as_independent_chances() {
    let partner = Partner::honest();
    let p = partner.facts();
    let config = FraudConfig::default();
    let self_ref = ConversionFacts {
        ip_hash: Some(7),
        ..buyer()
    };
    let risk = assess_with(&self_ref, &p, &NO_DUP, &config);
    assert_eq!(risk.score, 90);
    assert!(risk.holds(&config), "self-referral alone is held");
    let disposable = ConversionFacts {
        email: Some("a@yopmail.com"),
        ..buyer()
    };
    let risk = assess_with(&disposable, &p, &NO_DUP, &config);
    assert_eq!(risk.score, 40);
    assert!(!risk.holds(&config), "a disposable e-mail alone is not");
    let both = ConversionFacts {
        click_to_conversion: Some(Duration::seconds(2)),
        ..disposable
    };
    let risk = assess_with(&both, &p, &NO_DUP, &config);
    assert_eq!(risk.score, 64, "1 − 0.6 × 0.6");
    assert!(risk.holds(&config));
}

#[test]
fn shared_accounts_groups_partners_by_payout_email_or_signup_ip() {
    let s = |v: &str| Some(v.to_owned());
    let partners = vec![
        ("a".to_owned(), s("paypal:x"), s("AA11"), Some(1)),
        ("b".to_owned(), s("paypal:x"), s("bb22"), Some(2)),
        ("c".to_owned(), s("iban:y"), s("aa11"), Some(3)),
        ("d".to_owned(), s("iban:z"), s("dd44"), Some(2)),
        ("e".to_owned(), s(""), s(""), None),
        ("f".to_owned(), s(""), s(""), None),
        ("g".to_owned(), None, None, Some(9)),
    ];
    let shared = shared_accounts(&partners);
    let v = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        shared.get("a"),
        Some(&v(&["b", "c"])),
        "payout, e-mail any case"
    );
    assert_eq!(shared.get("b"), Some(&v(&["a", "d"])), "payout, sign-up IP");
    assert_eq!(shared.get("c"), Some(&v(&["a"])), "not transitive");
    assert_eq!(shared.get("d"), Some(&v(&["b"])));
    assert_eq!(shared.get("e"), None, "empty strings are not identifiers");
    assert_eq!(shared.get("g"), None);
    assert_eq!(shared.len(), 4);
}
