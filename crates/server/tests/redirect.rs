//! Black-box tests of the tracked redirect `GET|HEAD /r/{code}`: where it
//! sends the visitor, what click it records, and what it refuses.

#[macro_use]
mod common;

use std::collections::HashSet;

use chrono::{Duration, Utc};
use reqwest::header::CACHE_CONTROL;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tribute_core::ids::{LinkId, PartnerId, ProgramId};
use tribute_core::link::{Link, ShortCode, Utm};
use url::Url;

use common::{spawn_app, TestApp, Visitor, BROWSER_UA, GOOGLEBOT_UA, OTHER_BROWSER_UA};

/// The query of `url` as ordered pairs.
fn query_pairs(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `tid` of a redirect's Location.
fn tid_of(url: &Url) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == "tid")
        .map(|(_, v)| v.into_owned())
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` missing in {v}"))
}

#[tokio::test]
async fn redirect_appends_utm_and_click_id_keeping_the_destinations_query_and_fragment() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app
        .create_link(
            &seed.alice.id,
            json!({
                "destination": "https://www.acme.test/pricing?plan=pro#faq",
                "source": "social",
                "campaign": "spring",
            }),
        )
        .await;

    let reply = app.visit(&format!("/r/{}", str_of(&link, "code"))).await;

    reply.ok(302);
    let location = reply.location();
    assert_eq!(location.scheme(), "https");
    assert_eq!(location.host_str(), Some("www.acme.test"));
    assert_eq!(location.path(), "/pricing");
    assert_eq!(location.fragment(), Some("faq"));
    let tid = tid_of(&location).expect("a tid");
    assert_eq!(
        query_pairs(&location),
        pairs(&[
            ("plan", "pro"),
            ("utm_source", "alice"),
            ("utm_medium", "social"),
            ("utm_campaign", "spring"),
            ("tid", &tid),
        ])
    );
    app.finish().await;
}

#[tokio::test]
async fn redirect_passes_the_visitors_query_through_but_never_a_forged_click_id_or_utm() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app
        .create_link(
            &seed.alice.id,
            json!({"destination": "https://acme.test/landing?lang=en"}),
        )
        .await;

    let reply = app
        .visit(&format!(
            "/r/{}?ref=newsletter&tid=clk_forged&utm_source=mallory&q=a%20b",
            str_of(&link, "code")
        ))
        .await;

    reply.ok(302);
    let location = reply.location();
    let tid = tid_of(&location).expect("a tid");
    assert_ne!(tid, "clk_forged");
    assert_eq!(
        query_pairs(&location),
        pairs(&[
            ("lang", "en"),
            ("ref", "newsletter"),
            ("q", "a b"),
            ("utm_source", "alice"),
            ("utm_medium", "partner"),
            ("tid", &tid),
        ])
    );
    app.finish().await;
}

#[tokio::test]
async fn the_click_id_in_the_location_is_the_recorded_click_with_truncated_ip_agent_and_referrer() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app
        .create_link(&seed.alice.id, json!({"source": "email"}))
        .await;

    let reply = app
        .visit_as(
            &format!("/r/{}", str_of(&link, "code")),
            &Visitor {
                referrer: Some("https://news.example.org/post/1"),
                ..Visitor::default()
            },
        )
        .await;
    reply.ok(302);
    let tid = tid_of(&reply.location()).expect("a tid");

    let click = app.wait_for_click(&tid).await;
    assert_eq!(click.id.as_str(), tid);
    assert_eq!(click.link_id.as_str(), str_of(&link, "id"));
    assert_eq!(click.partner_id.as_str(), seed.alice.id);
    assert_eq!(click.program_id.as_str(), seed.program_id);
    assert_eq!(click.ip_truncated, "127.0.0.0/24");
    assert_eq!(click.user_agent.as_deref(), Some(BROWSER_UA));
    assert_eq!(
        click.referrer.as_deref(),
        Some("https://news.example.org/post/1")
    );
    assert_eq!(click.source.as_deref(), Some("email"));
    assert!(!click.is_bot, "a browser is not a bot");
    assert!(
        (Utc::now() - click.at).num_seconds().abs() < 60,
        "clicked now, recorded at {}",
        click.at
    );
    app.finish().await;
}

#[tokio::test]
async fn the_redirect_may_not_be_cached_by_browsers_or_proxies() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;

    let reply = app.visit(&format!("/r/{}", str_of(&link, "code"))).await;

    reply.ok(302);
    let cache = reply.headers[CACHE_CONTROL].to_str().unwrap();
    assert!(cache.contains("no-store"), "Cache-Control: {cache}");
    app.finish().await;
}

#[tokio::test]
async fn head_on_a_link_answers_302_with_the_same_location() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app
        .create_link(
            &seed.alice.id,
            json!({"destination": "https://acme.test/a?b=c#d"}),
        )
        .await;

    let reply = app
        .visit_as(
            &format!("/r/{}", str_of(&link, "code")),
            &Visitor {
                method: Method::HEAD,
                ..Visitor::default()
            },
        )
        .await;

    reply.ok(302);
    let location = reply.location();
    assert_eq!(location.path(), "/a");
    assert_eq!(location.fragment(), Some("d"));
    let tid = tid_of(&location).expect("a tid");
    // A HEAD is a link checker or preview, never a person: recorded as a bot.
    let click = app.wait_for_click(&tid).await;
    assert!(click.is_bot, "a HEAD click is counted as a bot");
    app.finish().await;
}

#[tokio::test]
async fn an_unknown_code_is_a_404_html_page_and_records_nothing() {
    let mut app = spawn_app().await;
    app.seed().await;

    for path in ["/r/nosuchcode", "/r/abc%2Fdef", "/r/x"] {
        let reply = app.visit(path).await;
        assert_eq!(reply.status.as_u16(), 404, "case {path}: {}", reply.text);
        let content_type = reply.headers["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/html"),
            "case {path}: {content_type}"
        );
        assert!(
            reply.text.contains("Link not found"),
            "case {path}: {}",
            reply.text
        );
        assert!(reply.headers.get("location").is_none(), "case {path}");
    }

    app.shutdown().await;
    assert_eq!(app.store.count_clicks().await.unwrap(), 0);
    app.finish().await;
}

/// Insert a link straight into the store (the API refuses a past expiry).
async fn insert_link(app: &TestApp, program_id: &str, partner_id: &str, code: &str) -> Link {
    let now = Utc::now();
    let link = Link {
        id: LinkId::generate(),
        program_id: ProgramId::parse(program_id).unwrap(),
        partner_id: PartnerId::parse(partner_id).unwrap(),
        code: ShortCode::parse(code).unwrap(),
        destination: "https://acme.test/".into(),
        source: None,
        medium: None,
        campaign: None,
        content: None,
        utm: Utm::generate("alice", None, None, None, None),
        expires_at: Some(now - Duration::minutes(1)),
        created_at: now - Duration::days(2),
    };
    app.store.insert_link(&link).await.unwrap();
    link
}

#[tokio::test]
async fn an_expired_link_is_a_404_and_records_nothing() {
    let mut app = spawn_app().await;
    let seed = app.seed().await;
    insert_link(&app, &seed.program_id, &seed.alice.id, "expired-sale").await;

    for method in [Method::GET, Method::HEAD] {
        let reply = app
            .visit_as(
                "/r/expired-sale",
                &Visitor {
                    method: method.clone(),
                    ..Visitor::default()
                },
            )
            .await;
        assert_eq!(reply.status.as_u16(), 404, "case {method}: {}", reply.text);
        assert!(reply.headers.get("location").is_none(), "case {method}");
    }

    app.shutdown().await;
    assert_eq!(app.store.count_clicks().await.unwrap(), 0);
    app.finish().await;
}

#[tokio::test]
async fn a_link_with_a_future_expiry_still_redirects() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let expires = (Utc::now() + Duration::days(1)).to_rfc3339();
    let link = app
        .create_link(&seed.alice.id, json!({"expires_at": expires}))
        .await;

    let reply = app.visit(&format!("/r/{}", str_of(&link, "code"))).await;

    reply.ok(302);
    assert!(tid_of(&reply.location()).is_some());
    app.finish().await;
}

#[tokio::test]
async fn a_bot_click_is_recorded_as_a_bot_and_counted_in_bot_clicks_not_clicks() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let path = format!("/r/{}", str_of(&link, "code"));

    let bot = app
        .visit_as(
            &path,
            &Visitor {
                user_agent: Some(GOOGLEBOT_UA),
                ..Visitor::default()
            },
        )
        .await;
    bot.ok(302);
    let person = app.visit(&path).await;
    person.ok(302);

    let bot_click = app
        .wait_for_click(&tid_of(&bot.location()).expect("a bot still gets a tid"))
        .await;
    assert!(bot_click.is_bot, "Googlebot is flagged as a bot");
    assert_eq!(bot_click.user_agent.as_deref(), Some(GOOGLEBOT_UA));
    let person_click = app
        .wait_for_click(&tid_of(&person.location()).unwrap())
        .await;
    assert!(!person_click.is_bot);

    let metrics = app.metrics(&seed.alice.id, &app.admin_key).await;
    let m = metrics.ok(200);
    assert_eq!(m["clicks"], 1, "{m}");
    assert_eq!(m["unique_clicks"], 1, "{m}");
    assert_eq!(m["bot_clicks"], 1, "{m}");
    app.finish().await;
}

#[tokio::test]
async fn a_request_without_a_user_agent_is_counted_as_a_bot() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;

    let reply = app
        .visit_as(
            &format!("/r/{}", str_of(&link, "code")),
            &Visitor {
                user_agent: None,
                ..Visitor::default()
            },
        )
        .await;

    let click = app
        .wait_for_click(&tid_of(&reply.location()).unwrap())
        .await;
    assert!(click.is_bot);
    assert_eq!(click.user_agent, None);
    app.finish().await;
}

#[tokio::test]
async fn unique_clicks_are_counted_once_per_visitor_link_and_day_by_source() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let social = app
        .create_link(&seed.alice.id, json!({"source": "social"}))
        .await;
    let email = app
        .create_link(&seed.alice.id, json!({"source": "email"}))
        .await;
    let bobs = app.create_link(&seed.bob.id, json!({})).await;
    let as_other = Visitor {
        user_agent: Some(OTHER_BROWSER_UA),
        ..Visitor::default()
    };

    // One visitor (same address and agent) twice on the social link, once on
    // the email link; a second visitor (another agent) once on the social link.
    let social_path = format!("/r/{}", str_of(&social, "code"));
    let email_path = format!("/r/{}", str_of(&email, "code"));
    app.visit(&social_path).await.ok(302);
    app.visit(&social_path).await.ok(302);
    app.visit(&email_path).await.ok(302);
    app.visit_as(&social_path, &as_other).await.ok(302);
    // Another partner's click must not show in Alice's metrics.
    app.visit(&format!("/r/{}", str_of(&bobs, "code")))
        .await
        .ok(302);
    app.wait_for_clicks(5).await;

    let reply = app.metrics(&seed.alice.id, &app.admin_key).await;
    let m = reply.ok(200);
    assert_eq!(m["partner_id"], seed.alice.id.as_str());
    assert_eq!(m["clicks"], 4, "{m}");
    assert_eq!(m["unique_clicks"], 3, "{m}");
    assert_eq!(m["bot_clicks"], 0, "{m}");
    let by_source: Vec<(String, i64, i64)> = m["by_source"]
        .as_array()
        .expect("by_source")
        .iter()
        .map(|s| {
            (
                str_of(s, "source").to_owned(),
                s["clicks"].as_i64().unwrap(),
                s["unique_clicks"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_source,
        vec![("email".to_owned(), 1, 1), ("social".to_owned(), 3, 2)]
    );

    let bob = app.metrics(&seed.bob.id, &app.admin_key).await;
    assert_eq!(bob.ok(200)["clicks"], 1);
    app.finish().await;
}

#[tokio::test]
async fn metrics_only_count_clicks_inside_the_period() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    app.visit(&format!("/r/{}", str_of(&link, "code")))
        .await
        .ok(302);
    app.wait_for_clicks(1).await;

    let tomorrow = (Utc::now() + Duration::days(1)).date_naive();
    let later = tomorrow + Duration::days(1);
    let reply = app
        .get(
            &format!(
                "/partners/{}/metrics?from={tomorrow}&to={later}",
                seed.alice.id
            ),
            &app.admin_key,
        )
        .await;
    assert_eq!(reply.ok(200)["clicks"], 0);

    let inverted = app
        .get(
            &format!(
                "/partners/{}/metrics?from={later}&to={tomorrow}",
                seed.alice.id
            ),
            &app.admin_key,
        )
        .await;
    inverted.assert_error(422, Some("from"), "from after to");
    let malformed = app
        .get(
            &format!("/partners/{}/metrics?from=yesterday", seed.alice.id),
            &app.admin_key,
        )
        .await;
    malformed.assert_error(422, Some("from"), "from=yesterday");
    app.finish().await;
}

#[tokio::test]
async fn a_suspended_partners_link_redirects_without_a_click_id_and_records_nothing() {
    let mut app = spawn_app().await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let path = format!("/r/{}", str_of(&link, "code"));
    let partner = format!("/partners/{}", seed.alice.id);

    // Visited while active: the link is now in the redirect cache.
    let before = app.visit(&path).await;
    let first = tid_of(&before.location()).expect("an active partner's link credits");

    app.patch(&partner, &app.admin_key, &json!({"status": "suspended"}))
        .await
        .ok(200);
    let suspended = app.visit(&path).await;
    suspended.ok(302);
    let location = suspended.location();
    assert_eq!(tid_of(&location), None, "no click id: {location}");
    assert_eq!(location.host_str(), Some("acme.test"));

    app.patch(&partner, &app.admin_key, &json!({"status": "active"}))
        .await
        .ok(200);
    let after = app.visit(&path).await;
    let second = tid_of(&after.location()).expect("credits again once reactivated");

    app.shutdown().await;
    let clicks = app
        .store
        .partner_clicks(
            &PartnerId::parse(&seed.alice.id).unwrap(),
            Utc::now() - Duration::hours(1),
            Utc::now() + Duration::hours(1),
            100,
        )
        .await
        .unwrap();
    let ids: HashSet<String> = clicks.iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids, HashSet::from([first, second]));
    app.finish().await;
}

#[tokio::test]
async fn removing_a_domain_from_the_program_stops_its_links_at_once() {
    let mut app = spawn_app().await;
    let seed = app.seed().await;
    let link = app
        .create_link(
            &seed.alice.id,
            json!({"destination": "https://shop.acme.test/"}),
        )
        .await;
    let path = format!("/r/{}", str_of(&link, "code"));
    app.visit(&path).await.ok(302);

    app.patch(
        &format!("/programs/{}", seed.program_id),
        &app.admin_key,
        &json!({"allowed_domains": ["other.test"]}),
    )
    .await
    .ok(200);
    let reply = app.visit(&path).await;

    assert_eq!(reply.status.as_u16(), 404, "{}", reply.text);
    app.shutdown().await;
    assert_eq!(app.store.count_clicks().await.unwrap(), 1);
    app.finish().await;
}

#[tokio::test]
async fn a_link_created_after_its_code_was_visited_redirects() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    // The unknown code is cached as unknown...
    assert_eq!(app.visit("/r/late-code").await.status.as_u16(), 404);

    // ...until a link takes it.
    app.create_link(&seed.alice.id, json!({"code": "late-code"}))
        .await;
    let reply = app.visit("/r/late-code").await;

    reply.ok(302);
    assert!(tid_of(&reply.location()).is_some());
    app.finish().await;
}

#[tokio::test]
async fn changing_a_links_code_moves_its_redirect() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app
        .create_link(&seed.alice.id, json!({"code": "old-code"}))
        .await;
    app.visit("/r/old-code").await.ok(302);

    app.patch(
        &format!("/links/{}", str_of(&link, "id")),
        &app.admin_key,
        &json!({"code": "new-code", "destination": "https://acme.test/new"}),
    )
    .await
    .ok(200);

    assert_eq!(app.visit("/r/old-code").await.status.as_u16(), 404);
    let reply = app.visit("/r/new-code").await;
    reply.ok(302);
    assert_eq!(reply.location().path(), "/new");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_click_queued_at_shutdown_is_written() {
    const N: usize = 300;
    let mut app = spawn_app().await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let url = app.url(&format!("/r/{}", str_of(&link, "code")));

    let mut requests = JoinSet::new();
    for _ in 0..N {
        let client = app.client.clone();
        let url = url.clone();
        requests.spawn(async move {
            let response = client
                .get(&url)
                .header("user-agent", BROWSER_UA)
                .send()
                .await
                .expect("following the link");
            assert_eq!(response.status().as_u16(), 302);
            let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
            tid_of(&location).expect("a tid")
        });
    }
    let mut tids = HashSet::new();
    while let Some(tid) = requests.join_next().await {
        tids.insert(tid.expect("a redirect task"));
    }
    assert_eq!(tids.len(), N, "every click id is distinct");

    // No waiting for the writer: shutting down must flush what is queued.
    app.shutdown().await;
    assert_eq!(app.store.count_clicks().await.unwrap(), N as i64);
    app.finish().await;
}

// The key behaviours once more, on each backend (PostgreSQL too).
on_both_backends!(a_link_made_through_the_api_redirects_records_and_counts);

async fn a_link_made_through_the_api_redirects_records_and_counts(mut app: TestApp) {
    let seed = app.seed().await;
    let link = app
        .create_link(
            &seed.alice.id,
            json!({"destination": "https://acme.test/p?x=1#top", "source": "social"}),
        )
        .await;
    let path = format!("/r/{}", str_of(&link, "code"));

    let first = app.visit(&format!("{path}?ref=tw")).await;
    first.ok(302);
    let location = first.location();
    let tid = tid_of(&location).expect("a tid");
    assert_eq!(
        query_pairs(&location),
        pairs(&[
            ("x", "1"),
            ("ref", "tw"),
            ("utm_source", "alice"),
            ("utm_medium", "social"),
            ("tid", &tid),
        ])
    );
    assert_eq!(location.fragment(), Some("top"));
    let click = app.wait_for_click(&tid).await;
    assert_eq!(click.ip_truncated, "127.0.0.0/24");
    assert_eq!(click.link_id.as_str(), str_of(&link, "id"));

    app.visit(&path).await.ok(302);
    app.visit_as(
        &path,
        &Visitor {
            user_agent: Some(OTHER_BROWSER_UA),
            ..Visitor::default()
        },
    )
    .await
    .ok(302);
    app.visit_as(
        &path,
        &Visitor {
            user_agent: Some(GOOGLEBOT_UA),
            ..Visitor::default()
        },
    )
    .await
    .ok(302);
    assert_eq!(app.visit("/r/unknown-code").await.status.as_u16(), 404);
    app.wait_for_clicks(4).await;

    let m = app.metrics(&seed.alice.id, &seed.alice.key).await;
    let m = m.ok(200);
    assert_eq!(m["clicks"], 3, "{m}");
    assert_eq!(m["unique_clicks"], 2, "{m}");
    assert_eq!(m["bot_clicks"], 1, "{m}");
    assert_eq!(m["by_source"][0]["source"], "social", "{m}");

    app.shutdown().await;
    assert_eq!(app.store.count_clicks().await.unwrap(), 4);
    app.finish().await;
}
