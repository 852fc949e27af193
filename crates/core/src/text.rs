//! Plain text: what a stored name, id, code or label may contain.
//!
//! Every free-text value Tribute stores (program and partner names, event
//! names, external and event ids, order ids, SKUs, identifiers, UTM labels…)
//! is checked here at the edge, by every way in (API, postback, Segment,
//! snippet, CLI). Refused, with an error naming the field:
//!
//! - **control characters** (`U+0000`–`U+001F`, `U+007F`–`U+009F`): NUL is
//!   refused by PostgreSQL's `text` outright (a 500, and in a shared group
//!   commit a 500 for every other request of the batch); the others corrupt
//!   logs, CSV exports and terminals;
//! - **bidirectional controls** (`U+061C`, `U+200E`, `U+200F`,
//!   `U+202A`–`U+202E`, `U+2066`–`U+2069`, Unicode's `Bidi_Control`
//!   property): they make a dashboard show a name other than the one stored
//!   ("Trojan Source", CVE-2021-42574);
//! - **line and paragraph separators** (`U+2028`, `U+2029`): a name is one line.
//!
//! Event `properties` are free JSON and are *not* checked: a client's
//! properties may legitimately carry any text. Only NUL is removed from them
//! ([`strip_nul`]), because PostgreSQL cannot store it in `text` or `jsonb`.

use serde_json::Value;

use crate::FieldError;

/// Whether `c` may not appear in plain text (see the module documentation).
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Refuse `s` if it holds a control, bidi-control or line-separator
/// character, naming `field` and the first such character and its position.
pub fn check_plain_text(field: &str, s: &str) -> Result<(), FieldError> {
    match s.chars().enumerate().find(|(_, c)| is_forbidden(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(FieldError::new(
            field,
            format!(
                "must not contain control or bidirectional-control characters \
                 (U+{:04X} at character {})",
                c as u32,
                at + 1
            ),
        )),
    }
}

/// A trimmed, non-empty single line of at most a given number of characters,
/// free of the characters [`is_forbidden`] names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlainText(String);

impl PlainText {
    /// Trim `s` and check it: 1 to `max` characters, plain (see the module).
    pub fn parse(field: &str, s: &str, max: usize) -> Result<Self, FieldError> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > max {
            return Err(FieldError::new(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
        check_plain_text(field, t)?;
        Ok(Self(t.to_owned()))
    }

    /// An optional value: absent or blank is `None`, anything else must parse.
    pub fn parse_optional(
        field: &str,
        s: Option<&str>,
        max: usize,
    ) -> Result<Option<String>, FieldError> {
        match s.map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => Self::parse(field, t, max).map(|p| Some(p.0)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Remove NUL (`U+0000`) from every string and object key of `value`, in place.
///
/// Properties are stored as JSON text; PostgreSQL's `jsonb` refuses the
/// escaped `\u0000` and `text` the raw byte, and a NUL carries no meaning a
/// report could show. Every other character is kept as sent.
pub fn strip_nul(value: &mut Value) {
    fn clean(s: &mut String) {
        if s.contains('\0') {
            s.retain(|c| c != '\0');
        }
    }
    match value {
        Value::String(s) => clean(s),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                for (mut k, v) in old {
                    clean(&mut k);
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(strip_nul);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_text_refuses_each_control_bidi_and_separator_character_naming_the_field() {
        let cases = [
            ("nul", "a\u{0}b"),
            ("tab", "a\tb"),
            ("newline", "a\nb"),
            ("escape", "a\u{1b}[31mb"),
            ("delete", "a\u{7f}b"),
            ("c1 control", "a\u{85}b"),
            ("c1 last", "a\u{9f}b"),
            ("arabic letter mark", "a\u{61c}b"),
            ("left-to-right mark", "a\u{200e}b"),
            ("right-to-left mark", "a\u{200f}b"),
            ("left-to-right embedding", "a\u{202a}b"),
            ("right-to-left override", "a\u{202e}b"),
            ("left-to-right isolate", "a\u{2066}b"),
            ("pop directional isolate", "a\u{2069}b"),
            ("line separator", "a\u{2028}b"),
            ("paragraph separator", "a\u{2029}b"),
        ];
        for (case, s) in cases {
            let err = check_plain_text("name", s).expect_err(case);
            assert_eq!(err.field, "name", "case {case}");
            assert!(err.message.contains("at character 2"), "case {case}: {err}");
            assert!(PlainText::parse("name", s, 200).is_err(), "case {case}");
        }
    }

    #[test]
    fn plain_text_accepts_letters_of_every_script_emoji_and_joiners() {
        let cases = [
            ("accents", "Café Müller"),
            ("arabic", "متجر"),
            ("hebrew", "חנות"),
            ("cjk", "商店"),
            ("emoji with zero-width joiner", "👩\u{200d}💻 shop"),
            ("symbols", "50% off — \"spring\" <sale> & more"),
        ];
        for (case, s) in cases {
            assert!(check_plain_text("name", s).is_ok(), "case {case}");
            assert_eq!(
                PlainText::parse("name", s, 200).unwrap().as_str(),
                s,
                "case {case}"
            );
        }
    }

    #[test]
    fn plain_text_is_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(
            PlainText::parse("name", "  Acme ", 10).unwrap().as_str(),
            "Acme"
        );
        assert!(PlainText::parse("name", "ééééé", 5).is_ok());
        assert_eq!(
            PlainText::parse("name", "éééééé", 5).unwrap_err().field,
            "name"
        );
        assert!(PlainText::parse("name", "   ", 5).is_err());
        assert_eq!(PlainText::parse_optional("name", Some("  "), 5), Ok(None));
        assert_eq!(PlainText::parse_optional("name", None, 5), Ok(None));
        assert_eq!(
            PlainText::parse_optional("event_id", Some("a\u{0}"), 5)
                .unwrap_err()
                .field,
            "event_id"
        );
    }

    #[test]
    fn strip_nul_removes_nul_from_nested_strings_and_keys_and_keeps_the_rest() {
        let mut v = json!({
            "plan": "pro\u{0}",
            "k\u{0}ey": ["a\u{0}b", {"deep": "\u{0}x\ty\u{202e}"}],
            "n": 5,
            "ok": true,
            "none": null
        });
        strip_nul(&mut v);
        assert_eq!(
            v,
            json!({
                "plan": "pro",
                "key": ["ab", {"deep": "x\ty\u{202e}"}],
                "n": 5,
                "ok": true,
                "none": null
            })
        );
        assert!(!v.to_string().contains("\\u0000"));
    }
}
