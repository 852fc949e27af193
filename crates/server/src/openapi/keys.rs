//! The API keys resource: list and revoke (admin).

use serde_json::{json, Value};

use super::schema::{
    array, id, nullable, object, one_of_strings, op, path_id, read_only, schema_ref, string, time,
};

pub fn schemas() -> Vec<(&'static str, Value)> {
    vec![(
        "ApiKey",
        object(
            &[
                ("id", read_only(id("key"))),
                ("scope", one_of_strings(["admin", "partner", "ingest"])),
                ("kind", one_of_strings(["secret", "publishable"])),
                ("partner_id", nullable(id("ptn"))),
                ("program_id", nullable(id("prg"))),
                ("name", nullable(string())),
                ("created_at", read_only(time())),
                ("revoked_at", nullable(time())),
            ],
            &[
                "id",
                "scope",
                "kind",
                "partner_id",
                "program_id",
                "name",
                "created_at",
                "revoked_at",
            ],
        ),
    )]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let key = [path_id("key")];
    let keys = object(&[("data", array(schema_ref("ApiKey")))], &["data"]);
    vec![
        (
            "/api/v1/keys",
            json!({"get": op("List API keys, never their secrets (admin)", &[], None, "200", keys)}),
        ),
        (
            "/api/v1/keys/{id}/revoke",
            json!({"post": op("Revoke a key: at once on this node, within 30 s elsewhere (admin)",
                &key, None, "200", schema_ref("ApiKey"))}),
        ),
    ]
}
