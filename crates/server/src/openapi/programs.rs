//! The document's programs and their tracking settings (`api::programs`).

use serde_json::{json, Value};
use tribute_core::attribution::ModelKind;

use super::schema::{
    amount, array, boolean, currency, described, domain, id, int, integer, label, list_of,
    nullable, object, one_of_strings, op, paging, path_id, pattern, read_only, schema_ref, string,
    time, trimmed, DOMAIN,
};

/// The settings a program is created and updated with, as `(name, schema)`.
fn settings() -> Vec<(&'static str, Value)> {
    vec![
        ("name", label(200)),
        ("allowed_domains", array(domain())),
        (
            "default_model",
            one_of_strings(ModelKind::ALL.iter().map(|m| m.as_str())),
        ),
        ("window_days", integer(1, 3650)),
        ("cookie_days", integer(1, 3650)),
        ("hold_days", integer(0, 3650)),
        ("override_levels_bps", override_levels()),
        (
            "payout_min_amount",
            described(amount(), "the smallest payout a partner is sent"),
        ),
    ]
}

/// A program's team override levels (`tribute_core::commission::OverridePlan`).
fn override_levels() -> Value {
    let mut levels = described(
        array(integer(0, 10_000)),
        "basis points a team lead earns per level of its team, level 1 first; \
         they add up to at most 10000; empty: no overrides",
    );
    levels["maxItems"] = json!(tribute_core::commission::overrides::MAX_LEVELS);
    levels
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let program = [
        ("id", read_only(id("prg"))),
        ("name", string()),
        ("currency", string()),
        ("allowed_domains", array(string())),
        (
            "default_model",
            one_of_strings(ModelKind::ALL.iter().map(|m| m.as_str())),
        ),
        ("window_days", int()),
        ("cookie_days", int()),
        ("hold_days", int()),
        ("override_levels_bps", array(int())),
        ("payout_min_amount", int()),
        ("created_at", read_only(time())),
    ];
    let required: Vec<&str> = program.iter().map(|(k, _)| *k).collect();

    let mut create = vec![("currency", currency())];
    create.extend(
        settings()
            .into_iter()
            // `allowed_domains` defaults to none, and is never null.
            .map(|(k, v)| {
                if k == "allowed_domains" {
                    (k, v)
                } else {
                    (k, nullable(v))
                }
            }),
    );
    // A new program needs a name; the rest have defaults.
    create[1].1 = label(200);
    // Currency cannot change once amounts are recorded in it: not updatable.
    let update: Vec<(&str, Value)> = settings()
        .into_iter()
        .map(|(k, v)| (k, nullable(v)))
        .collect();

    vec![
        ("Program", object(&program, &required)),
        ("ProgramCreate", object(&create, &["name", "currency"])),
        ("ProgramUpdate", object(&update, &[])),
        ("TrackingSettingsUpdate", tracking(false)),
        ("TrackingSettings", tracking(true)),
        ("PostbackToken", postback_token()),
    ]
}

/// A newly made postback token: the only answer that shows it.
fn postback_token() -> Value {
    let props = [
        ("program_id", read_only(id("prg"))),
        (
            "postback_token",
            read_only(described(
                string(),
                "the secret; stored only as its hash, so store it now",
            )),
        ),
        ("postback_token_hint", read_only(string())),
        (
            "postback_url",
            read_only(described(
                string(),
                "the postback URL with this token; `{…}` marks what to fill in",
            )),
        ),
    ];
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(&props, &required)
}

/// A program's tracking settings (`tribute_core::tracking::TrackingSettings`):
/// as sent (every field optional, taking its default), or as shown (with
/// the program and its postback URL).
fn tracking(shown: bool) -> Value {
    let event_names = array(trimmed(200));
    let mut props = vec![
        ("consent", one_of_strings(["opt_out", "opt_in"])),
        ("honor_dnt", boolean()),
        ("honor_gpc", boolean()),
        (
            "cookie_domain",
            nullable(described(
                pattern(&format!(r"^\.*{DOMAIN}$"), 253),
                "a domain, optionally with a leading dot (`.example.com`)",
            )),
        ),
        ("store_email", boolean()),
        ("lead_events", event_names.clone()),
        ("conversion_events", event_names),
    ];
    if !shown {
        return object(&props, &[]);
    }
    props.push(("program_id", read_only(id("prg"))));
    props.push((
        "postback_url",
        read_only(described(
            string(),
            "where to send server-side conversions; `{…}` marks what to fill in \
             (`{postback_token}`: the token, shown only when made)",
        )),
    ));
    props.push((
        "postback_token_hint",
        read_only(described(
            nullable(string()),
            "the current postback token's prefix and last four characters; \
             null until one is made",
        )),
    ));
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(&props, &required)
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let id = [path_id("prg")];
    vec![
        (
            "/api/v1/programs",
            json!({
                "get": op("List programs", &paging(), None, "200", list_of("Program")),
                "post": op("Create a program", &[], Some(schema_ref("ProgramCreate")), "201", schema_ref("Program")),
            }),
        ),
        (
            "/api/v1/programs/{id}",
            json!({
                "get": op("Get a program", &id, None, "200", schema_ref("Program")),
                "patch": op("Update a program (its currency cannot change)", &id,
                    Some(schema_ref("ProgramUpdate")), "200", schema_ref("Program")),
            }),
        ),
        (
            "/api/v1/programs/{id}/tracking",
            json!({
                "get": op("Tracking settings and the postback URL (its token shown as `{postback_token}`)", &id, None, "200",
                    schema_ref("TrackingSettings")),
                "patch": op("Replace the tracking settings (fields left out take their defaults)", &id,
                    Some(schema_ref("TrackingSettingsUpdate")), "200", schema_ref("TrackingSettings")),
            }),
        ),
        (
            "/api/v1/programs/{id}/postback-token",
            json!({
                "post": op("Make a new postback token (shown once; the old one stops working)", &id, None, "201",
                    schema_ref("PostbackToken")),
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_created_at_are_read_only_and_not_accepted_on_create_or_update() {
        let schemas: serde_json::Map<String, Value> = schemas()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(schemas["Program"]["properties"]["id"]["readOnly"], true);
        for request in ["ProgramCreate", "ProgramUpdate"] {
            for field in ["id", "created_at", "currency"] {
                let listed = schemas[request]["properties"].get(field).is_some();
                assert_eq!(
                    listed,
                    request == "ProgramCreate" && field == "currency",
                    "{request}.{field}"
                );
            }
            assert_eq!(schemas[request]["additionalProperties"], false);
        }
    }
}
