//! The document's tracked links and coupons (`api::links`, `api::coupons`).

use serde_json::{json, Value};

use super::schema::{
    described, id, list_of, nullable, object, op, optional_label, paging, path_id, pattern, query,
    read_only, schema_ref, string, time,
};

/// A link's short code (`tribute_core::link::ShortCode`).
fn short_code() -> Value {
    let mut s = pattern(r"^[A-Za-z0-9_-]{3,64}$", 64);
    s["minLength"] = json!(3);
    s
}

/// A coupon code (`tribute_core::coupon::CouponCode`), stored upper case.
pub fn coupon_code() -> Value {
    let mut s = pattern(r"^[A-Za-z0-9_-]{2,64}$", 64);
    s["minLength"] = json!(2);
    s
}

/// A link's destination (`tribute_core::link::Destination`): an absolute
/// http(s) URL without credentials, on one of the program's allowed domains.
fn destination() -> Value {
    json!({
        "type": "string",
        "format": "uri",
        "pattern": r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$",
        "maxLength": 2048,
        "description": "an http(s) URL on one of the program's allowed domains",
    })
}

/// A link's expiry: an RFC 3339 time in the future.
fn expiry() -> Value {
    described(time(), "must be in the future")
}

/// The labels a link carries, with their longest length.
const LABELS: [(&str, usize); 8] = [
    ("source", 100),
    ("medium", 100),
    ("campaign", 200),
    ("content", 200),
    ("utm_source", 200),
    ("utm_medium", 200),
    ("utm_campaign", 200),
    ("utm_content", 200),
];

pub fn schemas() -> Vec<(&'static str, Value)> {
    let utm = object(
        &[
            ("source", nullable(string())),
            ("medium", nullable(string())),
            ("campaign", nullable(string())),
            ("content", nullable(string())),
        ],
        &["source", "medium", "campaign", "content"],
    );
    let link = [
        ("id", read_only(id("lnk"))),
        ("program_id", id("prg")),
        ("partner_id", id("ptn")),
        ("code", short_code()),
        (
            "short_url",
            read_only(json!({"type": "string", "format": "uri"})),
        ),
        ("destination", string()),
        ("source", nullable(string())),
        ("medium", nullable(string())),
        ("campaign", nullable(string())),
        ("content", nullable(string())),
        ("utm", utm),
        ("expires_at", nullable(time())),
        ("created_at", read_only(time())),
    ];
    let all: Vec<&str> = link.iter().map(|(k, _)| *k).collect();

    let labels = LABELS
        .iter()
        .map(|(k, max)| (*k, nullable(optional_label(*max))));
    let mut create = vec![
        ("program_id", nullable(id("prg"))),
        (
            "partner_id",
            described(
                nullable(id("ptn")),
                "required with an admin key; a partner key creates links for itself",
            ),
        ),
        ("destination", destination()),
        ("code", nullable(short_code())),
        ("expires_at", nullable(expiry())),
    ];
    create.extend(labels.clone());
    // `null` clears the descriptive labels and the expiry.
    let mut update = vec![
        ("destination", nullable(destination())),
        ("code", nullable(short_code())),
        ("expires_at", nullable(expiry())),
    ];
    update.extend(labels);

    let coupon = [
        ("id", read_only(id("cpn"))),
        ("program_id", id("prg")),
        ("partner_id", id("ptn")),
        ("code", coupon_code()),
        ("created_at", read_only(time())),
    ];
    let coupon_all: Vec<&str> = coupon.iter().map(|(k, _)| *k).collect();
    vec![
        ("Link", object(&link, &all)),
        ("LinkCreate", object(&create, &["destination"])),
        ("LinkUpdate", object(&update, &[])),
        ("Coupon", object(&coupon, &coupon_all)),
        (
            "CouponCreate",
            object(
                &[
                    ("partner_id", id("ptn")),
                    ("code", coupon_code()),
                    ("program_id", nullable(id("prg"))),
                ],
                &["partner_id", "code"],
            ),
        ),
        (
            "CouponUpdate",
            object(
                &[
                    ("partner_id", nullable(id("ptn"))),
                    ("code", nullable(coupon_code())),
                ],
                &[],
            ),
        ),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let mut owned = paging().to_vec();
    owned.push(query("program_id", id("prg")));
    owned.push(query("partner_id", id("ptn")));
    let link = [path_id("lnk")];
    let coupon = [path_id("cpn")];
    vec![
        (
            "/api/v1/links",
            json!({
                "get": op("List links (a partner key sees its own)", &owned, None, "200", list_of("Link")),
                "post": op("Create a tracked link", &[], Some(schema_ref("LinkCreate")), "201", schema_ref("Link")),
            }),
        ),
        (
            "/api/v1/links/{id}",
            json!({
                "get": op("Get a link", &link, None, "200", schema_ref("Link")),
                "patch": op("Update a link (null clears a label or the expiry)", &link,
                    Some(schema_ref("LinkUpdate")), "200", schema_ref("Link")),
            }),
        ),
        (
            "/api/v1/coupons",
            json!({
                "get": op("List coupons (a partner key sees its own)", &owned, None, "200", list_of("Coupon")),
                "post": op("Create a coupon", &[], Some(schema_ref("CouponCreate")), "201", schema_ref("Coupon")),
            }),
        ),
        (
            "/api/v1/coupons/{id}",
            json!({
                "get": op("Get a coupon", &coupon, None, "200", schema_ref("Coupon")),
                "patch": op("Update a coupon", &coupon, Some(schema_ref("CouponUpdate")), "200", schema_ref("Coupon")),
            }),
        ),
    ]
}
