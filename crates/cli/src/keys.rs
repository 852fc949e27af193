//! `tribute key create|list|revoke`: make an API key and print it (once),
//! list keys (never their secrets), revoke one.
//!
//! Arguments are checked into a [`KeyPlan`] before any database is opened,
//! so a mistyped command neither creates a database file nor migrates one.

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;
use tribute_core::apikey::{ApiKey, KeyKind, NewKey, Scope};
use tribute_core::ids::{ApiKeyId, ProgramId};
use tribute_core::partner::Slug;
use tribute_store::{Page, Store, StoreError};

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a key; the key itself is the last line printed.
    ///
    /// An ingest key is publishable unless `--secret` is given: it may sit
    /// in web pages (the snippet) and Segment write keys, and can only send
    /// events, leads and pending conversions. A secret ingest key is for
    /// the server API and postbacks. Admin and partner keys are always secret.
    Create {
        /// admin, partner or ingest.
        #[arg(long, value_parser = ["admin", "partner", "ingest"])]
        scope: String,
        /// For an ingest key: a secret server key (server API, postbacks)
        /// instead of a publishable one (snippet, Segment write key).
        #[arg(long)]
        secret: bool,
        /// For a partner key: the partner's slug.
        #[arg(long, required_if_eq("scope", "partner"))]
        partner: Option<String>,
        /// The program (needed when a slug exists in several, or for an
        /// ingest key when there are several programs).
        #[arg(long)]
        program: Option<String>,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys: id, scope, kind, partner or program, name, created, revoked.
    List,
    /// Revoke a key by id (`key_…`). Running servers stop accepting it
    /// within 30 seconds (their key cache's lifetime).
    Revoke {
        /// The key's id, as `tribute key list` shows it.
        id: String,
    },
}

/// A key command with its arguments checked: what to do, in typed values.
#[derive(Debug)]
pub enum KeyPlan {
    Create {
        scope: Scope,
        kind: KeyKind,
        partner: Option<Slug>,
        program: Option<ProgramId>,
        name: Option<String>,
    },
    List,
    Revoke(ApiKeyId),
}

