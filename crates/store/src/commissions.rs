//! Commissions as stored: accruing a conversion's in its own transaction,
//! and the facts the rules need, read in that transaction.
//!
//! `tribute_core::commission` decides (rules, credit split, tiers, caps,
//! overrides) and `tribute_core::ledger` makes the entries; this module
//! gathers the facts, asks core for the plan and writes it with the
//! conversion. Costly facts (a partner's totals to date, what it earned per
//! cap period, the links of its clicks) are only read when a rule of the
//! program reads them, so a program with plain percentage rules pays for a
//! handful of indexed lookups per conversion.
//!
//! On PostgreSQL, when a rule has a cap, the credited partners are locked
//! (advisory locks, in id order so two conversions never deadlock) before
//! their earnings are read: two nodes must not both pay the last of a cap.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::{Any, AnyConnection, Transaction};
use tribute_core::commission::conditions::Field;
use tribute_core::commission::{
    plan, Accrual, CapPeriod, ConversionFacts, Credited, Earned, OverridePlan, PartnerFacts,
    Planned, RewardRule, RuleEvent, RuleTerms,
};
use tribute_core::ids::{ConversionId, LinkId, PartnerId, ProgramId, RewardRuleId};
use tribute_core::ledger::Position;
use tribute_core::tracking::{Conversion, ConversionStatus};

use crate::ledger::{append, save_position, EntryLinks, PositionRow, POSITION_COLUMNS};
use crate::{corrupt, from_ms, to_ms, Backend, Context, Result, StoreError};

/// A program's commission settings, read with its rules.
pub(crate) struct ProgramTerms {
    pub overrides: Option<OverridePlan>,
    pub hold_days: i64,
}

pub(crate) async fn program_terms(
    conn: &mut AnyConnection,
    program: &ProgramId,
) -> Result<ProgramTerms> {
    let (levels, hold_days): (String, i64) =
        sqlx::query_as("SELECT override_levels_bps, hold_days FROM programs WHERE id = $1")
            .bind(program.as_str())
            .fetch_optional(&mut *conn)
            .await
            .context("loading program terms")?
            .ok_or(StoreError::NotFound("program"))?;
    let terms = tribute_core::program::CommissionTerms {
        override_levels_bps: serde_json::from_str(&levels)
            .map_err(|e| StoreError::Corrupt(format!("override levels: {e}")))?,
        payout_min_amount: 0,
    };
    let overrides = terms.overrides().map_err(corrupt("override levels"))?;
    Ok(ProgramTerms {
        overrides,
        hold_days,
    })
}

/// The current version of every live rule of `program`.
pub(crate) async fn current_rules(
    conn: &mut AnyConnection,
    program: &ProgramId,
) -> Result<Vec<RewardRule>> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT r.id, r.version, r.terms FROM reward_rules r WHERE r.program_id = $1 \
         AND r.deleted_at IS NULL AND r.version = \
         (SELECT MAX(version) FROM reward_rules v WHERE v.id = r.id) ORDER BY r.id",
    )
    .bind(program.as_str())
    .fetch_all(&mut *conn)
    .await
    .context("loading reward rules")?;
    rows.into_iter()
        .map(|(id, version, terms)| {
            let terms: Value = serde_json::from_str(&terms)
                .map_err(|e| StoreError::Corrupt(format!("rule terms: {e}")))?;
            Ok(RewardRule {
                id: RewardRuleId::parse(&id).map_err(corrupt("rule id"))?,
                program_id: program.clone(),
                version: u32::try_from(version)
                    .map_err(|e| StoreError::Corrupt(format!("rule version: {e}")))?,
                terms: RuleTerms::from_json(&terms).map_err(corrupt("rule terms"))?,
            })
        })
        .collect()
}

/// Which costly facts the rules read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Needs {
    pub totals: bool,
    pub caps: bool,
    pub links: bool,
}

impl Needs {
    pub fn of(rules: &[RewardRule]) -> Self {
        let reads_totals =
            |f: &Field| matches!(f, Field::PartnerRevenue | Field::PartnerConversions);
        Self {
            totals: rules.iter().any(|r| {
                r.terms
                    .conditions
                    .as_ref()
                    .is_some_and(|c| c.mentions(&reads_totals))
            }),
            caps: rules.iter().any(|r| r.terms.cap.is_some()),
            links: rules
                .iter()
                .any(|r| matches!(r.terms.scope, tribute_core::commission::Scope::Link(_))),
        }
    }
}

