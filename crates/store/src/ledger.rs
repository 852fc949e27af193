//! The ledger as stored: journal entries and their lines, appended and
//! never changed, and the commission positions they move.
//!
//! Everything here writes on a connection the caller holds inside its
//! transaction: an entry is written with the conversion, refund, release or
//! payout that causes it, or not at all. Entries come from
//! `tribute_core::ledger`, which only makes balanced ones; this module
//! stores them as they are and reads them back through the same check.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use tribute_core::ids::{CommissionId, ConversionId, EntryId, PartnerId, PayoutId, ProgramId};
use tribute_core::ledger::{
    Account, EntryKind, JournalEntry, Line, PartnerAccount, PartnerBalance, Position,
    ProgramAccount,
};

use crate::db::{Arg, Db, DbContext, Row};
use crate::outbox::{emit, Pending};
use crate::sql::{multi_row_insert, Params, INSERT_ROWS};
use crate::{corrupt, from_ms, to_ms, Context, Result, Store, StoreError};
use tribute_core::webhook::{CommissionData, EventKind, PayoutData};

pub(crate) fn kind_str(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Accrual => "accrual",
        EntryKind::Override => "override",
        EntryKind::Post => "post",
        EntryKind::Void => "void",
        EntryKind::Payout => "payout",
        EntryKind::Adjustment => "adjustment",
    }
}

fn parse_kind(s: &str) -> Result<EntryKind> {
    Ok(match s {
        "accrual" => EntryKind::Accrual,
        "override" => EntryKind::Override,
        "post" => EntryKind::Post,
        "void" => EntryKind::Void,
        "payout" => EntryKind::Payout,
        "adjustment" => EntryKind::Adjustment,
        other => return Err(StoreError::Corrupt(format!("entry kind {other}"))),
    })
}

fn account_parts(a: &Account) -> (Option<&str>, &'static str) {
    match a {
        Account::Partner(p, acc) => (
            Some(p.as_str()),
            match acc {
                PartnerAccount::Pending => "pending",
                PartnerAccount::Payable => "payable",
                PartnerAccount::Paid => "paid",
            },
        ),
        Account::Program(_, acc) => (
            None,
            match acc {
                ProgramAccount::Expense => "expense",
                ProgramAccount::Payouts => "payouts",
            },
        ),
    }
}

fn parse_account(program: &ProgramId, partner: Option<&str>, account: &str) -> Result<Account> {
    let partner_acc = |a| -> Result<Account> {
        let p = partner
            .ok_or_else(|| StoreError::Corrupt(format!("{account} line without partner")))?;
        Ok(Account::Partner(
            PartnerId::parse(p).map_err(corrupt("ledger partner"))?,
            a,
        ))
    };
    match account {
        "pending" => partner_acc(PartnerAccount::Pending),
        "payable" => partner_acc(PartnerAccount::Payable),
        "paid" => partner_acc(PartnerAccount::Paid),
        "expense" => Ok(Account::Program(program.clone(), ProgramAccount::Expense)),
        "payouts" => Ok(Account::Program(program.clone(), ProgramAccount::Payouts)),
        other => Err(StoreError::Corrupt(format!("ledger account {other}"))),
    }
}

