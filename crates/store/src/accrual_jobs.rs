//! Paying leads and clicks: the commission job's other half (the release of
//! commissions after their hold is the first).
//!
//! Leads and clicks arrive through the batched writers (events, redirects),
//! which must stay fast, so their commissions are accrued a little later,
//! by the job, in batches:
//! * **Leads.** The `leads` table already holds at most one row per
//!   partner and person; each unpaid row is paid once by the program's lead
//!   rules and marked paid in the same transaction. A lead no rule pays is
//!   marked too: a rule made later does not pay old leads.
//! * **Clicks.** Per program with click rules, the non-bot clicks since the
//!   last run (click ids grow with time; a cursor per program, moved in the
//!   same transaction) are counted per partner and link, and each run of
//!   clicks is paid as one commission of `units` clicks, so the tier
//!   multiplier, the cap and the overrides apply to the run. The cursor
//!   stops a minute short of now, so clicks still in the writer's queue are
//!   counted by the next run.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use tribute_core::commission::{plan, Accrual, ConversionFacts, Credited, RuleEvent};
use tribute_core::ids::{ClickId, LinkId, PartnerId, ProgramId};
use tribute_core::money::{Currency, Money};

use crate::commissions::{
    lock_partners, partner_facts, program_rules, team_leads, write_planned, Needs, ProgramRules,
    Source,
};
use crate::{corrupt, from_ms, to_ms, Context, Result, Store, StoreError};

/// How long a click may take to reach the database after its redirect.
const CLICK_SETTLE: i64 = 60;

fn facts(
    program: &ProgramId,
    event: RuleEvent,
    currency: Currency,
    at: DateTime<Utc>,
    units: i64,
) -> ConversionFacts {
    ConversionFacts {
        program_id: program.clone(),
        event,
        value: Money::new(0, currency),
        reported_currency: currency,
        products: Vec::new(),
        first_payment_at: None,
        paid_at: at,
        metadata: Default::default(),
        customer_country: None,
        customer_source: None,
        units,
    }
}

async fn currency_of(conn: &mut sqlx::AnyConnection, program: &ProgramId) -> Result<Currency> {
    let (c,): (String,) = sqlx::query_as("SELECT currency FROM programs WHERE id = $1")
        .bind(program.as_str())
        .fetch_one(&mut *conn)
        .await
        .context("loading a program's currency")?;
    Currency::parse(&c).map_err(corrupt("program currency"))
}

impl Store {
    /// Pay the leads not yet paid (at most 500 per call); returns how many
    /// leads were looked at.
    pub async fn accrue_leads(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut tx = self.begin_write().await.context("starting lead accrual")?;
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT program_id, partner_id, person_id, at FROM leads WHERE accrued = 0 \
             ORDER BY program_id, at LIMIT 500",
        )
        .fetch_all(&mut *tx)
        .await
        .context("finding unpaid leads")?;
        let mut by_program: BTreeMap<String, Vec<(String, String, i64)>> = BTreeMap::new();
        for (program, partner, person, at) in &rows {
            by_program.entry(program.clone()).or_default().push((
                partner.clone(),
                person.clone(),
                *at,
            ));
        }
        for (program, leads) in by_program {
            let program_id = ProgramId::parse(&program).map_err(corrupt("lead program"))?;
            let ProgramRules { rules, terms } = program_rules(&mut tx, &program_id).await?;
            let rules: Vec<_> = rules
                .into_iter()
                .filter(|r| r.terms.event == RuleEvent::Lead)
                .collect();
            if !rules.is_empty() {
                let currency = currency_of(&mut tx, &program_id).await?;
                let needs = Needs::of(&rules);
                for (partner, person, at) in &leads {
                    let partner_id = PartnerId::parse(partner).map_err(corrupt("lead partner"))?;
                    let at = from_ms(*at)?;
                    let key = format!("lead:{program}:{partner}:{person}");
                    let (paid,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM commissions WHERE source_key = $1")
                            .bind(&key)
                            .fetch_one(&mut *tx)
                            .await
                            .context("checking a lead's commission")?;
                    let Some((mut f, chain)) =
                        partner_facts(&mut tx, &program_id, &partner_id, needs, at, None).await?
                    else {
                        continue;
                    };
                    f.lead_already_paid = paid > 0;
                    let facts = facts(&program_id, RuleEvent::Lead, currency, at, 1);
                    let planned = self
                        .plan_one(&mut tx, &program_id, &facts, f, chain, &rules, &terms)
                        .await?;
                    let src = Source {
                        program_id: &program_id,
                        conversion_id: None,
                        person_id: Some(person),
                        event: "lead",
                        source_key: Some(key),
                        currency: currency.as_str(),
                        occurred_at: at,
                    };
                    write_planned(&mut tx, &src, &planned, false, terms.hold_days, now).await?;
                }
            }
            for (partner, person, _) in &leads {
                sqlx::query(
                    "UPDATE leads SET accrued = 1 WHERE program_id = $1 AND partner_id = $2 \
                     AND person_id = $3",
                )
                .bind(&program)
                .bind(partner)
                .bind(person)
                .execute(&mut *tx)
                .await
                .context("marking a lead paid")?;
            }
        }
        tx.commit().await.context("committing lead accrual")?;
        Ok(rows.len())
    }

