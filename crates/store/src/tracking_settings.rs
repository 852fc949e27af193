//! A program's tracking settings and postback token, read on every
//! ingestion path and written by the admin API.

use tribute_core::ids::ProgramId;
use tribute_core::tracking::TrackingSettings;

use crate::{Context, Result, Store, StoreError};

impl Store {
    /// A program's tracking settings and postback token (made on first use).
    pub async fn program_tracking(
        &self,
        program: &ProgramId,
        new_token: impl FnOnce() -> String,
    ) -> Result<(TrackingSettings, String)> {
        const SELECT: &str =
            "SELECT settings, postback_token FROM program_tracking WHERE program_id = $1";
        // Read first: this runs on ingestion paths, which must not write
        // (and so take SQLite's write lock) just to read settings.
        let mut row: Option<(String, String)> = sqlx::query_as(SELECT)
            .bind(program.as_str())
            .fetch_optional(self.pool())
            .await
            .context("loading tracking settings")?;
        if row.is_none() {
            sqlx::query(
                "INSERT INTO program_tracking (program_id, settings, postback_token) VALUES ($1, $2, $3) \
                 ON CONFLICT (program_id) DO NOTHING",
            )
            .bind(program.as_str())
            .bind(serde_json::to_string(&TrackingSettings::default()).expect("settings serialise"))
            .bind(new_token())
            .execute(self.pool())
            .await
            .context("initialising tracking settings")?;
            row = sqlx::query_as(SELECT)
                .bind(program.as_str())
                .fetch_optional(self.pool())
                .await
                .context("loading tracking settings")?;
        }
        let (settings, token) = row.ok_or(StoreError::NotFound("program"))?;
        let settings = serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt(format!("tracking settings: {e}")))?;
        Ok((settings, token))
    }

    /// Save a program's tracking settings (making its postback token if it has none yet).
    pub async fn set_program_tracking(
        &self,
        program: &ProgramId,
        s: &TrackingSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(s).expect("settings serialise");
        sqlx::query(
            "INSERT INTO program_tracking (program_id, settings, postback_token) VALUES ($1, $2, $3) \
             ON CONFLICT (program_id) DO UPDATE SET settings = excluded.settings",
        )
        .bind(program.as_str())
        .bind(json)
        .bind(tribute_core::ids::random_base62(32))
        .execute(self.pool())
        .await
        .context("saving tracking settings")?;
        Ok(())
    }
}
