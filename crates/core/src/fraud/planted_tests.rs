//! The statistical signals on generated distributions with planted
//! outliers: conversion- and refund-rate outliers among a program's
//! partners, sub-second conversions among lognormal ones, jumps in click
//! histories. Seeded, so every run sees the same data.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tests::{buyer, NO_DUP};
use super::*;

/// A standard normal draw (Box–Muller; `rand_distr` is not a dependency).
pub(super) fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1], so ln is finite
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Lognormal times with the given median (seconds) and log-space σ.
pub(super) fn lognormal_times(
    rng: &mut StdRng,
    n: usize,
    median: f64,
    sigma: f64,
) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let secs = (median.ln() + sigma * normal(rng)).exp();
            Duration::milliseconds((secs * 1000.0) as i64)
        })
        .collect()
}

fn rate_flags(rates: &[f64], config: &FraudConfig, refund: bool) -> Vec<bool> {
    let program = ProgramFacts {
        conversion_rates: if refund { vec![] } else { rates.to_vec() },
        refund_rates: if refund { rates.to_vec() } else { vec![] },
        ..ProgramFacts::default()
    };
    rates
        .iter()
        .map(|&r| {
            let p = PartnerFacts {
                conversion_rate: (!refund).then_some(r),
                refund_rate: refund.then_some(r),
                ..PartnerFacts::default()
            };
            let risk = assess_conversion(&buyer(), &p, &program, &NO_DUP, config);
            !risk.reasons.is_empty()
        })
        .collect()
}

/// Planted outliers all caught, at most `max_false` honest ones flagged.
fn check_planted(flags: &[bool], planted: usize, max_false: usize, what: &str) {
    let honest = flags.len() - planted;
    let caught = flags[honest..].iter().filter(|f| **f).count();
    let false_flags = flags[..honest].iter().filter(|f| **f).count();
    assert_eq!(caught, planted, "{what}: planted outliers missed");
    assert!(
        false_flags <= max_false,
        "{what}: {false_flags} of {honest} honest flagged"
    );
}

#[test]
fn conversion_rate_outliers_are_found_among_generated_partners() {
    for seed in 0..5 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut rates: Vec<f64> = (0..200)
            .map(|_| (0.03 + 0.01 * normal(&mut rng)).max(0.001))
            .collect();
        rates.extend((0..5).map(|_| rng.gen_range(0.25..0.40)));
        let flags = rate_flags(&rates, &FraudConfig::default(), false);
        check_planted(&flags, 5, 2, &format!("seed {seed}"));
    }
}

#[test]
fn refund_rate_outliers_are_found_when_most_partners_have_no_refunds() {
    for seed in 0..5 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        // 55% of honest partners without a refund: the MAD is 0.
        let mut rates: Vec<f64> = (0..200)
            .map(|_| {
                if rng.gen_bool(0.55) {
                    0.0
                } else {
                    (0.06 + 0.03 * normal(&mut rng)).max(0.005)
                }
            })
            .collect();
        rates.extend((0..5).map(|_| rng.gen_range(0.30..0.60)));
        let flags = rate_flags(&rates, &FraudConfig::default(), true);
        check_planted(&flags, 5, 2, &format!("seed {seed}"));
    }
}

#[test]
fn sub_second_conversions_are_found_below_a_lognormal_programs_first_percentile() {
    let mut rng = StdRng::seed_from_u64(7);
    // Honest: median 2 hours, wide (σ = 1.5 in log space).
    let mut times = lognormal_times(&mut rng, 2_000, 7_200.0, 1.5);
    times.extend((0..15).map(|_| Duration::milliseconds(rng.gen_range(200..900))));
    let p1 = click_to_conversion_p1(&times).unwrap();
    let program = ProgramFacts {
        click_to_conversion_p1: Some(p1),
        ..ProgramFacts::default()
    };
    let flags: Vec<bool> = times
        .iter()
        .map(|&t| {
            let c = ConversionFacts {
                click_to_conversion: Some(t),
                ..ConversionFacts::default()
            };
            let p = PartnerFacts::default();
            let risk = assess_conversion(&c, &p, &program, &NO_DUP, &FraudConfig::default());
            risk.score > 0
        })
        .collect();
    // By definition about 1% of the program is below its 1st percentile:
    // these are the honest conversions the rule costs (40 points, not held
    // alone).
    check_planted(&flags, 15, 2_000 / 100 + 5, "fast conversions");
}

#[test]
fn click_volume_jumps_are_found_in_generated_histories() {
    let mut rng = StdRng::seed_from_u64(11);
    let day = |rng: &mut StdRng, base: f64| {
        // Day-to-day swing of 15% around the partner's level, plus
        // Poisson-like noise.
        let mean = base * (1.0 + 0.15 * normal(rng)).max(0.1);
        (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u64
    };
    let mut flags = Vec::new();
    for i in 0..210 {
        let base = (80f64.ln() + 1.0 * normal(&mut rng)).exp();
        let history: Vec<u64> = (0..28).map(|_| day(&mut rng, base)).collect();
        let planted = i >= 200;
        let today = if planted {
            let jump = rng.gen_range(4.0..10.0);
            day(&mut rng, base * jump)
        } else {
            day(&mut rng, base)
        };
        let p = PartnerFacts {
            daily_clicks: &history,
            clicks_today: today,
            ..PartnerFacts::default()
        };
        let risk = assess_conversion(
            &buyer(),
            &p,
            &ProgramFacts::default(),
            &NO_DUP,
            &FraudConfig::default(),
        );
        flags.push(risk.score > 0);
    }
    check_planted(&flags, 10, 3, "click volume");
}
