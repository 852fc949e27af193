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
use tribute_core::commission::conditions::Field;
use tribute_core::commission::{
    plan, Accrual, CapPeriod, ConversionFacts, Credited, Earned, OverridePlan, PartnerFacts,
    Planned, RewardRule, RuleEvent, RuleTerms,
};
use tribute_core::ids::{ConversionId, LinkId, PartnerId, ProgramId, RewardRuleId};
use tribute_core::ledger::Position;
use tribute_core::tracking::{Conversion, ConversionStatus};

use crate::db::{fetch_optional, Arg, Db, DbContext, Row};
use crate::ledger::{append, append_all, save_position, EntryLinks, PositionRow, POSITION_COLUMNS};
use crate::sql::{multi_row_insert, Params, INSERT_ROWS};
use crate::{corrupt, from_ms, to_ms, Backend, Result, StoreError};

/// The one row an aggregate returns.
fn one_row<'r>(rows: &'r [Row], what: &str) -> Result<&'r Row> {
    rows.first()
        .ok_or_else(|| StoreError::Corrupt(format!("no row for {what}")))
}

/// A program's commission settings, read with its rules.
pub(crate) struct ProgramTerms {
    pub overrides: Option<OverridePlan>,
    pub hold_days: i64,
}

/// A program's live rules (each at its current version) and its
/// commission settings, read together: what every accrual starts from.
pub(crate) struct ProgramRules {
    pub rules: Vec<RewardRule>,
    pub terms: ProgramTerms,
}

pub(crate) async fn program_rules(conn: &mut dyn Db, program: &ProgramId) -> Result<ProgramRules> {
    let rows = conn
        .fetch(
            "SELECT p.override_levels_bps, p.hold_days, r.id, r.version, r.terms FROM programs p \
             LEFT JOIN reward_rules r ON r.program_id = p.id AND r.deleted_at IS NULL AND r.version = \
             (SELECT MAX(version) FROM reward_rules v WHERE v.id = r.id) WHERE p.id = $1 ORDER BY r.id",
            vec![program.as_str().into()],
        )
        .await
        .context("loading reward rules")?;
    let Some(first) = rows.first() else {
        return Err(StoreError::NotFound("program"));
    };
    let (levels, hold_days) = (first.text(0)?, first.int(1)?);
    let terms = tribute_core::program::CommissionTerms {
        override_levels_bps: serde_json::from_str(levels)
            .map_err(|e| StoreError::Corrupt(format!("override levels: {e}")))?,
        payout_min_amount: 0,
    };
    let terms = ProgramTerms {
        overrides: terms.overrides().map_err(corrupt("override levels"))?,
        hold_days,
    };
    let mut rules = Vec::new();
    for row in &rows {
        let (Some(id), Some(version), Some(terms)) =
            (row.opt_text(2)?, row.opt_int(3)?, row.opt_text(4)?)
        else {
            continue; // a program without rules
        };
        rules.push({
            let terms: Value = serde_json::from_str(terms)
                .map_err(|e| StoreError::Corrupt(format!("rule terms: {e}")))?;
            RewardRule {
                id: RewardRuleId::parse(id).map_err(corrupt("rule id"))?,
                program_id: program.clone(),
                version: u32::try_from(version)
                    .map_err(|e| StoreError::Corrupt(format!("rule version: {e}")))?,
                terms: RuleTerms::from_json(&terms).map_err(corrupt("rule terms"))?,
            }
        });
    }
    Ok(ProgramRules { rules, terms })
}

