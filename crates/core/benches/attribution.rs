//! Attribution throughput: rule-based models over 1,000,000 conversions
//! (exact minor-unit splits included), Markov and Shapley fits over
//! 1,000,000 journeys, and the `tribute attribute` pipeline on a
//! 100,000-path file. Figures and commands: docs/benchmarks-attribution.md.
//!
//! Run with `cargo bench -p tribute-core --bench attribution`. Sample sizes
//! are kept at criterion's minimum so a full run takes a few minutes.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use tribute_core::attribution::paths::{attribute_paths, parse_paths, ReportModel, ReportOptions};
use tribute_core::attribution::{
    credit_into, fit_markov, fit_shapley, partner_credit_into, Journey, ModelConfig, ModelKind,
    Scratch, Touch, TouchKind,
};
use tribute_core::ids::PartnerId;

const CONVERSIONS: usize = 1_000_000;
const JOURNEYS: usize = 1_000_000;
const PATH_ROWS: usize = 100_000;
/// Distinct journeys cycled through: the work per conversion is the same as
/// with a million distinct ones, without gigabytes of touches in memory.
const POOL: usize = 8_192;
const CHANNELS: [&str; 10] = [
    "ads",
    "affiliate",
    "blog",
    "display",
    "email",
    "podcast",
    "referral",
    "seo",
    "social",
    "video",
];

fn conversion_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap()
}

/// Journeys of 1–20 touches over 50 partners, in time order, within 30 days.
fn touch_pool(rng: &mut StdRng) -> Vec<Vec<Touch>> {
    let partners: Vec<PartnerId> = (0..50)
        .map(|i| PartnerId::parse(&format!("ptn_p{i:03}")).unwrap())
        .collect();
    (0..POOL)
        .map(|j| {
            let n = rng.gen_range(1..=20);
            let mut ages: Vec<i64> = (0..n).map(|_| rng.gen_range(0..30 * 86_400)).collect();
            ages.sort_unstable_by(|a, b| b.cmp(a));
            ages.into_iter()
                .enumerate()
                .map(|(k, age)| Touch {
                    id: format!("t{j}_{k}"),
                    partner_id: partners[rng.gen_range(0..partners.len())].clone(),
                    channel: CHANNELS[rng.gen_range(0..CHANNELS.len())].to_owned(),
                    at: conversion_at() - TimeDelta::seconds(age),
                    kind: TouchKind::Click,
                    is_bot: false,
                    partner_suspended: false,
                })
                .collect()
        })
        .collect()
}

fn rule_based(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let pool = touch_pool(&mut rng);
    let totals: Vec<i64> = (0..POOL).map(|_| rng.gen_range(100..1_000_000)).collect();
    let at = conversion_at();
    let mut group = c.benchmark_group("attribute_1m_conversions");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(CONVERSIONS as u64));
    for model in [
        ModelKind::FirstTouch,
        ModelKind::LastTouch,
        ModelKind::Linear,
        ModelKind::PositionBased,
        ModelKind::TimeDecay,
    ] {
        let cfg = ModelConfig::new(model).with_window_days(30);
        group.bench_with_input(BenchmarkId::new("per_partner", model), &cfg, |b, cfg| {
            let mut scratch = Scratch::default();
            b.iter(|| {
                let mut paid = 0i64;
                for i in 0..CONVERSIONS {
                    let k = i % POOL;
                    let parts =
                        partner_credit_into(&pool[k], at, cfg, None, totals[k], &mut scratch)
                            .unwrap();
                    paid += parts.iter().map(|p| p.minor).sum::<i64>();
                }
                black_box(paid)
            })
        });
    }
    let cfg = ModelConfig::new(ModelKind::Linear).with_window_days(30);
    group.bench_function("per_touch/linear", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut paid = 0i64;
            for i in 0..CONVERSIONS {
                let k = i % POOL;
                let parts = credit_into(&pool[k], at, &cfg, None, totals[k], &mut scratch).unwrap();
                paid += parts.iter().map(|p| p.minor).sum::<i64>();
            }
            black_box(paid)
        })
    });
    group.finish();
}

/// A million journeys of 1–20 touches; conversion odds rise with the
/// number of distinct channels and with `email`/`seo`, so the fits have
/// something to find.
fn journeys(rng: &mut StdRng) -> Vec<Journey<&'static str>> {
    (0..JOURNEYS)
        .map(|_| {
            let n = rng.gen_range(1..=20);
            let path: Vec<&'static str> = (0..n)
                .map(|_| CHANNELS[rng.gen_range(0..CHANNELS.len())])
                .collect();
            let boost = path
                .iter()
                .filter(|c| **c == "email" || **c == "seo")
                .count() as f64;
            let p = (0.02 + 0.01 * boost).min(0.5);
            let converted = rng.gen_bool(p);
            Journey {
                path,
                conversions: u64::from(converted),
                nulls: u64::from(!converted),
            }
        })
        .collect()
}

fn fits(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(11);
    let js = journeys(&mut rng);
    let mut group = c.benchmark_group("fit_1m_journeys");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(JOURNEYS as u64));
    for order in [1u8, 2, 3] {
        group.bench_with_input(BenchmarkId::new("markov", order), &order, |b, &order| {
            b.iter(|| black_box(fit_markov(&js, order).unwrap()))
        });
    }
    group.bench_function("shapley", |b| {
        b.iter(|| black_box(fit_shapley(&js).unwrap()))
    });
    group.finish();
}

/// The same file `crates/cli/tests/data/gen_paths.py` writes (not the same
/// random numbers): 10 channels, 1–20 touches, ages, values in cents.
fn path_file(rng: &mut StdRng) -> String {
    let mut s =
        String::from("path,total_conversions,total_conversion_value,total_null,ages_days\n");
    for _ in 0..PATH_ROWS {
        let n = rng.gen_range(1..=20);
        let path: Vec<&str> = (0..n)
            .map(|_| CHANNELS[rng.gen_range(0..CHANNELS.len())])
            .collect();
        let mut ages: Vec<u32> = (0..n).map(|_| rng.gen_range(0..3000)).collect();
        ages.sort_unstable_by(|a, b| b.cmp(a));
        let ages: Vec<String> = ages
            .iter()
            .map(|a| format!("{}.{:02}", a / 100, a % 100))
            .collect();
        let conv = rng.gen_range(0..=5u64);
        let cents = rng.gen_range(0..50_000u64) * conv;
        let _ = writeln!(
            s,
            "{},{conv},{}.{:02},{},{}",
            path.join(" > "),
            cents / 100,
            cents % 100,
            rng.gen_range(0..=50),
            ages.join(" > ")
        );
    }
    s
}

fn cli_pipeline(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(13);
    let text = path_file(&mut rng);
    let opts = ReportOptions {
        models: ReportModel::parse_list("all", true).unwrap(),
        half_life_days: 7.0,
        markov_order: 1,
        window_days: None,
    };
    let mut group = c.benchmark_group("cli_100k_paths");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(PATH_ROWS as u64));
    group.bench_function("parse_and_attribute_all_models_csv", |b| {
        b.iter(|| {
            let file = parse_paths(&text).unwrap();
            let report = attribute_paths(&file, &opts).unwrap();
            black_box(report.to_csv())
        })
    });
    group.finish();
}

criterion_group!(benches, rule_based, fits, cli_pipeline);
criterion_main!(benches);