/// A fresh entry id that sorts after every id this process made before:
/// 10 base62 digits of a strictly increasing microsecond clock, then 12
/// random characters. Entries list in the order they were made (an
/// accrual before its overrides, a release after its accrual) even within
/// one millisecond; across nodes they interleave by time.
fn next_entry_id() -> EntryId {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = Utc::now().timestamp_micros().max(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    let micros = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = micros as u64;
    let mut out = [b'0'; 10];
    for d in out.iter_mut().rev() {
        *d = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    let text = format!(
        "{}_{}{}",
        EntryId::PREFIX,
        std::str::from_utf8(&out).expect("base62 digits are ASCII"),
        tribute_core::ids::random_base62(12)
    );
    EntryId::parse(&text).expect("a well-formed entry id")
}

/// What an entry is linked to besides its commission.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EntryLinks<'a> {
    pub conversion_id: Option<&'a ConversionId>,
    pub payout_id: Option<&'a PayoutId>,
}

/// Append `entry` of `program` at `at`; returns its id.
pub(crate) async fn append(
    conn: &mut dyn Db,
    program: &ProgramId,
    entry: &JournalEntry,
    links: EntryLinks<'_>,
    at: DateTime<Utc>,
) -> Result<EntryId> {
    let mut ids = append_all(conn, program, &[(entry, links)], at).await?;
    Ok(ids.remove(0))
}

const ENTRY_COLUMNS: [&str; 8] = [
    "id",
    "program_id",
    "kind",
    "commission_id",
    "conversion_id",
    "payout_id",
    "memo",
    "at",
];
const LINE_COLUMNS: [&str; 7] = [
    "entry_id",
    "line_no",
    "program_id",
    "partner_id",
    "account",
    "amount",
    "at",
];

/// Append `entries` of `program` at `at`, in order (their ids grow), with
/// a few multi-row INSERTs rather than a statement per entry and line.
pub(crate) async fn append_all(
    conn: &mut dyn Db,
    program: &ProgramId,
    entries: &[(&JournalEntry, EntryLinks<'_>)],
    at: DateTime<Utc>,
) -> Result<Vec<EntryId>> {
    let ids: Vec<EntryId> = entries.iter().map(|_| next_entry_id()).collect();
    let when = at;
    let at = to_ms(at);
    for chunk in ids
        .iter()
        .zip(entries)
        .collect::<Vec<_>>()
        .chunks(INSERT_ROWS)
    {
        let sql = multi_row_insert(
            "ledger_entries",
            &ENTRY_COLUMNS,
            chunk.len(),
            "",
            Params::Numbered,
        );
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * ENTRY_COLUMNS.len());
        for (id, (entry, links)) in chunk {
            args.extend([
                id.as_str().into(),
                program.as_str().into(),
                kind_str(entry.kind()).into(),
                entry.commission_id().map(|c| c.as_str()).into(),
                links.conversion_id.map(|c| c.as_str()).into(),
                links.payout_id.map(|p| p.as_str()).into(),
                entry.memo().into(),
                at.into(),
            ]);
        }
        conn.execute(&sql, args)
            .await
            .context("appending ledger entries")?;
    }
    let lines: Vec<(&EntryId, usize, &Line)> = ids
        .iter()
        .zip(entries)
        .flat_map(|(id, (entry, _))| {
            entry
                .lines()
                .iter()
                .enumerate()
                .map(move |(n, l)| (id, n, l))
        })
        .collect();
    for chunk in lines.chunks(INSERT_ROWS) {
        let sql = multi_row_insert(
            "ledger_lines",
            &LINE_COLUMNS,
            chunk.len(),
            "",
            Params::Numbered,
        );
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * LINE_COLUMNS.len());
        for (id, n, line) in chunk {
            let (partner, account) = account_parts(&line.account);
            args.extend([
                id.as_str().into(),
                (*n as i64).into(),
                program.as_str().into(),
                partner.into(),
                account.into(),
                line.amount.into(),
                at.into(),
            ]);
        }
        conn.execute(&sql, args)
            .await
            .context("appending ledger lines")?;
    }
    emit(conn, program, when, |currency| {
        entries
            .iter()
            .filter_map(|(e, links)| entry_event(program, currency, e, links))
            .collect()
    })
    .await?;
    Ok(ids)
}

/// The webhook an entry makes, if any: an accrual or override is
/// `commission.created`, a post `commission.approved`, a void
/// `commission.reversed` and a payout `payout.paid`, each for the partner
/// whose account it moves, with the amount it moves.
fn entry_event(
    program: &ProgramId,
    currency: &str,
    entry: &JournalEntry,
    links: &EntryLinks<'_>,
) -> Option<Pending> {
    let kind = match entry.kind() {
        EntryKind::Accrual | EntryKind::Override => EventKind::CommissionCreated,
        EntryKind::Post => EventKind::CommissionApproved,
        EntryKind::Void => EventKind::CommissionReversed,
        EntryKind::Payout => EventKind::PayoutPaid,
        EntryKind::Adjustment => return None,
    };
    let (partner, amount) = entry.lines().iter().find_map(|l| match &l.account {
        Account::Partner(p, _) => Some((p.to_string(), l.amount.abs())),
        Account::Program(..) => None,
    })?;
    Some(if kind == EventKind::PayoutPaid {
        let data = PayoutData {
            id: links.payout_id?.to_string(),
            program_id: program.to_string(),
            partner_id: partner.clone(),
            amount,
            currency: currency.to_owned(),
        };
        Pending::shared(kind, &partner, &data)
    } else {
        let data = CommissionData {
            id: entry.commission_id()?.to_string(),
            program_id: program.to_string(),
            partner_id: partner.clone(),
            conversion_id: links.conversion_id.map(|c| c.to_string()),
            amount,
            currency: currency.to_owned(),
        };
        Pending::shared(kind, &partner, &data)
    })
}

/// A commission's state as the API shows it, from its position.
pub(crate) fn status_of(p: &Position, held: bool, paid: bool) -> &'static str {
    if p.voided == p.accrued {
        "voided"
    } else if p.pending > 0 {
        if held {
            "held"
        } else {
            "pending"
        }
    } else if paid {
        "paid"
    } else {
        "payable"
    }
}

