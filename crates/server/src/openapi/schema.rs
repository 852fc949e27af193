//! Building blocks of the OpenAPI document: JSON Schemas that say exactly
//! what the server accepts, so a client (or a fuzzer) that keeps to the
//! document is never refused for the shape of its request.
//!
//! Each helper mirrors one parsing rule of the server or core (a label is
//! trimmed, non-empty and free of control characters; an id has its
//! prefix…); the rule's home is named beside it.

use serde_json::{json, Map, Value};
use tribute_core::money::Currency;

/// A closed object: the listed properties, `required` among them, and no
/// other (request bodies refuse unknown fields, `deny_unknown_fields`).
pub fn object(props: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    for r in required {
        debug_assert!(properties.contains_key(*r), "required `{r}` is not listed");
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A free-form JSON object (properties of an event, the nested explanation
/// of an attribution), described rather than specified.
pub fn any_object(description: &str) -> Value {
    json!({"type": "object", "description": description})
}

/// `schema` or JSON `null`: serde reads `null` as "not given" for every
/// optional field, so the document must allow it too.
pub fn nullable(mut schema: Value) -> Value {
    if schema.get("$ref").is_some() {
        return json!({"anyOf": [schema, {"type": "null"}]});
    }
    if let Some(any) = schema.get_mut("anyOf").and_then(Value::as_array_mut) {
        any.push(json!({"type": "null"}));
        return schema;
    }
    if let Some(e) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        e.push(Value::Null);
    }
    match schema.get("type").cloned() {
        Some(Value::String(t)) => schema["type"] = json!([t, "null"]),
        Some(Value::Array(mut ts)) if !ts.contains(&json!("null")) => {
            ts.push(json!("null"));
            schema["type"] = Value::Array(ts);
        }
        _ => {}
    }
    schema
}

/// Mark a response property as set by the server: never sent in a request.
pub fn read_only(mut schema: Value) -> Value {
    schema["readOnly"] = json!(true);
    schema
}

/// Add a description to a schema.
pub fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

pub fn string() -> Value {
    json!({"type": "string"})
}

pub fn boolean() -> Value {
    json!({"type": "boolean"})
}

pub fn number() -> Value {
    json!({"type": "number"})
}

/// A 64-bit integer in `[min, max]`.
pub fn integer(min: i64, max: i64) -> Value {
    json!({"type": "integer", "format": "int64", "minimum": min, "maximum": max})
}

/// A count or amount as the server reports it (any 64-bit integer).
pub fn int() -> Value {
    json!({"type": "integer", "format": "int64"})
}

/// One of `values`.
pub fn one_of_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    let values: Vec<&str> = values.into_iter().collect();
    json!({"type": "string", "enum": values})
}

/// A string matching `pattern` (anchored by the caller) of at most `max` characters.
pub fn pattern(pattern: &str, max: usize) -> Value {
    json!({"type": "string", "pattern": pattern, "maxLength": max})
}

/// Characters no stored text may hold (`tribute_core::text::is_forbidden`):
/// C0 and C1 controls, bidi controls, line and paragraph separators.
const CONTROL: &str =
    r"\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029";

/// What Rust's `str::trim` removes (Unicode `White_Space`), so a pattern's
/// trimming matches the server's exactly (a regex `\s` differs).
const SPACE: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A required label (`tribute_core::partner::parse_label`): trimmed, then
/// 1 to `max` characters, none of them a control character.
pub fn label(max: usize) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max,
        "pattern": format!(r"^[{SPACE}]*[^{CONTROL}]*[^{SPACE}{CONTROL}][^{CONTROL}]*[{SPACE}]*$"),
    })
}

/// An optional label (`api::opt_label`, and opaque identifiers such as
/// `user_id` in `tribute_core::identity`): blank means "none"; otherwise
/// as [`label`].
pub fn optional_label(max: usize) -> Value {
    json!({
        "type": "string",
        "maxLength": max,
        "pattern": format!(r"^[{SPACE}]*[^{CONTROL}]*[{SPACE}]*$"),
    })
}

/// Text checked as sent, not trimmed, that must not be blank (a SKU, a
/// tracked event name): 1 to `max` characters, none of them forbidden.
pub fn trimmed(max: usize) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max,
        "pattern": format!(r"^[^{CONTROL}]*[^{SPACE}{CONTROL}][^{CONTROL}]*$"),
    })
}

/// An amount in minor units as the ways in accept it:
/// 0 to `tribute_core::money::MAX_MINOR`.
pub fn amount() -> Value {
    integer(0, tribute_core::money::MAX_MINOR)
}

