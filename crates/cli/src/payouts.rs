//! `tribute payouts create|export|mark-paid`: payout batches from the
//! command line, straight on the database (like `tribute key`), for an
//! owner who pays partners from a script or a cron job.
//!
//! Arguments are checked into a [`PayoutPlan`] before any database is
//! opened, and every error names the argument at fault (`--until: …`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::Subcommand;
use tribute_core::ids::{PayoutId, ProgramId};
use tribute_core::money::{check_amount, Currency};
use tribute_core::payout::{export, ExportFormat};
use tribute_store::{Store, StoreError, StoredPayout};

#[derive(Subcommand, Debug)]
pub enum PayoutCommand {
    /// Make a batch of a program's payable balances, one item per partner
    /// owed at least the minimum; prints the batch, its id last.
    Create {
        /// The program (`prg_…`).
        #[arg(long)]
        program: String,
        /// Pay what became payable up to this time: RFC 3339
        /// (2026-01-31T00:00:00Z) or a date (midnight UTC). Default: now.
        #[arg(long)]
        until: Option<String>,
        /// Leave out partners owed less than this many minor units (the
        /// program's minimum payout applies too).
        #[arg(long, allow_negative_numbers = true)]
        min_amount: Option<i64>,
    },
    /// Write a batch as CSV for PayPal Payouts, a Wise batch, or a
    /// spreadsheet: to standard output, or to --out.
    Export {
        /// The batch (`pay_…`).
        id: String,
        /// paypal, wise or csv.
        #[arg(long, value_parser = ["paypal", "wise", "csv"])]
        format: String,
        /// The file to write. A batch of several files (PayPal takes 5,000
        /// rows a file, Wise 1,000) is written as FILE-1.csv, FILE-2.csv…
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only this file of a batch of several (from 1).
        #[arg(long)]
        part: Option<usize>,
    },
    /// Record a batch as paid: one payout entry per partner. Running it
    /// again changes nothing.
    MarkPaid {
        /// The batch (`pay_…`).
        id: String,
    },
}

/// A payouts command with its arguments checked.
#[derive(Debug)]
pub enum PayoutPlan {
    Create {
        program: ProgramId,
        until: Option<DateTime<Utc>>,
        min_amount: i64,
    },
    Export {
        id: PayoutId,
        format: ExportFormat,
        out: Option<PathBuf>,
        part: Option<usize>,
    },
    MarkPaid(PayoutId),
}

/// An RFC 3339 time, or a date meaning midnight UTC.
fn parse_until(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| {
            anyhow::anyhow!(
                "--until: `{s}` is not an RFC 3339 time (2026-01-31T00:00:00Z) or a date \
                 (2026-01-31)"
            )
        })
}

fn payout_id(s: &str) -> anyhow::Result<PayoutId> {
    PayoutId::parse(s.trim()).map_err(|e| anyhow::anyhow!("ID: `{s}`: {}", e.message))
}

impl PayoutCommand {
    /// Check the arguments, without touching a database.
    pub fn check(self) -> anyhow::Result<PayoutPlan> {
        Ok(match self {
            PayoutCommand::Create {
                program,
                until,
                min_amount,
            } => PayoutPlan::Create {
                program: ProgramId::parse(program.trim())
                    .map_err(|e| anyhow::anyhow!("--program: `{program}`: {}", e.message))?,
                until: until.as_deref().map(parse_until).transpose()?,
                min_amount: check_amount("--min-amount", min_amount.unwrap_or(0))
                    .map_err(|e| anyhow::anyhow!("--min-amount: {}", e.message))?,
            },
            PayoutCommand::Export {
                id,
                format,
                out,
                part,
            } => {
                if part == Some(0) {
                    anyhow::bail!("--part: files are numbered from 1");
                }
                PayoutPlan::Export {
                    id: payout_id(&id)?,
                    format: ExportFormat::parse("--format", &format)
                        .map_err(|e| anyhow::anyhow!("--format: {}", e.message))?,
                    out,
                    part,
                }
            }
            PayoutCommand::MarkPaid { id } => PayoutPlan::MarkPaid(payout_id(&id)?),
        })
    }
}