/// Write a position's amounts (and the status they give) back to its row.
pub(crate) async fn save_position(
    conn: &mut dyn Db,
    p: &Position,
    held: bool,
    paid: bool,
) -> Result<()> {
    conn.execute(
        "UPDATE commissions SET pending = $1, posted = $2, voided = $3, held = $4, status = $5 \
         WHERE id = $6",
        vec![
            p.pending.into(),
            p.posted.into(),
            p.voided.into(),
            i64::from(held).into(),
            status_of(p, held, paid).into(),
            p.commission_id.as_str().into(),
        ],
    )
    .await
    .context("updating a commission's position")?;
    Ok(())
}

/// A commission's position row, with its hold and payout state.
#[derive(FromRow)]
pub(crate) struct PositionRow {
    pub id: String,
    pub program_id: String,
    pub partner_id: String,
    pub derives_from: Option<String>,
    pub accrued: i64,
    pub pending: i64,
    pub posted: i64,
    pub voided: i64,
    pub held: i64,
    pub payout_id: Option<String>,
}

pub(crate) const POSITION_COLUMNS: &str =
    "id, program_id, partner_id, derives_from, accrued, pending, posted, voided, held, payout_id";

impl PositionRow {
    /// A row read through [`Db`], of [`POSITION_COLUMNS`] in order.
    pub fn from_db(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.text(0)?.to_owned(),
            program_id: r.text(1)?.to_owned(),
            partner_id: r.text(2)?.to_owned(),
            derives_from: r.opt_text(3)?.map(str::to_owned),
            accrued: r.int(4)?,
            pending: r.int(5)?,
            posted: r.int(6)?,
            voided: r.int(7)?,
            held: r.int(8)?,
            payout_id: r.opt_text(9)?.map(str::to_owned),
        })
    }

    pub fn position(&self) -> Result<Position> {
        Ok(Position {
            commission_id: CommissionId::parse(&self.id).map_err(corrupt("commission id"))?,
            program_id: ProgramId::parse(&self.program_id)
                .map_err(corrupt("commission program"))?,
            partner_id: PartnerId::parse(&self.partner_id)
                .map_err(corrupt("commission partner"))?,
            derives_from: self
                .derives_from
                .as_deref()
                .map(CommissionId::parse)
                .transpose()
                .map_err(corrupt("commission derives_from"))?,
            accrued: self.accrued,
            pending: self.pending,
            posted: self.posted,
            voided: self.voided,
        })
    }
}

/// One entry as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEntry {
    pub id: String,
    pub kind: EntryKind,
    pub commission_id: Option<String>,
    pub conversion_id: Option<String>,
    pub payout_id: Option<String>,
    pub memo: String,
    pub at: DateTime<Utc>,
    pub lines: Vec<Line>,
    /// The commission's explanation, for entries that move one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<serde_json::Value>,
}

