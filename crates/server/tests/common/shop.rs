//! Ingestion fixtures: a seeded shop (a program with a link per partner and
//! an ingest key) and readers of what a conversion answer says.

use serde_json::{json, Value};

use super::{str_of, Reply, Seed, TestApp};

/// A seeded program with one link per partner and an ingest key.
pub struct Shop {
    pub seed: Seed,
    pub ingest: String,
    pub alice_code: String,
    pub bob_code: String,
}

pub async fn shop(app: &TestApp) -> Shop {
    let seed = app.seed().await;
    let ingest = app.ingest_key(&seed.program_id).await;
    let alice = app.create_link(&seed.alice.id, json!({})).await;
    let bob = app.create_link(&seed.bob.id, json!({})).await;
    Shop {
        ingest,
        alice_code: str_of(&alice, "code").to_owned(),
        bob_code: str_of(&bob, "code").to_owned(),
        seed,
    }
}

/// `(partner_id, amount)` of each partner a conversion was credited to.
pub fn credited(conversion: &Value) -> Vec<(String, i64)> {
    conversion["partners"]
        .as_array()
        .unwrap_or_else(|| panic!("no partners in {conversion}"))
        .iter()
        .map(|p| {
            (
                str_of(p, "partner_id").to_owned(),
                p["amount"].as_i64().expect("an amount"),
            )
        })
        .collect()
}

pub fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}