/// The CLI argument a store error's field comes from.
fn argument(field: &str) -> &str {
    match field {
        "until" => "--until",
        "min_amount" => "--min-amount",
        "program_id" => "--program",
        other => other,
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The batch, one partner a line, then its id alone on the last line.
fn print_payout(verb: &str, p: &StoredPayout) {
    println!(
        "{verb} payout {} of program {}: {} partner(s), {} minor units of {}, payable until {} \
         (minimum {})",
        p.id,
        p.program_id,
        p.items.len(),
        p.total,
        p.currency,
        time(p.until),
        p.min_amount
    );
    for item in &p.items {
        println!("  {}  {}", item.partner_id, item.amount);
    }
    println!("{}", p.id);
}

/// `FILE` for part `n` of a batch of several: `payouts.csv` → `payouts-2.csv`.
fn part_path(out: &Path, n: usize) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match out.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    out.with_file_name(name)
}

pub async fn run(store: &Store, plan: PayoutPlan) -> anyhow::Result<()> {
    match plan {
        PayoutPlan::Create {
            program,
            until,
            min_amount,
        } => {
            let now = Utc::now();
            match store
                .create_payout(&program, until.unwrap_or(now), min_amount, now)
                .await
            {
                Ok(p) => {
                    print_payout("created", &p);
                    Ok(())
                }
                Err(StoreError::NotFound(_)) => anyhow::bail!("--program: no program `{program}`"),
                Err(StoreError::Conflict { field, message }) => {
                    anyhow::bail!("{}: {message}", argument(field))
                }
                Err(e) => Err(e.into()),
            }
        }
        PayoutPlan::Export {
            id,
            format,
            out,
            part,
        } => {
            let Some((payout, items)) = store.payout_export_items(&id).await? else {
                anyhow::bail!("ID: no payout `{id}`");
            };
            let currency = Currency::parse(&payout.currency)?;
            let files = export(format, &items, currency).map_err(|e| {
                anyhow::anyhow!("--format {}: {}: {}", format.as_str(), e.field, e.message)
            })?;
            let count = files.len();
            let chosen: Vec<(usize, String)> = match part {
                Some(n) if n > count => {
                    anyhow::bail!("--part: the export is {count} file(s): give 1 to {count}")
                }
                Some(n) => vec![(n, files[n - 1].clone())],
                None => files
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| (i + 1, f))
                    .collect(),
            };
            match out {
                None if chosen.len() > 1 => anyhow::bail!(
                    "--out: the export is {count} files ({} takes {} rows a file); give \
                     --out FILE to write them all, or --part N for one",
                    format.as_str(),
                    format.max_rows().unwrap_or(0)
                ),
                None => print!("{}", chosen[0].1),
                Some(path) => {
                    for (n, file) in &chosen {
                        let target = if count > 1 && part.is_none() {
                            part_path(&path, *n)
                        } else {
                            path.clone()
                        };
                        std::fs::write(&target, file).map_err(|e| {
                            anyhow::anyhow!("--out: writing {}: {e}", target.display())
                        })?;
                        eprintln!("wrote {}", target.display());
                    }
                }
            }
            Ok(())
        }
        PayoutPlan::MarkPaid(id) => match store.mark_payout_paid(&id, Utc::now()).await {
            Ok((p, false)) => {
                print_payout("paid", &p);
                Ok(())
            }
            Ok((p, true)) => {
                let when = p.paid_at.map(time).unwrap_or_default();
                println!("payout {} was already paid ({when}): nothing changed", p.id);
                Ok(())
            }
            Err(StoreError::NotFound(_)) => anyhow::bail!("ID: no payout `{id}`"),
            Err(e) => Err(e.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(until: Option<&str>, min: Option<i64>) -> anyhow::Result<PayoutPlan> {
        PayoutCommand::Create {
            program: ProgramId::generate().to_string(),
            until: until.map(Into::into),
            min_amount: min,
        }
        .check()
    }

    #[test]
    fn bad_arguments_are_refused_naming_the_argument() {
        let err = |r: anyhow::Result<PayoutPlan>| r.unwrap_err().to_string();
        assert!(err(create(Some("yesterday"), None)).starts_with("--until"));
        assert!(err(create(None, Some(-1))).starts_with("--min-amount"));
        let bad_program = PayoutCommand::Create {
            program: "ptn_x".into(),
            until: None,
            min_amount: None,
        };
        assert!(err(bad_program.check()).starts_with("--program"));
        assert!(err(PayoutCommand::MarkPaid { id: "prg_x".into() }.check()).starts_with("ID"));
        let part_zero = PayoutCommand::Export {
            id: PayoutId::generate().to_string(),
            format: "csv".into(),
            out: None,
            part: Some(0),
        };
        assert!(err(part_zero.check()).starts_with("--part"));
        assert!(create(Some("2026-01-31"), Some(0)).is_ok());
        assert!(create(Some("2026-01-31T12:00:00+02:00"), None).is_ok());
    }

    #[test]
    fn the_parts_of_a_batch_are_numbered_before_the_extension() {
        assert_eq!(
            part_path(Path::new("out/payouts.csv"), 2),
            PathBuf::from("out/payouts-2.csv")
        );
        assert_eq!(
            part_path(Path::new("payouts"), 1),
            PathBuf::from("payouts-1")
        );
    }
}
