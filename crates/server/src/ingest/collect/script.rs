//! `/t.js`: the snippet as served — compacted once, with a strong ETag, so
//! browsers revalidate it cheaply.

use std::sync::OnceLock;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The snippet as written (readable, commented).
const SOURCE: &str = include_str!("../../../assets/t.js");

/// The snippet as served: comment lines, blank lines and indentation removed,
/// with its ETag (a hash of exactly those bytes).
pub struct Served {
    pub body: String,
    pub etag: String,
}

pub fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let body = compact(SOURCE);
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Served { body, etag }
    })
}

/// Strip what only a reader needs. Line breaks stay, so automatic semicolon
/// insertion reads the code exactly as written; the source keeps every
/// comment on a line of its own and no multi-line string.
pub fn compact(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, as
/// RFC 9110 asks for `If-None-Match`).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header.trim() == "*" || header.split(',').any(|t| bare(t) == bare(etag))
}

/// `GET /t.js`: the snippet, cached an hour, revalidated by ETag.
#[tracing::instrument(skip_all)]
pub(super) async fn script(headers: HeaderMap) -> Response {
    let s = served();
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &s.etag));
    let common = [
        (ETAG, s.etag.clone()),
        (CACHE_CONTROL, "public, max-age=3600".to_owned()),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [
            (CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        s.body.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_drops_comments_blank_lines_and_indentation_only() {
        let src = "// header\n(function () {\n  // why\n  var a = 1; // kept: not a line comment\n\n  return a;\n})();\n";
        assert_eq!(
            compact(src),
            "(function () {\nvar a = 1; // kept: not a line comment\nreturn a;\n})();\n"
        );
    }

    #[test]
    fn the_served_snippet_is_under_five_kilobytes_and_keeps_its_api() {
        let s = served();
        assert!(s.body.len() < 5_000, "t.js is {} bytes", s.body.len());
        for needle in [
            "track:",
            "identify:",
            "lead:",
            "conversion:",
            "consent:",
            "/collect",
        ] {
            assert!(s.body.contains(needle), "served t.js lost {needle}");
        }
        assert!(!s.body.contains("\n//"), "a comment line was served");
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "\"abc\"";
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("W/\"abc\"", tag));
        assert!(etag_matches("\"x\", \"abc\"", tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("\"abd\"", tag));
        assert!(!etag_matches("", tag));
    }
}