    /// Plan one partner's commission (and its team's overrides).
    #[allow(clippy::too_many_arguments)]
    async fn plan_one(
        &self,
        conn: &mut sqlx::AnyConnection,
        program_id: &ProgramId,
        facts: &ConversionFacts,
        partner: tribute_core::commission::PartnerFacts,
        chain: crate::commissions::Chain,
        rules: &[tribute_core::commission::RewardRule],
        terms: &crate::commissions::ProgramTerms,
    ) -> Result<Vec<tribute_core::commission::Planned>> {
        let depth = terms.overrides.as_ref().map_or(0, |o| o.depth());
        let start = vec![(partner.partner_id.clone(), chain)];
        let leads = team_leads(conn, program_id, start, depth).await?;
        let credited = [Credited { partner, weight: 1 }];
        let accrual = Accrual {
            program_id,
            conversion_id: None,
            attribution: None,
            facts,
            credited: &credited,
            rules,
            overrides: terms.overrides.as_ref(),
        };
        plan(&accrual, |p| leads.get(p).cloned())
            .map_err(|e| StoreError::Corrupt(format!("planning commissions: {e}")))
    }

    /// Pay the clicks of every program with click rules since its last run,
    /// up to a minute ago; returns how many clicks were paid for.
    pub async fn accrue_clicks(&self, now: DateTime<Utc>) -> Result<i64> {
        let programs: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT program_id FROM reward_rules WHERE deleted_at IS NULL")
                .fetch_all(self.pool())
                .await
                .context("finding programs that pay clicks")?;
        let upto = ClickId::generate_ordered(to_ms(now - Duration::seconds(CLICK_SETTLE)));
        let mut total = 0;
        for (program,) in programs {
            let program_id = ProgramId::parse(&program).map_err(corrupt("rule program"))?;
            total += self
                .accrue_program_clicks(&program_id, upto.as_str(), now)
                .await?;
        }
        Ok(total)
    }

    async fn accrue_program_clicks(
        &self,
        program_id: &ProgramId,
        upto: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await.context("starting click accrual")?;
        let ProgramRules { rules, terms } = program_rules(&mut tx, program_id).await?;
        let rules: Vec<_> = rules
            .into_iter()
            .filter(|r| r.terms.event == RuleEvent::Click)
            .collect();
        let cursor: Option<(String,)> = sqlx::query_as(
            "SELECT position FROM commission_cursors WHERE program_id = $1 AND kind = 'clicks'",
        )
        .bind(program_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("reading the click cursor")?;
        // A program's first run starts from the rule's creation: clicks
        // before any click rule existed are not paid.
        let from = match cursor {
            Some((c,)) => c,
            None => {
                let (created,): (i64,) = sqlx::query_as(
                    "SELECT MIN(created_at) FROM reward_rules WHERE program_id = $1",
                )
                .bind(program_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .context("finding the first rule")?;
                ClickId::generate_ordered(created).as_str()[..12].to_owned()
            }
        };
        if from.as_str() >= upto || rules.is_empty() {
            return Ok(0);
        }
        let runs: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT partner_id, link_id, COUNT(*), MAX(at) FROM clicks WHERE program_id = $1 \
             AND id > $2 AND id <= $3 AND is_bot = 0 GROUP BY partner_id, link_id \
             ORDER BY partner_id, link_id",
        )
        .bind(program_id.as_str())
        .bind(&from)
        .bind(upto)
        .fetch_all(&mut *tx)
        .await
        .context("counting clicks to pay")?;
        let currency = currency_of(&mut tx, program_id).await?;
        let needs = Needs::of(&rules);
        let mut paid = 0;
        let mut partners: Vec<PartnerId> = Vec::new();
        for (partner, ..) in &runs {
            partners.push(PartnerId::parse(partner).map_err(corrupt("click partner"))?);
        }
        if needs.caps {
            lock_partners(&mut tx, self.backend(), &mut partners.clone()).await?;
        }
        for (partner, link, count, last) in &runs {
            let partner_id = PartnerId::parse(partner).map_err(corrupt("click partner"))?;
            let at = from_ms(*last)?;
            let Some((mut f, chain)) =
                partner_facts(&mut tx, program_id, &partner_id, needs, at, None).await?
            else {
                continue;
            };
            f.links = vec![LinkId::parse(link).map_err(corrupt("click link"))?];
            let facts = facts(program_id, RuleEvent::Click, currency, at, *count);
            let planned = self
                .plan_one(&mut tx, program_id, &facts, f, chain, &rules, &terms)
                .await?;
            let src = Source {
                program_id,
                conversion_id: None,
                person_id: None,
                event: "click",
                source_key: Some(format!("clicks:{link}:{upto}")),
                currency: currency.as_str(),
                occurred_at: at,
            };
            write_planned(&mut tx, &src, &planned, false, terms.hold_days, now).await?;
            paid += count;
        }
        sqlx::query(
            "INSERT INTO commission_cursors (program_id, kind, position) VALUES ($1, 'clicks', $2) \
             ON CONFLICT (program_id, kind) DO UPDATE SET position = excluded.position",
        )
        .bind(program_id.as_str())
        .bind(upto)
        .execute(&mut *tx)
        .await
        .context("moving the click cursor")?;
        tx.commit().await.context("committing click accrual")?;
        Ok(paid)
    }
}