impl StoredEntry {
    /// The entry through core's check again: a stored entry that does not
    /// balance is reported as corrupt, never shown.
    pub fn journal_entry(&self) -> Result<JournalEntry> {
        JournalEntry::new(
            self.kind,
            self.commission_id
                .as_deref()
                .map(CommissionId::parse)
                .transpose()
                .map_err(corrupt("entry commission"))?,
            self.memo.clone(),
            self.lines.clone(),
        )
        .map_err(|e| StoreError::Corrupt(format!("ledger entry {}: {e}", self.id)))
    }
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub program_id: Option<ProgramId>,
    /// Entries with a line on one of this partner's accounts.
    pub partner_id: Option<PartnerId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct EntryRow {
    id: String,
    program_id: String,
    kind: String,
    commission_id: Option<String>,
    conversion_id: Option<String>,
    payout_id: Option<String>,
    memo: String,
    at: i64,
    explanation: Option<String>,
}

#[derive(FromRow)]
struct LineRow {
    entry_id: String,
    partner_id: Option<String>,
    account: String,
    amount: i64,
}

impl Store {
    /// Entries in the order made, with their lines and explanations.
    pub async fn ledger(&self, f: &LedgerFilter, page: crate::Page) -> Result<Vec<StoredEntry>> {
        let rows: Vec<EntryRow> = sqlx::query_as(
            "SELECT e.id, e.program_id, e.kind, e.commission_id, e.conversion_id, e.payout_id, \
             e.memo, e.at, c.explanation FROM ledger_entries e \
             LEFT JOIN commissions c ON c.id = e.commission_id \
             WHERE ($1 IS NULL OR e.program_id = $1) \
             AND ($2 IS NULL OR e.id IN (SELECT entry_id FROM ledger_lines WHERE partner_id = $2)) \
             AND ($3 IS NULL OR e.at >= $3) AND ($4 IS NULL OR e.at < $4) \
             ORDER BY e.id LIMIT $5 OFFSET $6",
        )
        .bind(f.program_id.as_ref().map(|p| p.as_str()))
        .bind(f.partner_id.as_ref().map(|p| p.as_str()))
        .bind(f.from.map(to_ms))
        .bind(f.to.map(to_ms))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing ledger entries")?;
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(500) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT entry_id, partner_id, account, amount FROM ledger_lines \
                 WHERE entry_id IN ({list}) ORDER BY entry_id, line_no"
            );
            let mut q = sqlx::query_as::<_, LineRow>(&sql);
            for r in chunk {
                q = q.bind(r.id.as_str());
            }
            let lines = q
                .fetch_all(self.pool())
                .await
                .context("loading ledger lines")?;
            for r in chunk {
                let program = ProgramId::parse(&r.program_id).map_err(corrupt("entry program"))?;
                let mut entry_lines = Vec::new();
                for l in lines.iter().filter(|l| l.entry_id == r.id) {
                    entry_lines.push(Line {
                        account: parse_account(&program, l.partner_id.as_deref(), &l.account)?,
                        amount: l.amount,
                    });
                }
                out.push(StoredEntry {
                    id: r.id.clone(),
                    kind: parse_kind(&r.kind)?,
                    commission_id: r.commission_id.clone(),
                    conversion_id: r.conversion_id.clone(),
                    payout_id: r.payout_id.clone(),
                    memo: r.memo.clone(),
                    at: from_ms(r.at)?,
                    lines: entry_lines,
                    explanation: r
                        .explanation
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(format!("explanation: {e}")))?,
                });
            }
        }
        Ok(out)
    }

    /// A partner's balances: the sums of the lines on its accounts.
    pub async fn partner_balance(&self, partner: &PartnerId) -> Result<PartnerBalance> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT account, CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_lines \
             WHERE partner_id = $1 GROUP BY account",
        )
        .bind(partner.as_str())
        .fetch_all(self.pool())
        .await
        .context("summing a partner's balance")?;
        let mut b = PartnerBalance::default();
        for (account, sum) in rows {
            match account.as_str() {
                "pending" => b.pending = sum,
                "payable" => b.payable = sum,
                "paid" => b.paid = sum,
                other => return Err(StoreError::Corrupt(format!("partner account {other}"))),
            }
        }
        Ok(b)
    }

    /// Every account's balance in a program (partners' and the program's),
    /// summed from the lines: what the invariant tests compare.
    pub async fn account_balances(
        &self,
        program: &ProgramId,
    ) -> Result<std::collections::BTreeMap<Account, i64>> {
        let rows: Vec<(Option<String>, String, i64)> = sqlx::query_as(
            "SELECT partner_id, account, CAST(COALESCE(SUM(amount), 0) AS BIGINT) \
             FROM ledger_lines WHERE program_id = $1 GROUP BY partner_id, account",
        )
        .bind(program.as_str())
        .fetch_all(self.pool())
        .await
        .context("summing balances")?;
        rows.into_iter()
            .map(|(p, a, sum)| Ok((parse_account(program, p.as_deref(), &a)?, sum)))
            .collect()
    }
}

