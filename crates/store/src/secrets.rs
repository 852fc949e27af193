//! Server-wide secrets shared by every node (`secrets` table): the
//! visitor-hash key, and the demo's keys so a second `tribute demo` shows the
//! same ones.
//!
//! Values are stored as given: the server needs them back (a key it hashes
//! with, a token it prints), so hashing them would defeat their use. They
//! are as safe as the database and its backups (docs/security.md).

use crate::{Context, Result, Store};

impl Store {
    /// The server secret `name`, made by `generate` on first use. Several
    /// nodes starting at once agree on one value: the first insert wins.
    pub async fn secret_or_init(
        &self,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> Result<String> {
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generate())
        .execute(self.pool())
        .await
        .context("initialising secret")?;
        sqlx::query_scalar::<_, String>("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await
            .context("loading secret")
    }

    /// The secret `name`, if it has been set.
    pub async fn secret(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar::<_, String>("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .context("loading secret")
    }

    /// Set the secret `name`, replacing any value it had.
    pub async fn set_secret(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(self.pool())
        .await
        .context("saving secret")?;
        Ok(())
    }
}
