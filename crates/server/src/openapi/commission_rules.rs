//! The document's reward rules (`api::reward_rules`), schema for schema
//! the rules of `tribute_core::commission::rules` and `…::conditions`.
//!
//! A rule's fields depend on each other (`rate_bps` only with `percentage`,
//! `amount` only with `fixed`, a duration only on sale rules), so a body is
//! one of four closed shapes. Conditions nest at most
//! `conditions::MAX_DEPTH` groups deep: the document spells each depth out
//! (`RuleCondition1` … `RuleCondition5`) instead of a recursive reference,
//! so a client, or a fuzzer, never builds a tree the server refuses for its
//! depth. The limit of `conditions::MAX_TESTS` tests in all is said in words.

use serde_json::{json, Value};
use tribute_core::commission::conditions::{MAX_DEPTH, MAX_LIST, MAX_TESTS};
use tribute_core::money::MAX_MINOR;

use super::schema::{
    any_object, array, boolean, currency, described, id, int, integer, label, nullable, object,
    one_of_strings, op, param, path_id, read_only, schema_ref, string, In,
};

/// What Rust's `str::trim` removes (Unicode `White_Space`), as in `schema`.
const SPACE: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// The longest text a condition compares with, in characters.
const MAX_TEXT: usize = 200;

/// A JSON object with exactly these properties, all required.
fn closed(props: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(props, &required)
}

fn list_of(item: Value) -> Value {
    let mut a = array(item);
    a["minItems"] = json!(1);
    a["maxItems"] = json!(MAX_LIST);
    a
}

/// Text compared as trimmed (`conditions::text_for`): 1 to 200 characters
/// once trimmed, anything inside.
fn trimmed_text() -> Value {
    json!({
        "type": "string",
        "pattern": format!(
            r"^[{SPACE}]*[^{SPACE}]([\s\S]{{0,{}}}[^{SPACE}])?[{SPACE}]*$",
            MAX_TEXT - 2
        ),
    })
}

/// A metadata value compared as text: a string of 1 to 200 characters (as
/// sent), a number or a boolean, read as it is written.
fn metadata_scalar() -> Value {
    json!({"anyOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
        {"type": "number"},
        {"type": "boolean"},
    ]})
}

/// One test of a field kind: `field` (an enum or a pattern), the operators
/// it takes and the value they compare with.
fn test(field: Value, ops: &[&str], value: Value) -> Value {
    closed(&[
        ("field", field),
        ("op", one_of_strings(ops.iter().copied())),
        ("value", value),
    ])
}

/// `field op value`, every combination core accepts.
fn rule_test() -> Value {
    let text_fields = one_of_strings([
        "sale.sku",
        "customer.source",
        "partner.tier",
        "partner.group",
    ]);
    let number_fields = one_of_strings(["sale.value", "partner.revenue", "partner.conversions"]);
    let metadata = json!({"type": "string", "pattern": r"^sale\.metadata\.[\s\S]{1,100}$"});
    let country =
        json!({"type": "string", "pattern": format!("^[{SPACE}]*[A-Za-z]{{2}}[{SPACE}]*$")});
    let payment = one_of_strings(["new", "recurring"]);
    let equal = ["eq", "ne"];
    let listed = ["in", "not_in"];
    let ordering = ["eq", "ne", "gt", "gte", "lt", "lte"];
    let whole = integer(i64::MIN, i64::MAX);
    let mut variants = Vec::new();
    for (field, value) in [
        (text_fields, trimmed_text()),
        (one_of_strings(["sale.currency"]), currency()),
        (one_of_strings(["sale.payment"]), payment),
        (one_of_strings(["customer.country"]), country),
        (metadata.clone(), metadata_scalar()),
    ] {
        variants.push(test(field.clone(), &equal, value.clone()));
        variants.push(test(field, &listed, list_of(value)));
    }
    variants.push(test(number_fields, &ordering, whole.clone()));
    variants.push(test(metadata, &["gt", "gte", "lt", "lte"], whole));
    described(
        json!({"oneOf": variants}),
        "`field op value`: text fields take eq, ne, in, not_in; numbers (minor units or \
         counts) eq, ne, gt, gte, lt, lte; `sale.metadata.<key>` both (as text, or as an \
         integer with the ordering operators). A test on an unknown fact is false.",
    )
}

/// A condition at `depth` (1 is the root): a test, or a group `{"all": […]}`
/// / `{"any": […]}` of conditions one level deeper; a group at the deepest
/// level holds tests only.
fn condition(depth: usize) -> Value {
    let inner = if depth < MAX_DEPTH {
        schema_ref(&format!("RuleCondition{}", depth + 1))
    } else {
        schema_ref("RuleTest")
    };
    let mut items = array(inner);
    items["minItems"] = json!(1);
    let group = json!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": {"enum": ["all", "any"]},
        "additionalProperties": items,
    });
    json!({"oneOf": [schema_ref("RuleTest"), group]})
}

fn duration(sale: bool) -> Value {
    if !sale {
        return described(
            nullable(one_of_strings(["lifetime"])),
            "lead and click rules have no payments to count: lifetime only",
        );
    }
    described(
        json!({"anyOf": [
            {"type": "string", "enum": ["once", "lifetime"]},
            closed(&[("months", integer(1, 1200))]),
            {"type": "null"},
        ]}),
        "which of a customer's payments pay: the first (`once`, the default), those \
         less than N months after the first, or all",
    )
}