/// A partner's facts as the rules see them at `at`.
pub(crate) async fn partner_facts(
    conn: &mut AnyConnection,
    program: &ProgramId,
    partner: &PartnerId,
    needs: Needs,
    at: DateTime<Utc>,
) -> Result<Option<(PartnerFacts, Option<PartnerId>)>> {
    // tier, group, team lead, the tier's multiplier
    type FactsRow = (Option<String>, Option<String>, Option<String>, Option<i64>);
    let row: Option<FactsRow> = sqlx::query_as(
        "SELECT p.tier, p.group_name, p.team_lead_id, t.multiplier_bps FROM partners p \
             LEFT JOIN tiers t ON t.program_id = p.program_id AND t.name = p.tier \
             WHERE p.id = $1 AND p.program_id = $2",
    )
    .bind(partner.as_str())
    .bind(program.as_str())
    .fetch_optional(&mut *conn)
    .await
    .context("loading partner facts")?;
    let Some((tier, group, lead, multiplier)) = row else {
        return Ok(None);
    };
    let mut f = PartnerFacts::new(partner.clone());
    f.tier = tier;
    f.group = group;
    if let Some(m) = multiplier {
        f.multiplier_bps =
            u32::try_from(m).map_err(|e| StoreError::Corrupt(format!("tier multiplier: {e}")))?;
    }
    if needs.totals {
        let (revenue, count): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT), COUNT(*) \
             FROM conversion_credits WHERE partner_id = $1",
        )
        .bind(partner.as_str())
        .fetch_one(&mut *conn)
        .await
        .context("summing partner totals")?;
        f.revenue_to_date = revenue;
        f.conversions_to_date = count;
    }
    if needs.caps {
        f.earned = earned(conn, partner, at).await?;
    }
    let lead = lead
        .as_deref()
        .map(PartnerId::parse)
        .transpose()
        .map_err(corrupt("team lead"))?;
    Ok(Some((f, lead)))
}

/// What `partner` has earned in commissions (not overrides, net of voids)
/// in each cap period holding `at`.
async fn earned(
    conn: &mut AnyConnection,
    partner: &PartnerId,
    at: DateTime<Utc>,
) -> Result<Earned> {
    let mut out = Earned::default();
    for period in [
        CapPeriod::Day,
        CapPeriod::Week,
        CapPeriod::Month,
        CapPeriod::AllTime,
    ] {
        let from = period.start(at).map(to_ms).unwrap_or(i64::MIN);
        let (sum,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(accrued - voided), 0) AS BIGINT) FROM commissions \
             WHERE partner_id = $1 AND kind = 'commission' AND occurred_at >= $2",
        )
        .bind(partner.as_str())
        .bind(from)
        .fetch_one(&mut *conn)
        .await
        .context("summing earnings for a cap")?;
        match period {
            CapPeriod::Day => out.day = sum,
            CapPeriod::Week => out.week = sum,
            CapPeriod::Month => out.month = sum,
            CapPeriod::AllTime => out.all_time = sum,
        }
    }
    Ok(out)
}

/// The team leads above the credited partners (each given with its own
/// lead), as far up as `depth`; none when the program pays no overrides.
pub(crate) async fn team_leads(
    conn: &mut AnyConnection,
    program: &ProgramId,
    start: Vec<(PartnerId, Option<PartnerId>)>,
    depth: usize,
) -> Result<HashMap<PartnerId, PartnerId>> {
    let mut leads: HashMap<PartnerId, PartnerId> = HashMap::new();
    if depth == 0 {
        return Ok(leads);
    }
    let mut frontier: Vec<PartnerId> = Vec::new();
    for (p, lead) in start {
        if let Some(l) = lead {
            leads.insert(p, l.clone());
            frontier.push(l);
        }
    }
    for _ in 1..depth {
        let mut next = Vec::new();
        for p in frontier {
            if leads.contains_key(&p) {
                continue;
            }
            let lead: Option<(Option<String>,)> = sqlx::query_as(
                "SELECT team_lead_id FROM partners WHERE id = $1 AND program_id = $2",
            )
            .bind(p.as_str())
            .bind(program.as_str())
            .fetch_optional(&mut *conn)
            .await
            .context("walking the team chain")?;
            if let Some((Some(l),)) = lead {
                let l = PartnerId::parse(&l).map_err(corrupt("team lead"))?;
                leads.insert(p, l.clone());
                next.push(l);
            }
        }
        frontier = next;
    }
    Ok(leads)
}

/// Lock partners' earnings for the rest of the transaction (PostgreSQL).
pub(crate) async fn lock_partners(
    conn: &mut AnyConnection,
    backend: Backend,
    partners: &mut [PartnerId],
) -> Result<()> {
    if backend != Backend::Postgres {
        return Ok(()); // SQLite's write transaction already excludes every other writer
    }
    partners.sort();
    for p in partners.iter() {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::identity::advisory_key_of(p.as_str()))
            .execute(&mut *conn)
            .await
            .context("locking a partner's earnings")?;
    }
    Ok(())
}

