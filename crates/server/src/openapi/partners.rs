//! The document's partners and their click metrics (`api::partners`).

use serde_json::{json, Value};

use super::schema::{
    array, described, email, id, int, label, list_of, nullable, object, one_of_strings, op,
    optional_label, paging, path_id, pattern, query, read_only, schema_ref, string, time,
    time_or_date,
};

/// A partner's slug (`tribute_core::partner::Slug`): lower-case words of
/// letters and digits joined by single hyphens, 2 to 64 characters.
pub fn slug() -> Value {
    let mut s = pattern(r"^[a-z0-9]+(-[a-z0-9]+)*$", 64);
    s["minLength"] = json!(2);
    s
}

/// Where a partner is paid (PayPal, Wise); its e-mail when unset.
fn payout_email() -> Value {
    described(
        email(),
        "where payouts go (PayPal, Wise); the partner's e-mail when unset",
    )
}

fn status() -> Value {
    one_of_strings(["pending", "active", "suspended"])
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let partner = [
        ("id", read_only(id("ptn"))),
        ("program_id", id("prg")),
        ("slug", slug()),
        ("name", string()),
        ("email", nullable(string())),
        ("payout_email", nullable(string())),
        ("status", status()),
        ("tier", nullable(string())),
        ("group", nullable(string())),
        ("team_lead_id", nullable(id("ptn"))),
        ("created_at", read_only(time())),
    ];
    let all: Vec<&str> = partner.iter().map(|(k, _)| *k).collect();
    let create = [
        ("program_id", id("prg")),
        ("slug", slug()),
        ("name", label(200)),
        ("email", nullable(email())),
        ("payout_email", nullable(payout_email())),
        ("status", nullable(status())),
        ("tier", nullable(optional_label(100))),
        ("group", nullable(optional_label(100))),
        ("team_lead_id", nullable(id("ptn"))),
    ];
    // In an update, `null` clears the optional fields.
    let update = [
        ("slug", nullable(slug())),
        ("name", nullable(label(200))),
        ("email", nullable(email())),
        ("payout_email", nullable(payout_email())),
        ("status", nullable(status())),
        ("tier", nullable(optional_label(100))),
        ("group", nullable(optional_label(100))),
        ("team_lead_id", nullable(id("ptn"))),
    ];
    let counts = [
        ("clicks", int()),
        ("unique_clicks", int()),
        ("bot_clicks", int()),
    ];
    let mut by_source = vec![("source", string())];
    by_source.extend(counts.iter().cloned());
    let mut metrics = vec![
        ("partner_id", id("ptn")),
        ("from", time()),
        ("to", time()),
        (
            "by_source",
            array(object(
                &by_source,
                &["source", "clicks", "unique_clicks", "bot_clicks"],
            )),
        ),
    ];
    metrics.extend(counts.iter().cloned());
    let metrics_required: Vec<&str> = metrics.iter().map(|(k, _)| *k).collect();
    vec![
        ("Partner", object(&partner, &all)),
        (
            "PartnerCreate",
            object(&create, &["program_id", "slug", "name"]),
        ),
        ("PartnerUpdate", object(&update, &[])),
        ("Metrics", object(&metrics, &metrics_required)),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let id_param = [path_id("ptn")];
    let mut list_params = paging().to_vec();
    list_params.push(query("program_id", id("prg")));
    vec![
        (
            "/api/v1/partners",
            json!({
                "get": op("List partners (a partner key sees itself)", &list_params, None, "200", list_of("Partner")),
                "post": op("Create a partner", &[], Some(schema_ref("PartnerCreate")), "201", schema_ref("Partner")),
            }),
        ),
        (
            "/api/v1/partners/{id}",
            json!({
                "get": op("Get a partner", &id_param, None, "200", schema_ref("Partner")),
                "patch": op("Update a partner (null clears a field)", &id_param,
                    Some(schema_ref("PartnerUpdate")), "200", schema_ref("Partner")),
            }),
        ),
        (
            "/api/v1/partners/{id}/metrics",
            json!({
                "get": op("Click metrics over [from, to): by default the last 30 days; `from` must not be after `to`",
                    &[path_id("ptn"), query("from", time_or_date()), query("to", time_or_date())],
                    None, "200", schema_ref("Metrics")),
            }),
        ),
    ]
}