fn scope() -> Value {
    described(
        json!({"anyOf": [
            {"type": ["string", "null"], "enum": ["program", null]},
            closed(&[("group", label(100))]),
            closed(&[("partner_id", id("ptn"))]),
            closed(&[("link_id", id("lnk"))]),
        ]}),
        "whom the rule applies to (default the program); the most specific scope wins \
         (link, partner, group, program), then the highest paying rule",
    )
}

fn cap() -> Value {
    described(
        nullable(closed(&[
            ("amount", integer(0, MAX_MINOR)),
            (
                "period",
                one_of_strings(["day", "week", "month", "all_time"]),
            ),
        ])),
        "at most `amount` minor units per partner per period (UTC days, ISO weeks, months)",
    )
}

/// The four shapes of a rule's terms (sale or lead/click, percentage or
/// fixed), with `program_id` when the body creates one.
fn terms(with_program: bool) -> Value {
    let mut variants = Vec::new();
    for sale in [true, false] {
        for percentage in [true, false] {
            let events = if sale {
                vec!["sale"]
            } else {
                vec!["lead", "click"]
            };
            let mut props = Vec::new();
            if with_program {
                props.push(("program_id", id("prg")));
            }
            let none = json!({"type": "null"});
            props.extend([
                ("name", label(200)),
                ("event", one_of_strings(events)),
                (
                    "kind",
                    one_of_strings([if percentage { "percentage" } else { "fixed" }]),
                ),
                (
                    "rate_bps",
                    if percentage {
                        described(
                            integer(0, 10_000),
                            "basis points of the value, 10000 = 100%",
                        )
                    } else {
                        none.clone()
                    },
                ),
                (
                    "amount",
                    if percentage {
                        none
                    } else {
                        described(
                            integer(0, MAX_MINOR),
                            "minor units per conversion (or unit)",
                        )
                    },
                ),
                ("duration", duration(sale)),
                (
                    "conditions",
                    described(
                        nullable(schema_ref("RuleCondition1")),
                        &format!("AND/OR groups of tests, at most {MAX_TESTS} tests in all"),
                    ),
                ),
                ("scope", scope()),
                ("cap", cap()),
            ]);
            let mut required = vec!["name", "event", "kind"];
            required.push(if percentage { "rate_bps" } else { "amount" });
            if with_program {
                required.push("program_id");
            }
            variants.push(object(&props, &required));
        }
    }
    json!({"oneOf": variants})
}

/// A rule as the server shows it.
fn rule() -> Value {
    let props = [
        ("id", read_only(id("rwr"))),
        ("program_id", id("prg")),
        (
            "version",
            described(int(), "1 for a new rule, one more with each edit"),
        ),
        ("name", string()),
        ("event", one_of_strings(["sale", "lead", "click"])),
        ("kind", one_of_strings(["percentage", "fixed"])),
        ("rate_bps", int()),
        ("amount", int()),
        (
            "duration",
            json!({"anyOf": [
                {"type": "string", "enum": ["once", "lifetime"]},
                closed(&[("months", int())]),
            ]}),
        ),
        ("conditions", nullable(any_object("as written, normalised"))),
        (
            "scope",
            json!({"anyOf": [
                {"type": "string", "enum": ["program"]},
                closed(&[("group", string())]),
                closed(&[("partner_id", id("ptn"))]),
                closed(&[("link_id", id("lnk"))]),
            ]}),
        ),
        (
            "cap",
            nullable(closed(&[("amount", int()), ("period", string())])),
        ),
        (
            "deleted",
            described(boolean(), "retired: no new commission uses it"),
        ),
    ];
    let required: Vec<&str> = props
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !matches!(*k, "rate_bps" | "amount"))
        .collect();
    object(&props, &required)
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    const NAMES: [&str; MAX_DEPTH] = [
        "RuleCondition1",
        "RuleCondition2",
        "RuleCondition3",
        "RuleCondition4",
        "RuleCondition5",
    ];
    let mut out = vec![
        ("RuleTest", rule_test()),
        ("RewardRuleCreate", terms(true)),
        ("RewardRuleUpdate", terms(false)),
        ("RewardRule", rule()),
    ];
    for (i, name) in NAMES.iter().enumerate() {
        out.push((name, condition(i + 1)));
    }
    out
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let rules = object(&[("data", array(schema_ref("RewardRule")))], &["data"]);
    let program = param("program_id", In::Query, id("prg"), true);
    let version = param("version", In::Query, integer(1, i64::from(u32::MAX)), false);
    let id = path_id("rwr");
    vec![
        (
            "/api/v1/reward-rules",
            json!({
                "get": op("A program's live reward rules, current versions (admin)", &[program],
                    None, "200", rules),
                "post": op("Create a reward rule, version 1 (admin)", &[],
                    Some(schema_ref("RewardRuleCreate")), "201", schema_ref("RewardRule")),
            }),
        ),
        (
            "/api/v1/reward-rules/{id}",
            json!({
                "get": op("A reward rule: its current version, or `version` (admin)",
                    &[id.clone(), version], None, "200", schema_ref("RewardRule")),
                "patch": op("Store the full terms as the rule's next version; commissions \
                    already made keep theirs (admin)", std::slice::from_ref(&id),
                    Some(schema_ref("RewardRuleUpdate")), "200", schema_ref("RewardRule")),
                "delete": op("Retire a rule: no new commission uses it (admin)", &[id],
                    None, "200", schema_ref("RewardRule")),
            }),
        ),
    ]
}