/// Text of at most `max` characters.
pub fn limited(max: usize) -> Value {
    json!({"type": "string", "maxLength": max})
}

/// A typed id (`tribute_core::ids`): its prefix, `_`, 1 to 64 base62 characters.
pub fn id(prefix: &str) -> Value {
    json!({
        "type": "string",
        "pattern": format!("^{prefix}_[A-Za-z0-9]{{1,64}}$"),
        "maxLength": prefix.len() + 65,
        "example": format!("{prefix}_4QbWd9xT2mK7pL0sVn3E"),
    })
}

/// A time as the server writes it and reads it in bodies: RFC 3339.
pub fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// A period bound in a query (`api::partners::parse_time`): an RFC 3339
/// time, or a `YYYY-MM-DD` date meaning midnight UTC.
pub fn time_or_date() -> Value {
    json!({"anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
    ]})
}

/// An ISO 4217 currency code (`tribute_core::money::Currency`).
pub fn currency() -> Value {
    one_of_strings(Currency::codes())
}

/// A domain name (`tribute_core::program::AllowedDomain`): dot-separated
/// labels of letters, digits and inner hyphens.
pub fn domain() -> Value {
    pattern(&format!("^{DOMAIN}$"), 253)
}

/// The body of [`domain`]'s pattern, unanchored.
pub const DOMAIN: &str =
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*";

/// An e-mail address (`tribute_core::partner::Email`), kept to printable ASCII.
pub fn email() -> Value {
    pattern(&format!("^{EMAIL}$"), 254)
}

/// The body of [`email`]'s pattern, unanchored.
pub const EMAIL: &str = r"[!-?A-~]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+";

/// A hex SHA-256 digest (`tribute_core::identity`); blank means "none".
pub fn sha256_hex() -> Value {
    pattern(r"^([0-9A-Fa-f]{64})?$", 64)
}

/// A reference to a schema of the document.
pub fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

pub fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// A page of a list: `data`, and where the page is (`api::List`).
pub fn list_of(name: &str) -> Value {
    object(
        &[
            ("data", array(schema_ref(name))),
            ("limit", integer(1, 500)),
            ("offset", integer(0, i64::MAX / 2)),
            ("has_more", boolean()),
        ],
        &["data", "limit", "offset", "has_more"],
    )
}

/// Where a parameter goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
    Header,
}

/// One parameter: `name`, where it goes, its schema, whether required.
pub fn param(name: &str, place: In, schema: Value, required: bool) -> Value {
    let place = match place {
        In::Path => "path",
        In::Query => "query",
        In::Header => "header",
    };
    json!({"name": name, "in": place, "required": required, "schema": schema})
}

/// The `{id}` of a path, an id with `prefix`.
pub fn path_id(prefix: &str) -> Value {
    param("id", In::Path, id(prefix), true)
}

/// An optional query parameter.
pub fn query(name: &str, schema: Value) -> Value {
    param(name, In::Query, schema, false)
}

/// `?limit=&offset=` (`api::Paging`).
pub fn paging() -> [Value; 2] {
    [
        query("limit", integer(1, 500)),
        query("offset", integer(0, i64::MAX / 2)),
    ]
}

/// One operation: its summary, parameters, request body, success status
/// and body. Every failure is the JSON error (`crate::error::ApiError`).
pub fn op(summary: &str, params: &[Value], body: Option<Value>, status: &str, out: Value) -> Value {
    let mut o = json!({
        "summary": summary,
        "parameters": params,
        "responses": {
            status: {"description": "success", "content": {"application/json": {"schema": out}}},
            "4XX": {"description": "bad input (naming the field), a missing or insufficient key, or not found",
                    "content": {"application/json": {"schema": schema_ref("Error")}}},
        }
    });
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_adds_null_to_types_enums_and_references() {
        assert_eq!(nullable(string())["type"], json!(["string", "null"]));
        let e = nullable(one_of_strings(["a"]));
        assert_eq!(e["enum"], json!(["a", null]));
        assert_eq!(
            nullable(schema_ref("X")),
            json!({"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]})
        );
    }

    #[test]
    fn id_patterns_match_generated_ids_and_only_their_prefix() {
        let re = |prefix: &str| {
            regex::Regex::new(id(prefix)["pattern"].as_str().expect("a pattern"))
                .expect("a valid pattern")
        };
        let program = tribute_core::ids::ProgramId::generate();
        assert!(re("prg").is_match(program.as_str()));
        assert!(!re("ptn").is_match(program.as_str()));
        assert!(!re("prg").is_match("prg_"));
    }
}
