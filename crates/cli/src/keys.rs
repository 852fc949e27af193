//! `tribute key create`: make an API key and print it (once).

use chrono::Utc;
use clap::Subcommand;
use tribute_core::apikey::{ApiKey, NewKey, Scope};
use tribute_core::ids::{ApiKeyId, ProgramId};
use tribute_core::partner::Slug;
use tribute_store::{Page, Store};

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a key; the key itself is the last line printed.
    Create {
        /// admin, partner or ingest.
        #[arg(long)]
        scope: String,
        /// For a partner key: the partner's slug.
        #[arg(long)]
        partner: Option<String>,
        /// The program (needed when a slug exists in several, or for an
        /// ingest key when there are several programs).
        #[arg(long)]
        program: Option<String>,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
    },
}

pub async fn run(store: &Store, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create {
            scope,
            partner,
            program,
            name,
        } => {
            let scope = Scope::parse(&scope).map_err(|e| anyhow::anyhow!("--{e}"))?;
            let program = program
                .as_deref()
                .map(ProgramId::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--program: {}", e.message))?;
            let key = new_key(store, scope, partner.as_deref(), program, name).await?;
            println!("created {} key {}", key.0.scope.as_str(), key.0.id);
            println!("store it now: it is shown only once");
            println!("{}", key.1);
            Ok(())
        }
    }
}

/// Create a key of `scope`; returns it with its secret token.
pub async fn new_key(
    store: &Store,
    scope: Scope,
    partner_slug: Option<&str>,
    program: Option<ProgramId>,
    name: Option<String>,
) -> anyhow::Result<(ApiKey, String)> {
    let (partner_id, program_id) = match scope {
        Scope::Admin => (None, None),
        Scope::Partner => {
            let slug = partner_slug
                .ok_or_else(|| anyhow::anyhow!("--partner SLUG is required for a partner key"))?;
            let slug =
                Slug::parse(slug).map_err(|e| anyhow::anyhow!("--partner: {}", e.message))?;
            let mut found = store.partners_by_slug(&slug).await?;
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
    let secret = NewKey::generate(scope);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope,
        partner_id,
        program_id,
        name,
        created_at: Utc::now(),
    };
    store.insert_api_key(&key, &secret.hash).await?;
    Ok((key, secret.token))
}