/// The conversion as the rules see it.
pub(crate) async fn conversion_facts(
    conn: &mut AnyConnection,
    c: &Conversion,
) -> Result<ConversionFacts> {
    let first_payment_at = match &c.customer_key {
        Some(key) => {
            let (first,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(occurred_at) FROM conversions WHERE program_id = $1 \
                 AND customer_key = $2 AND status IN ('approved', 'pending') AND id <> $3",
            )
            .bind(c.program_id.as_str())
            .bind(key.as_str())
            .bind(c.id.as_str())
            .fetch_one(&mut *conn)
            .await
            .context("finding the customer's first payment")?;
            first
                .map(from_ms)
                .transpose()?
                .filter(|f| *f < c.occurred_at)
        }
        None => None,
    };
    let text = |k: &str| c.metadata.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(ConversionFacts {
        program_id: c.program_id.clone(),
        event: RuleEvent::Sale,
        value: c.value,
        products: c.products.clone(),
        first_payment_at,
        paid_at: c.occurred_at,
        metadata: c.metadata.clone(),
        customer_country: text("country"),
        customer_source: text("source"),
        units: 1,
    })
}

/// The links of the click touches in `touch_ids` (click ids).
async fn links_of(conn: &mut AnyConnection, touch_ids: &[&str]) -> Result<Vec<LinkId>> {
    let mut out = Vec::new();
    for id in touch_ids {
        let row: Option<(String,)> = sqlx::query_as("SELECT link_id FROM clicks WHERE id = $1")
            .bind(*id)
            .fetch_optional(&mut *conn)
            .await
            .context("loading a touch's link")?;
        if let Some((l,)) = row {
            out.push(LinkId::parse(&l).map_err(corrupt("click link"))?);
        }
    }
    Ok(out)
}

/// Everything needed to plan a sale's commissions for `credited`
/// (partner, weight) pairs: rules, facts, team chain.
pub(crate) async fn plan_sale(
    conn: &mut AnyConnection,
    backend: Backend,
    c: &Conversion,
    credited: &[(PartnerId, u64)],
    rules: &[RewardRule],
    terms: &ProgramTerms,
    manual: bool,
) -> Result<Vec<Planned>> {
    let needs = Needs::of(rules);
    if needs.caps {
        let mut ids: Vec<PartnerId> = credited.iter().map(|(p, _)| p.clone()).collect();
        lock_partners(conn, backend, &mut ids).await?;
    }
    let facts = conversion_facts(conn, c).await?;
    let mut partners = Vec::new();
    let mut starts = Vec::new();
    for (p, weight) in credited {
        let Some((mut f, lead)) =
            partner_facts(conn, &c.program_id, p, needs, c.occurred_at).await?
        else {
            continue;
        };
        if needs.links {
            let touches: Vec<&str> = c
                .attribution
                .credits
                .iter()
                .filter(|t| &t.partner_id == p)
                .map(|t| t.touch_id.as_str())
                .collect();
            f.links = links_of(conn, &touches).await?;
        }
        starts.push((p.clone(), lead));
        partners.push(Credited {
            partner: f,
            weight: *weight,
        });
    }
    let depth = terms.overrides.as_ref().map_or(0, |o| o.depth());
    let leads = team_leads(conn, &c.program_id, starts, depth).await?;
    let accrual = Accrual {
        program_id: &c.program_id,
        conversion_id: Some(&c.id),
        attribution: (!manual).then_some(&c.attribution),
        facts: &facts,
        credited: &partners,
        rules,
        overrides: terms.overrides.as_ref(),
    };
    plan(&accrual, |p| leads.get(p).cloned())
        .map_err(|e| StoreError::Corrupt(format!("planning commissions: {e}")))
}

/// What a planned commission pays on, as written beside it.
pub(crate) struct Source<'a> {
    pub program_id: &'a ProgramId,
    pub conversion_id: Option<&'a ConversionId>,
    pub person_id: Option<&'a str>,
    /// `sale`, `lead` or `click`.
    pub event: &'static str,
    /// What makes a lead or a run of clicks paid once (unique).
    pub source_key: Option<String>,
    pub currency: &'a str,
    pub occurred_at: DateTime<Utc>,
}

impl<'a> Source<'a> {
    pub fn sale(c: &'a Conversion) -> Self {
        Self {
            program_id: &c.program_id,
            conversion_id: Some(&c.id),
            person_id: c.person_id.as_ref().map(|p| p.as_str()),
            event: "sale",
            source_key: None,
            currency: c.value.currency.as_str(),
            occurred_at: c.occurred_at,
        }
    }
}