/// A commission (or override) as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredCommission {
    pub id: String,
    pub program_id: String,
    pub partner_id: String,
    /// `commission` or `override`.
    pub kind: String,
    /// `sale`, `lead` or `click`.
    pub event: String,
    pub level: i64,
    pub conversion_id: Option<String>,
    pub derives_from: Option<String>,
    pub currency: String,
    pub amount: i64,
    pub pending: i64,
    pub posted: i64,
    pub voided: i64,
    /// `pending`, `held`, `payable`, `paid` or `voided`.
    pub status: String,
    pub payable_at: DateTime<Utc>,
    pub rule_id: Option<String>,
    pub rule_version: Option<i64>,
    pub payout_id: Option<String>,
    pub explanation: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct CommissionRow {
    id: String,
    program_id: String,
    partner_id: String,
    kind: String,
    event: String,
    level: i64,
    conversion_id: Option<String>,
    derives_from: Option<String>,
    currency: String,
    accrued: i64,
    pending: i64,
    posted: i64,
    voided: i64,
    status: String,
    payable_at: i64,
    rule_id: Option<String>,
    rule_version: Option<i64>,
    payout_id: Option<String>,
    explanation: String,
    created_at: i64,
}

impl TryFrom<CommissionRow> for StoredCommission {
    type Error = StoreError;
    fn try_from(r: CommissionRow) -> Result<Self> {
        Ok(Self {
            explanation: serde_json::from_str(&r.explanation)
                .map_err(|e| StoreError::Corrupt(format!("commission explanation: {e}")))?,
            payable_at: from_ms(r.payable_at)?,
            created_at: from_ms(r.created_at)?,
            id: r.id,
            program_id: r.program_id,
            partner_id: r.partner_id,
            kind: r.kind,
            event: r.event,
            level: r.level,
            conversion_id: r.conversion_id,
            derives_from: r.derives_from,
            currency: r.currency,
            amount: r.accrued,
            pending: r.pending,
            posted: r.posted,
            voided: r.voided,
            status: r.status,
            rule_id: r.rule_id,
            rule_version: r.rule_version,
            payout_id: r.payout_id,
        })
    }
}

/// Which commissions to list.
#[derive(Debug, Clone, Default)]
pub struct CommissionFilter {
    pub program_id: Option<ProgramId>,
    pub partner_id: Option<PartnerId>,
    pub conversion_id: Option<ConversionId>,
    /// `pending`, `held`, `payable`, `paid` or `voided`.
    pub status: Option<String>,
}

const COMMISSION_COLUMNS: &str = "id, program_id, partner_id, kind, event, level, \
     conversion_id, derives_from, currency, accrued, pending, posted, voided, status, \
     payable_at, rule_id, rule_version, payout_id, explanation, created_at";

impl Store {
    /// Commissions newest first.
    pub async fn commissions(
        &self,
        f: &CommissionFilter,
        page: crate::Page,
    ) -> Result<Vec<StoredCommission>> {
        sqlx::query_as::<_, CommissionRow>(&format!(
            "SELECT {COMMISSION_COLUMNS} FROM commissions WHERE ($1 IS NULL OR program_id = $1) \
             AND ($2 IS NULL OR partner_id = $2) AND ($3 IS NULL OR conversion_id = $3) \
             AND ($4 IS NULL OR status = $4) ORDER BY created_at DESC, id LIMIT $5 OFFSET $6"
        ))
        .bind(f.program_id.as_ref().map(|p| p.as_str()))
        .bind(f.partner_id.as_ref().map(|p| p.as_str()))
        .bind(f.conversion_id.as_ref().map(|p| p.as_str()))
        .bind(f.status.as_deref())
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing commissions")?
        .into_iter()
        .map(StoredCommission::try_from)
        .collect()
    }

    pub async fn commission(&self, id: &CommissionId) -> Result<Option<StoredCommission>> {
        sqlx::query_as::<_, CommissionRow>(&format!(
            "SELECT {COMMISSION_COLUMNS} FROM commissions WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading a commission")?
        .map(StoredCommission::try_from)
        .transpose()
    }
}
