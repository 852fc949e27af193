//! Snippet fixtures: a program's ingest write key and `/collect` posted as
//! the snippet posts it.

use reqwest::header::{CONTENT_TYPE, ORIGIN};
use serde_json::Value;
use tribute_core::ids::ProgramId;

use super::{Reply, TestApp};

/// The id of a program as the API shows it.
pub fn program_id(p: &Value) -> ProgramId {
    ProgramId::parse(p["id"].as_str().expect("program id")).expect("a program id")
}

/// An ingest write key for `program`.
pub async fn write_key(app: &TestApp, program: &ProgramId) -> String {
    // The snippet's key is publishable: it sits in every page.
    super::publishable_key(&app.store, program).await
}

/// POST `body` to `/collect` as the snippet does (`text/plain`), from `origin`.
pub async fn collect(app: &TestApp, origin: Option<&str>, body: &str) -> Reply {
    let mut request = app
        .client
        .post(app.url("/collect"))
        .header(CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(body.to_owned());
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    Reply::read(request.send().await.expect("posting to /collect")).await
}

pub fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}