/// Write planned commissions and their accrual entries.
pub(crate) async fn write_planned(
    conn: &mut AnyConnection,
    src: &Source<'_>,
    planned: &[Planned],
    held: bool,
    hold_days: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let payable_at = src.occurred_at + Duration::days(hold_days);
    for (n, p) in planned.iter().enumerate() {
        // One source key per source: the commission carries it, its
        // overrides carry it with their position (still unique).
        let key = src.source_key.as_ref().map(|k| {
            if n == 0 {
                k.clone()
            } else {
                format!("{k}#{n}")
            }
        });
        sqlx::query(
            "INSERT INTO commissions (id, program_id, partner_id, kind, event, level, \
             conversion_id, person_id, source_key, derives_from, currency, accrued, pending, \
             posted, voided, held, payable_at, status, rule_id, rule_version, explanation, \
             payout_id, occurred_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $12, 0, 0, $13, $14, $15, $16, $17, $18, NULL, $19, $20)",
        )
        .bind(p.id.as_str())
        .bind(src.program_id.as_str())
        .bind(p.partner_id.as_str())
        .bind(p.kind.as_str())
        .bind(src.event)
        .bind(i64::from(p.level))
        .bind(src.conversion_id.map(|x| x.as_str()))
        .bind(src.person_id)
        .bind(key)
        .bind(p.derives_from.as_ref().map(|x| x.as_str()))
        .bind(src.currency)
        .bind(p.amount.minor)
        .bind(i64::from(held))
        .bind(to_ms(payable_at))
        .bind(if held { "held" } else { "pending" })
        .bind(p.rule.as_ref().map(|(id, _)| id.as_str()))
        .bind(p.rule.as_ref().map(|(_, v)| i64::from(*v)))
        .bind(p.explanation.to_string())
        .bind(to_ms(src.occurred_at))
        .bind(to_ms(now))
        .execute(&mut *conn)
        .await
        .context("inserting a commission")?;
        let links = EntryLinks {
            conversion_id: src.conversion_id,
            payout_id: None,
        };
        append(conn, src.program_id, &p.entry, links, now).await?;
    }
    Ok(())
}

/// Accrue what `c` earns its credited partners and their team leads, in the
/// transaction that writes it. A browser's report (pending) accrues on
/// hold; a rejected or superseded one accrues nothing.
pub(crate) async fn accrue_conversion(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    c: &Conversion,
) -> Result<()> {
    let held = match c.status {
        ConversionStatus::Approved => false,
        ConversionStatus::Pending => true,
        ConversionStatus::Rejected | ConversionStatus::Superseded => return Ok(()),
    };
    if c.attribution.partners.iter().all(|p| p.weight == 0) {
        return Ok(());
    }
    let rules = current_rules(tx, &c.program_id).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let terms = program_terms(tx, &c.program_id).await?;
    let credited: Vec<(PartnerId, u64)> = c
        .attribution
        .partners
        .iter()
        .map(|p| (p.partner_id.clone(), p.weight))
        .collect();
    let planned = plan_sale(tx, backend, c, &credited, &rules, &terms, false).await?;
    write_planned(
        tx,
        &Source::sale(c),
        &planned,
        held,
        terms.hold_days,
        c.received_at,
    )
    .await
}

/// The positions of a conversion's commissions and overrides, in the order
/// they were accrued (entry ids grow), so reversals list in that order too.
pub(crate) async fn positions_of(
    conn: &mut AnyConnection,
    conversion_id: &str,
) -> Result<Vec<(Position, PositionRow)>> {
    let rows: Vec<PositionRow> = sqlx::query_as(&format!(
        "SELECT {POSITION_COLUMNS} FROM commissions c WHERE conversion_id = $1 \
         ORDER BY (SELECT MIN(e.id) FROM ledger_entries e WHERE e.commission_id = c.id), id"
    ))
    .bind(conversion_id)
    .fetch_all(&mut *conn)
    .await
    .context("loading a conversion's commissions")?;
    rows.into_iter().map(|r| Ok((r.position()?, r))).collect()
}

/// Void everything still open of a conversion's commissions (a browser
/// report superseded, a conversion rejected).
pub(crate) async fn void_conversion(
    tx: &mut Transaction<'static, Any>,
    conversion_id: &str,
    memo: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let cid = ConversionId::parse(conversion_id).map_err(corrupt("conversion id"))?;
    for (mut p, row) in positions_of(tx, conversion_id).await? {
        let open = p.open();
        if let Some(entry) = p
            .void(open, memo)
            .map_err(|e| StoreError::Corrupt(format!("voiding: {e}")))?
        {
            let links = EntryLinks {
                conversion_id: Some(&cid),
                payout_id: None,
            };
            append(tx, &p.program_id, &entry, links, now).await?;
            save_position(tx, &p, row.held != 0, row.payout_id.is_some()).await?;
        }
    }
    Ok(())
}
