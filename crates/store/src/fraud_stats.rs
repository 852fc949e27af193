//! The program statistics the fraud signals compare a conversion against:
//! each partner's conversion and refund rate, daily clicks and shared
//! accounts, and the program's click-to-conversion times. Computed by a
//! background job from the last [`WINDOW_DAYS`] and handed to each
//! recording (`fraud.rs`), never on a conversion's own path.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use tribute_core::click::epoch_day;
use tribute_core::fraud::conversions::{
    click_to_conversion_p1, shared_accounts, PartnerAccount, ProgramFacts,
};
use tribute_core::ids::ProgramId;
use tribute_core::partner::email_hash;

use crate::{to_ms, Context, Result, Store};

/// How far back the statistics look.
pub const WINDOW_DAYS: i64 = 30;

/// A partner's conversion rate counts only above this many human clicks.
pub const MIN_CLICKS_FOR_RATE: i64 = 100;

/// A partner's refund rate counts only above this many conversions.
pub const MIN_CONVERSIONS_FOR_RATE: i64 = 10;

/// The most click-to-conversion times read (the newest).
const MAX_TIMES: i64 = 20_000;

/// A partner as the shared-account rule reads it: id, payout e-mail,
/// e-mail, sign-up IP hash.
type AccountRow = (String, Option<String>, Option<String>, Option<String>);

/// One partner's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartnerStats {
    pub conversion_rate: Option<f64>,
    pub refund_rate: Option<f64>,
    /// Human clicks per day before today, oldest first (days without a
    /// click count 0), from the partner's first click in the window.
    pub daily_clicks: Vec<u64>,
    pub clicks_today: u64,
    /// Other partners sharing a payout e-mail, an e-mail or a sign-up IP.
    pub shares_account_with: Vec<String>,
}

/// A program's figures at `computed_at`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgramStats {
    pub computed_at: Option<DateTime<Utc>>,
    pub program: ProgramFacts,
    pub partners: HashMap<String, PartnerStats>,
}

impl Store {
    /// Compute a program's fraud statistics as of `now` (a few aggregate
    /// reads over the window; run it in the background).
    pub async fn fraud_stats(
        &self,
        program: &ProgramId,
        now: DateTime<Utc>,
    ) -> Result<ProgramStats> {
        let from = to_ms(now - Duration::days(WINDOW_DAYS));
        let today = epoch_day(now);
        let pool = self.pool();
        let mut partners: HashMap<String, PartnerStats> = HashMap::new();

        // Human clicks per partner and day, through each partner's index.
        let days: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT c.partner_id, c.day, COUNT(*) FROM partners p \
             JOIN clicks c ON c.partner_id = p.id AND c.at >= $2 \
             WHERE p.program_id = $1 AND c.is_bot = 0 GROUP BY c.partner_id, c.day",
        )
        .bind(program.as_str())
        .bind(from)
        .fetch_all(pool)
        .await
        .context("counting clicks per day")?;
        let mut per_day: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
        for (partner, day, n) in days {
            per_day
                .entry(partner)
                .or_default()
                .insert(day, u64::try_from(n).unwrap_or(0));
        }
        let mut clicks: HashMap<String, i64> = HashMap::new();
        for (partner, by_day) in per_day {
            let first = by_day.keys().next().copied().unwrap_or(today);
            let s = partners.entry(partner.clone()).or_default();
            s.daily_clicks = (first.min(today)..today)
                .map(|d| by_day.get(&d).copied().unwrap_or(0))
                .collect();
            s.clicks_today = by_day.get(&today).copied().unwrap_or(0);
            clicks.insert(partner, by_day.values().map(|n| *n as i64).sum());
        }

        let conversions: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT cc.partner_id, COUNT(*), \
             CAST(SUM(CASE WHEN v.refunded_minor > 0 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM conversion_credits cc JOIN conversions v ON v.id = cc.conversion_id \
             WHERE cc.program_id = $1 AND cc.occurred_at >= $2 \
             AND v.status IN ('approved', 'pending') GROUP BY cc.partner_id",
        )
        .bind(program.as_str())
        .bind(from)
        .fetch_all(pool)
        .await
        .context("counting conversions per partner")?;
        for (partner, n, refunded) in conversions {
            let c = clicks.get(&partner).copied().unwrap_or(0);
            let s = partners.entry(partner).or_default();
            if c >= MIN_CLICKS_FOR_RATE {
                s.conversion_rate = Some(n as f64 / c as f64);
            }
            if n >= MIN_CONVERSIONS_FOR_RATE {
                s.refund_rate = Some(refunded as f64 / n as f64);
            }
        }
        // A partner with clicks and no conversion converts at 0.
        for (partner, c) in &clicks {
            let s = partners.entry(partner.clone()).or_default();
            if *c >= MIN_CLICKS_FOR_RATE && s.conversion_rate.is_none() {
                s.conversion_rate = Some(0.0);
            }
        }

        let times: Vec<(i64,)> = sqlx::query_as(
            "SELECT click_ms FROM conversion_risk WHERE program_id = $1 AND at >= $2 \
             AND click_ms IS NOT NULL ORDER BY at DESC LIMIT $3",
        )
        .bind(program.as_str())
        .bind(from)
        .bind(MAX_TIMES)
        .fetch_all(pool)
        .await
        .context("reading click-to-conversion times")?;
        let times: Vec<Duration> = times
            .into_iter()
            .map(|(ms,)| Duration::milliseconds(ms))
            .collect();

        let accounts: Vec<AccountRow> = sqlx::query_as(
            "SELECT p.id, p.payout_email, p.email, i.signup_ip_hash FROM partners p \
                 LEFT JOIN partner_identifiers i ON i.partner_id = p.id WHERE p.program_id = $1",
        )
        .bind(program.as_str())
        .fetch_all(pool)
        .await
        .context("reading partner accounts")?;
        let accounts: Vec<PartnerAccount> = accounts
            .into_iter()
            .map(|(id, payout, email, ip)| {
                (
                    id,
                    payout.map(|p| p.to_ascii_lowercase()),
                    email.as_deref().map(email_hash),
                    ip.and_then(|h| u64::from_str_radix(&h, 16).ok()),
                )
            })
            .collect();
        for (partner, others) in shared_accounts(&accounts) {
            partners.entry(partner).or_default().shares_account_with = others;
        }

        let rates = |f: fn(&PartnerStats) -> Option<f64>| {
            let mut v: Vec<f64> = partners.values().filter_map(f).collect();
            v.sort_unstable_by(f64::total_cmp);
            v
        };
        let program = ProgramFacts {
            click_to_conversion_p1: click_to_conversion_p1(&times),
            conversion_rates: rates(|s| s.conversion_rate),
            refund_rates: rates(|s| s.refund_rate),
        };
        Ok(ProgramStats {
            computed_at: Some(now),
            program,
            partners,
        })
    }
}