impl KeyCommand {
    /// Check the arguments, without touching a database.
    pub fn check(self) -> anyhow::Result<KeyPlan> {
        match self {
            KeyCommand::Create {
                scope,
                secret,
                partner,
                program,
                name,
            } => {
                let scope = Scope::parse(&scope).map_err(|e| anyhow::anyhow!("--{e}"))?;
                let partner = match (scope, partner) {
                    (Scope::Partner, Some(slug)) => Some(
                        Slug::parse(&slug)
                            .map_err(|e| anyhow::anyhow!("--partner: {}", e.message))?,
                    ),
                    (Scope::Partner, None) => {
                        anyhow::bail!("--partner SLUG is required for a partner key")
                    }
                    (_, Some(_)) => anyhow::bail!("--partner applies to partner keys only"),
                    (_, None) => None,
                };
                if scope == Scope::Admin && program.is_some() {
                    anyhow::bail!("--program applies to partner and ingest keys only");
                }
                let program = program
                    .as_deref()
                    .map(ProgramId::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--program: {}", e.message))?;
                // A key's name is shown in listings: plain text, like every
                // stored label.
                let name = name
                    .as_deref()
                    .map(|n| tribute_core::text::PlainText::parse("--name", n, 200))
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--name: {}", e.message))?
                    .map(tribute_core::text::PlainText::into_string);
                let kind = if scope == Scope::Ingest && !secret {
                    KeyKind::Publishable
                } else {
                    KeyKind::Secret
                };
                Ok(KeyPlan::Create {
                    scope,
                    kind,
                    partner,
                    program,
                    name,
                })
            }
            KeyCommand::List => Ok(KeyPlan::List),
            KeyCommand::Revoke { id } => Ok(KeyPlan::Revoke(
                ApiKeyId::parse(id.trim()).map_err(|e| anyhow::anyhow!("ID: {}", e.message))?,
            )),
        }
    }
}

pub async fn run(store: &Store, plan: KeyPlan) -> anyhow::Result<()> {
    match plan {
        KeyPlan::Create {
            scope,
            kind,
            partner,
            program,
            name,
        } => {
            let (key, token) = new_key(store, scope, kind, partner.as_ref(), program, name).await?;
            println!(
                "created {} {} key {}",
                key.kind.as_str(),
                key.scope.as_str(),
                key.id
            );
            if key.kind == KeyKind::Publishable {
                println!(
                    "it may be public (snippet, Segment write key): it can only send events, \
                     leads and pending conversions; use --secret for a server key"
                );
            }
            println!("store it now: it is shown only once");
            println!("{token}");
            Ok(())
        }
        KeyPlan::List => {
            print!("{}", key_table(&store.api_keys().await?));
            Ok(())
        }
        KeyPlan::Revoke(id) => match store.revoke_api_key(&id, Utc::now()).await {
            Ok(true) => {
                println!("revoked key {id}");
                Ok(())
            }
            Ok(false) => {
                let when = store
                    .api_key(&id)
                    .await?
                    .and_then(|k| k.revoked_at)
                    .map(time)
                    .unwrap_or_default();
                println!("key {id} was already revoked ({when})");
                Ok(())
            }
            Err(StoreError::NotFound(_)) => anyhow::bail!("no key `{id}`"),
            Err(e) => Err(e.into()),
        },
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Keys as an aligned table, one per line, under a header.
fn key_table(keys: &[ApiKey]) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "SCOPE".to_owned(),
        "KIND".to_owned(),
        "PARTNER/PROGRAM".to_owned(),
        "NAME".to_owned(),
        "CREATED".to_owned(),
        "REVOKED".to_owned(),
    ]];
    for k in keys {
        let owner = match (&k.partner_id, &k.program_id) {
            (Some(partner), _) => partner.to_string(),
            (None, Some(program)) => program.to_string(),
            (None, None) => "-".to_owned(),
        };
        rows.push([
            k.id.to_string(),
            k.scope.as_str().to_owned(),
            k.kind.as_str().to_owned(),
            owner,
            k.name.clone().unwrap_or_else(|| "-".to_owned()),
            time(k.created_at),
            k.revoked_at.map(time).unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Create a key of `scope` and `kind`; returns it with its secret token.
pub async fn new_key(
    store: &Store,
    scope: Scope,
    kind: KeyKind,
    partner_slug: Option<&Slug>,
    program: Option<ProgramId>,
    name: Option<String>,
) -> anyhow::Result<(ApiKey, String)> {
    let (partner_id, program_id) = match scope {
        Scope::Admin => (None, None),
        Scope::Partner => {
            let slug = partner_slug
                .ok_or_else(|| anyhow::anyhow!("--partner SLUG is required for a partner key"))?;
            let mut found = store.partners_by_slug(slug).await?;
            if let Some(p) = &program {
                found.retain(|x| &x.program_id == p);
            }
            match found.len() {
                0 => anyhow::bail!("--partner: no partner with slug `{slug}`"),
                1 => {
                    let p = found.remove(0);
                    (Some(p.id), Some(p.program_id))
                }
                _ => anyhow::bail!(
                    "--partner: `{slug}` exists in several programs; add --program ID"
                ),
            }
        }
        Scope::Ingest => {
            let program = match program {
                Some(p) => p,
                None => {
                    let all = store
                        .programs(Page {
                            limit: 2,
                            offset: 0,
                        })
                        .await?;
                    match all.as_slice() {
                        [only] => only.id.clone(),
                        [] => anyhow::bail!("--program: there is no program yet"),
                        _ => anyhow::bail!("--program ID is required: there are several programs"),
                    }
                }
            };
            if store.program(&program).await?.is_none() {
                anyhow::bail!("--program: no program `{program}`");
            }
            (None, Some(program))
        }
    };
    let secret = NewKey::of(scope, kind);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope,
        kind,
        partner_id,
        program_id,
        name,
        created_at: Utc::now(),
        revoked_at: None,
    };
    store.insert_api_key(&key, &secret.hash).await?;
    Ok((key, secret.token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(scope: &str, secret: bool, partner: Option<&str>) -> anyhow::Result<KeyPlan> {
        KeyCommand::Create {
            scope: scope.into(),
            secret,
            partner: partner.map(Into::into),
            program: None,
            name: None,
        }
        .check()
    }

    #[test]
    fn an_ingest_key_is_publishable_unless_secret_is_asked_for() {
        let kind = |secret| match create("ingest", secret, None).unwrap() {
            KeyPlan::Create { kind, .. } => kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(false), KeyKind::Publishable);
        assert_eq!(kind(true), KeyKind::Secret);
        assert!(matches!(
            create("admin", false, None).unwrap(),
            KeyPlan::Create {
                kind: KeyKind::Secret,
                ..
            }
        ));
    }

    #[test]
    fn arguments_that_do_not_fit_the_scope_are_refused() {
        let err = |r: anyhow::Result<KeyPlan>| r.unwrap_err().to_string();
        assert!(err(create("partner", false, None)).contains("--partner"));
        assert!(err(create("partner", false, Some("Not A Slug"))).contains("--partner"));
        assert!(err(create("admin", false, Some("jane"))).contains("partner keys only"));
        let revoke = KeyCommand::Revoke { id: "prg_x".into() }.check();
        assert!(err(revoke).starts_with("ID"));
    }
}
