//! A program's tracking settings (consent, snippet cookie, event mapping)
//! and the hash of its postback token, read on every ingestion path and
//! written by the admin API.

use tribute_core::ids::ProgramId;
use tribute_core::tracking::TrackingSettings;

use crate::{Context, Result, Store, StoreError};

/// A program's tracking settings and postback token, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramTracking {
    pub settings: TrackingSettings,
    /// `None` until an admin makes a token: postbacks are refused until then.
    pub postback: Option<PostbackTokenHash>,
}

/// The stored form of a postback token (the token itself is shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostbackTokenHash {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// The prefix and last four characters, to tell tokens apart.
    pub hint: String,
}

impl Store {
    /// A program's tracking settings (the defaults until saved) and its
    /// postback token's hash and hint (none until one is made). Never
    /// writes: ingestion paths read this and must not take SQLite's write lock.
    pub async fn program_tracking(&self, program: &ProgramId) -> Result<ProgramTracking> {
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT settings, postback_token_hash, postback_token_hint \
             FROM program_tracking WHERE program_id = $1",
        )
        .bind(program.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading tracking settings")?;
        let Some((settings, hash, hint)) = row else {
            return Ok(ProgramTracking::default());
        };
        let settings = serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt(format!("tracking settings: {e}")))?;
        let postback = match (hash, hint) {
            (Some(hash), Some(hint)) => Some(PostbackTokenHash { hash, hint }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Corrupt(
                    "postback token without hash or hint".into(),
                ))
            }
        };
        Ok(ProgramTracking { settings, postback })
    }

    /// Save a program's tracking settings (its postback token is kept).
    pub async fn set_program_tracking(
        &self,
        program: &ProgramId,
        s: &TrackingSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(s).expect("settings serialise");
        sqlx::query(
            "INSERT INTO program_tracking (program_id, settings) VALUES ($1, $2) \
             ON CONFLICT (program_id) DO UPDATE SET settings = excluded.settings",
        )
        .bind(program.as_str())
        .bind(json)
        .execute(self.pool())
        .await
        .context("saving tracking settings")?;
        Ok(())
    }

    /// Make `hash` (with `hint`) the program's postback token, replacing
    /// the one it had: the old token stops working.
    pub async fn set_postback_token(
        &self,
        program: &ProgramId,
        hash: &str,
        hint: &str,
    ) -> Result<()> {
        let defaults =
            serde_json::to_string(&TrackingSettings::default()).expect("settings serialise");
        sqlx::query(
            "INSERT INTO program_tracking (program_id, settings, postback_token_hash, postback_token_hint) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (program_id) DO UPDATE SET postback_token_hash = excluded.postback_token_hash, \
             postback_token_hint = excluded.postback_token_hint",
        )
        .bind(program.as_str())
        .bind(defaults)
        .bind(hash)
        .bind(hint)
        .execute(self.pool())
        .await
        .context("saving postback token")?;
        Ok(())
    }
}