/// The current version of every live rule of `program` (none for an
/// unknown program).
pub(crate) async fn current_rules(
    conn: &mut dyn Db,
    program: &ProgramId,
) -> Result<Vec<RewardRule>> {
    match program_rules(conn, program).await {
        Ok(p) => Ok(p.rules),
        Err(StoreError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
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

/// The team leads above a partner as far as read with its facts: its lead
/// and its lead's lead, nearest first (fewer when the chain ends sooner).
pub(crate) type Chain = Vec<PartnerId>;

/// A partner's facts as the rules see them at `at`, and its team chain's
/// first two levels (read in the same statement: most programs pay no
/// deeper overrides).
pub(crate) async fn partner_facts(
    conn: &mut dyn Db,
    program: &ProgramId,
    partner: &PartnerId,
    needs: Needs,
    at: DateTime<Utc>,
    recomputing: Option<&ConversionId>,
) -> Result<Option<(PartnerFacts, Chain)>> {
    let row = fetch_optional(
        conn,
        "SELECT p.tier, p.group_name, p.team_lead_id, t.multiplier_bps, l.team_lead_id \
         FROM partners p LEFT JOIN tiers t ON t.program_id = p.program_id AND t.name = p.tier \
         LEFT JOIN partners l ON l.id = p.team_lead_id AND l.program_id = p.program_id \
         WHERE p.id = $1 AND p.program_id = $2",
        vec![partner.as_str().into(), program.as_str().into()],
    )
    .await
    .context("loading partner facts")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut f = PartnerFacts::new(partner.clone());
    f.tier = row.opt_text(0)?.map(str::to_owned);
    f.group = row.opt_text(1)?.map(str::to_owned);
    let (lead, lead_of_lead) = (row.opt_text(2)?, row.opt_text(4)?);
    if let Some(m) = row.opt_int(3)? {
        f.multiplier_bps =
            u32::try_from(m).map_err(|e| StoreError::Corrupt(format!("tier multiplier: {e}")))?;
    }
    if needs.totals {
        let rows = conn
            .fetch(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT), COUNT(*) \
                 FROM conversion_credits WHERE partner_id = $1",
                vec![partner.as_str().into()],
            )
            .await
            .context("summing partner totals")?;
        let totals = one_row(&rows, "partner totals")?;
        f.revenue_to_date = totals.int(0)?;
        f.conversions_to_date = totals.int(1)?;
    }
    if needs.caps {
        f.earned = earned(conn, partner, at, recomputing).await?;
    }
    // The lead's lead only counts through the lead (a dangling lead id ends
    // the chain there).
    let chain = [lead, lead_of_lead]
        .into_iter()
        .map_while(|l| l)
        .map(|l| PartnerId::parse(l).map_err(corrupt("team lead")))
        .collect::<Result<Chain>>()?;
    Ok(Some((f, chain)))
}

/// What `partner` has earned in commissions (not overrides, net of voids)
/// in each cap period holding `at`, leaving out the commissions of the
/// conversion being planned again (`recomputing`): a cap is not spent by
/// the very commission it limits.
async fn earned(
    conn: &mut dyn Db,
    partner: &PartnerId,
    at: DateTime<Utc>,
    recomputing: Option<&ConversionId>,
) -> Result<Earned> {
    let mut out = Earned::default();
    for period in [
        CapPeriod::Day,
        CapPeriod::Week,
        CapPeriod::Month,
        CapPeriod::AllTime,
    ] {
        let from = period.start(at).map(to_ms).unwrap_or(i64::MIN);
        let until = period.end(at).map(to_ms).unwrap_or(i64::MAX);
        let rows = conn
            .fetch(
                "SELECT CAST(COALESCE(SUM(accrued - voided), 0) AS BIGINT) FROM commissions \
                 WHERE partner_id = $1 AND kind = 'commission' AND occurred_at >= $2 \
                 AND occurred_at < $4 \
                 AND ($3 IS NULL OR conversion_id IS NULL OR conversion_id <> $3)",
                vec![
                    partner.as_str().into(),
                    from.into(),
                    recomputing.map(|c| c.as_str()).into(),
                    until.into(),
                ],
            )
            .await
            .context("summing earnings for a cap")?;
        let sum = one_row(&rows, "earnings for a cap")?.int(0)?;
        match period {
            CapPeriod::Day => out.day = sum,
            CapPeriod::Week => out.week = sum,
            CapPeriod::Month => out.month = sum,
            CapPeriod::AllTime => out.all_time = sum,
        }
    }
    Ok(out)
}

/// The team leads above the credited partners (each given with the chain
/// read with its facts), as far up as `depth`; none when the program pays
/// no overrides. Only chains deeper than two levels are walked further.
pub(crate) async fn team_leads(
    conn: &mut dyn Db,
    program: &ProgramId,
    start: Vec<(PartnerId, Chain)>,
    depth: usize,
) -> Result<HashMap<PartnerId, PartnerId>> {
    let mut leads: HashMap<PartnerId, PartnerId> = HashMap::new();
    if depth == 0 {
        return Ok(leads);
    }
    let mut frontier: Vec<PartnerId> = Vec::new();
    for (p, chain) in start {
        let mut below = p;
        for l in chain.iter().take(depth) {
            leads.entry(below).or_insert_with(|| l.clone());
            below = l.clone();
        }
        // A chain read to its second level may go on above it.
        if chain.len() == 2 {
            frontier.push(below);
        }
    }
    for _ in 2..depth {
        let mut next = Vec::new();
        for p in frontier {
            if leads.contains_key(&p) {
                continue;
            }
            let row = fetch_optional(
                conn,
                "SELECT team_lead_id FROM partners WHERE id = $1 AND program_id = $2",
                vec![p.as_str().into(), program.as_str().into()],
            )
            .await
            .context("walking the team chain")?;
            if let Some(l) = row.as_ref().map(|r| r.opt_text(0)).transpose()?.flatten() {
                let l = PartnerId::parse(l).map_err(corrupt("team lead"))?;
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
    conn: &mut dyn Db,
    backend: Backend,
    partners: &mut [PartnerId],
) -> Result<()> {
    if backend != Backend::Postgres {
        return Ok(()); // SQLite's write transaction already excludes every other writer
    }
    partners.sort();
    for p in partners.iter() {
        conn.execute(
            "SELECT pg_advisory_xact_lock($1)",
            vec![crate::identity::advisory_key_of(p.as_str()).into()],
        )
        .await
        .context("locking a partner's earnings")?;
    }
    Ok(())
}

/// The conversion as the rules see it.
pub(crate) async fn conversion_facts(conn: &mut dyn Db, c: &Conversion) -> Result<ConversionFacts> {
    let first_payment_at = match &c.customer_key {
        Some(key) => {
            let rows = conn
                .fetch(
                    "SELECT MIN(occurred_at) FROM conversions WHERE program_id = $1 \
                     AND customer_key = $2 AND status IN ('approved', 'pending') AND id <> $3",
                    vec![
                        c.program_id.as_str().into(),
                        key.as_str().into(),
                        c.id.as_str().into(),
                    ],
                )
                .await
                .context("finding the customer's first payment")?;
            one_row(&rows, "the customer's first payment")?
                .opt_int(0)?
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
        reported_currency: c
            .fx
            .as_ref()
            .map_or(c.value.currency, |f| f.original.currency),
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
async fn links_of(conn: &mut dyn Db, touch_ids: &[&str]) -> Result<Vec<LinkId>> {
    let mut out = Vec::new();
    for id in touch_ids {
        let row = fetch_optional(
            conn,
            "SELECT link_id FROM clicks WHERE id = $1",
            vec![Arg::Text(id)],
        )
        .await
        .context("loading a touch's link")?;
        if let Some(row) = row {
            out.push(LinkId::parse(row.text(0)?).map_err(corrupt("click link"))?);
        }
    }
    Ok(out)
}

/// Everything needed to plan a sale's commissions for `credited`
/// (partner, weight) pairs: rules, facts, team chain.
pub(crate) async fn plan_sale(
    conn: &mut dyn Db,
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
        let Some((mut f, chain)) =
            partner_facts(conn, &c.program_id, p, needs, c.occurred_at, Some(&c.id)).await?
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
        starts.push((p.clone(), chain));
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

const COMMISSION_COLUMNS: [&str; 24] = [
    "id",
    "program_id",
    "partner_id",
    "kind",
    "event",
    "level",
    "conversion_id",
    "person_id",
    "source_key",
    "derives_from",
    "currency",
    "accrued",
    "pending",
    "posted",
    "voided",
    "held",
    "payable_at",
    "status",
    "rule_id",
    "rule_version",
    "explanation",
    "payout_id",
    "occurred_at",
    "created_at",
];

/// Write planned commissions and their accrual entries: one multi-row
/// INSERT for the commissions, then their entries and lines.
pub(crate) async fn write_planned(
    conn: &mut dyn Db,
    src: &Source<'_>,
    planned: &[Planned],
    held: bool,
    hold_days: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let payable_at = to_ms(src.occurred_at + Duration::days(hold_days));
    let rows: Vec<(usize, &Planned)> = planned.iter().enumerate().collect();
    for chunk in rows.chunks(INSERT_ROWS) {
        let sql = multi_row_insert(
            "commissions",
            &COMMISSION_COLUMNS,
            chunk.len(),
            "",
            Params::Numbered,
        );
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * COMMISSION_COLUMNS.len());
        for (n, p) in chunk {
            // One source key per source: the commission carries it, its
            // overrides carry it with their position (still unique).
            let key = src.source_key.as_ref().map(|k| {
                if *n == 0 {
                    k.clone()
                } else {
                    format!("{k}#{n}")
                }
            });
            args.extend([
                p.id.as_str().into(),
                src.program_id.as_str().into(),
                p.partner_id.as_str().into(),
                p.kind.as_str().into(),
                src.event.into(),
                i64::from(p.level).into(),
                src.conversion_id.map(|x| x.as_str()).into(),
                src.person_id.into(),
                key.into(),
                p.derives_from.as_ref().map(|x| x.as_str()).into(),
                src.currency.into(),
                p.amount.minor.into(),
                p.amount.minor.into(),
                0i64.into(),
                0i64.into(),
                i64::from(held).into(),
                payable_at.into(),
                (if held { "held" } else { "pending" }).into(),
                p.rule.as_ref().map(|(id, _)| id.as_str()).into(),
                p.rule.as_ref().map(|(_, v)| i64::from(*v)).into(),
                p.explanation.to_string().into(),
                Arg::Null,
                to_ms(src.occurred_at).into(),
                to_ms(now).into(),
            ]);
        }
        conn.execute(&sql, args)
            .await
            .context("inserting commissions")?;
    }
    let links = EntryLinks {
        conversion_id: src.conversion_id,
        payout_id: None,
    };
    let entries: Vec<_> = planned.iter().map(|p| (&p.entry, links)).collect();
    append_all(conn, src.program_id, &entries, now).await?;
    Ok(())
}

/// Accrue what `c` earns its credited partners and their team leads, in the
/// transaction that writes it. A browser's report (pending) accrues on
/// hold, and so does one the fraud rules hold for review (`fraud_hold`); a
/// rejected or superseded one accrues nothing.
pub(crate) async fn accrue_conversion(
    tx: &mut dyn Db,
    backend: Backend,
    c: &Conversion,
    fraud_hold: bool,
) -> Result<()> {
    let held = match c.status {
        ConversionStatus::Approved => fraud_hold,
        ConversionStatus::Pending => true,
        ConversionStatus::Rejected | ConversionStatus::Superseded => return Ok(()),
    };
    if c.attribution.partners.iter().all(|p| p.weight == 0) {
        return Ok(());
    }
    let ProgramRules { rules, terms } = program_rules(tx, &c.program_id).await?;
    if rules.is_empty() {
        return Ok(());
    }
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
    conn: &mut dyn Db,
    conversion_id: &str,
) -> Result<Vec<(Position, PositionRow)>> {
    let sql = format!(
        "SELECT {POSITION_COLUMNS} FROM commissions c WHERE conversion_id = $1 \
         ORDER BY (SELECT MIN(e.id) FROM ledger_entries e WHERE e.commission_id = c.id), id"
    );
    let rows = conn
        .fetch(&sql, vec![conversion_id.into()])
        .await
        .context("loading a conversion's commissions")?;
    rows.iter()
        .map(|r| {
            let row = PositionRow::from_db(r)?;
            Ok((row.position()?, row))
        })
        .collect()
}

/// Void everything still open of a conversion's commissions (a browser
/// report superseded, a conversion rejected).
pub(crate) async fn void_conversion(
    tx: &mut dyn Db,
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
