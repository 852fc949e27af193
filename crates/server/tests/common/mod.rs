//! Support for the black-box HTTP tests: [`spawn_app`] starts Tribute on a
//! fresh database and a random port; [`TestApp`] talks to it over real HTTP
//! with typed helpers, and reads the store directly to check what was written.
//!
//! Clicks are written asynchronously by the batch writer, so tests either
//! poll the store with a bounded wait ([`TestApp::wait_for_click`]) or shut
//! the app down ([`TestApp::shutdown`], which flushes the queue) and read.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, REFERER, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tribute_core::apikey::{ApiKey, KeyKind, NewKey, Scope};
use tribute_core::click::Click;
use tribute_core::ids::{ApiKeyId, ClickId, PartnerId, ProgramId};
use tribute_server::{App, ServerConfig};
use tribute_store::testing::TestDb;
use tribute_store::{Backend, Store};
use url::Url;

pub mod shop;
pub mod snippet;

/// The public base URL the server is configured with: deliberately not the
/// address it listens on, so tests see that short links use the configured one.
pub const PUBLIC_URL: &str = "https://go.tribute.test";

/// A desktop Chrome: a person.
pub const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
/// A desktop Safari: another person on the same address.
pub const OTHER_BROWSER_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) \
     AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
pub const GOOGLEBOT_UA: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// Longest a test waits for the click writer before failing.
const CLICK_WAIT: Duration = Duration::from_secs(5);
const POLL_STEP: Duration = Duration::from_millis(20);

/// A running Tribute on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The same database the server writes, for checking what it wrote.
    pub store: Store,
    /// A key with the admin scope, inserted at start.
    pub admin_key: String,
    /// An HTTP client that does not follow redirects.
    pub client: reqwest::Client,
    pub backend: Backend,
    /// `http://127.0.0.1:<port>` of the separate `/metrics` listener, when
    /// the config asks for one (`metrics_separate`).
    pub metrics_address: Option<String>,
    server: Option<Server>,
    /// The database to destroy in [`TestApp::finish`] (`None` when the caller owns it).
    db: Option<TestDb>,
}

struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Tribute on a fresh SQLite database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

/// Tests' configuration: the commission job never runs behind their back.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        public_url: PUBLIC_URL.into(),
        release_every: std::time::Duration::from_secs(3_600),
        ..Default::default()
    }
}

/// Tribute on a fresh SQLite database, configured with `config`.
pub async fn spawn_app_with(config: ServerConfig) -> TestApp {
    let db = TestDb::sqlite().await;
    let mut app = start_with(db.store.clone(), Backend::Sqlite, config).await;
    app.db = Some(db);
    app
}

/// Tribute on `store` (the caller owns the database).
pub async fn start(store: Store, backend: Backend) -> TestApp {
    start_with(store, backend, test_config()).await
}

/// Tribute on `store` with `config` (the caller owns the database).
pub async fn start_with(store: Store, backend: Backend, config: ServerConfig) -> TestApp {
    let separate = config.metrics_separate;
    let mut app = App::start(store.clone(), config)
        .await
        .expect("starting the app");
    let mut metrics_address = None;
    if separate {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a free port for metrics");
        metrics_address = Some(format!(
            "http://{}",
            listener.local_addr().expect("local address")
        ));
        app = app.with_metrics_listener(listener);
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a free port");
    let address = format!("http://{}", listener.local_addr().expect("local address"));
    let (stop, stopped) = oneshot::channel::<()>();
    // The server also stops when the sender is dropped (a test panicked).
    let task = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client");
    let admin_key = insert_key(&store, Scope::Admin, None, None).await;
    TestApp {
        address,
        store,
        admin_key,
        client,
        backend,
        metrics_address,
        server: Some(Server { stop, task }),
        db: None,
    }
}

/// Insert an API key into the store as `tribute key create` does; its token.
pub async fn insert_key(
    store: &Store,
    scope: Scope,
    partner_id: Option<PartnerId>,
    program_id: Option<ProgramId>,
) -> String {
    // Secret, as every ingest key made before key kinds existed is.
    insert_key_of_kind(store, scope, KeyKind::Secret, partner_id, program_id).await
}

/// A publishable ingest key of `program`: the snippet's and a Segment
/// write key, readable by anyone from a web page.
pub async fn publishable_key(store: &Store, program_id: &ProgramId) -> String {
    insert_key_of_kind(
        store,
        Scope::Ingest,
        KeyKind::Publishable,
        None,
        Some(program_id.clone()),
    )
    .await
}

/// [`insert_key`] of a given kind.
pub async fn insert_key_of_kind(
    store: &Store,
    scope: Scope,
    kind: KeyKind,
    partner_id: Option<PartnerId>,
    program_id: Option<ProgramId>,
) -> String {
    let new = NewKey::of(scope, kind);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope,
        kind,
        partner_id,
        program_id,
        name: Some("test".into()),
        created_at: Utc::now(),
        revoked_at: None,
    };
    store
        .insert_api_key(&key, &new.hash)
        .await
        .expect("inserting an api key");
    new.token
}

/// Run `scenario` against a Tribute on a fresh database of `backend`, then
/// drop the database even if the scenario panicked (the panic is passed on).
/// Without a PostgreSQL server (outside CI) the PostgreSQL run is skipped
/// with a visible message (`tribute_store::testing::skip`).
pub async fn on_backend<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Without a server, `TestDb` has said so (or failed, under CI).
    let Some(db) = TestDb::of(backend).await else {
        return;
    };
    let app = start_with(db.store.clone(), backend, test_config()).await;
    let outcome = tokio::spawn(scenario(app)).await;
    db.destroy().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("scenario task failed: {e}");
    }
}

/// Instantiate each scenario `async fn(TestApp)` once per backend, as
/// `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::common::on_backend(
                    tribute_store::Backend::Sqlite,
                    super::$name,
                )
                .await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::common::on_backend(
                    tribute_store::Backend::Postgres,
                    super::$name,
                )
                .await;
            })*
        }
    };
}

/// An HTTP answer with its body read as JSON (`Value::Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    /// Read an HTTP answer, its body as JSON when it is JSON.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reading the body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    /// Assert a success status and return the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text
        );
        &self.body
    }

    /// Assert the documented error shape: `status`, a JSON
    /// `{"error": {"code", "message", "field"}}` naming `field`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, field: Option<&str>, case: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{case}: expected {status}, got {}: {}",
            self.status,
            self.text
        );
        let content_type = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "{case}: error is not JSON ({content_type:?}): {}",
            self.text
        );
        let error = &self.body["error"];
        assert!(
            error["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{case}: error without a code: {}",
            self.text
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}: error without a message: {}",
            self.text
        );
        assert_eq!(
            error["field"].as_str(),
            field,
            "{case}: wrong field named: {}",
            self.text
        );
    }

    /// The `Location` of a redirect, parsed.
    #[track_caller]
    pub fn location(&self) -> Url {
        let location = self
            .headers
            .get(LOCATION)
            .expect("a Location header")
            .to_str()
            .expect("an ASCII Location");
        Url::parse(location).expect("an absolute Location")
    }
}

/// What a visitor following a link looks like.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub method: Method,
    pub user_agent: Option<&'static str>,
    pub referrer: Option<&'static str>,
}

impl Default for Visitor {
    fn default() -> Self {
        Self {
            method: Method::GET,
            user_agent: Some(BROWSER_UA),
            referrer: None,
        }
    }
}

/// A program with two active partners, each with its own partner key.
pub struct Seed {
    pub program: Value,
    pub program_id: String,
    pub alice: SeedPartner,
    pub bob: SeedPartner,
}

pub struct SeedPartner {
    pub id: String,
    pub slug: String,
    pub key: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Any request to the API (`path` under `/api/v1`), with an optional key and JSON body.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(&format!("/api/v1{path}")));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::read(request.send().await.expect("sending an API request")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.api(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.api(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.api(Method::PATCH, path, Some(key), Some(body)).await
    }

    /// POST a raw body (not necessarily JSON) as `application/json`.
    pub async fn post_raw(&self, path: &str, key: &str, body: &str) -> Reply {
        let response = self
            .client
            .post(self.url(&format!("/api/v1{path}")))
            .bearer_auth(key)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("sending an API request");
        Reply::read(response).await
    }

    /// Create a program allowing `acme.test` (and its subdomains); returns it.
    pub async fn create_program(&self, name: &str) -> Value {
        self.post(
            "/programs",
            &self.admin_key,
            &json!({"name": name, "currency": "EUR", "allowed_domains": ["acme.test"]}),
        )
        .await
        .ok(201)
        .clone()
    }

    /// Create an active partner in `program_id`; returns it.
    pub async fn create_partner(&self, program_id: &str, slug: &str) -> Value {
        self.post(
            "/partners",
            &self.admin_key,
            &json!({"program_id": program_id, "slug": slug, "name": slug.to_uppercase()}),
        )
        .await
        .ok(201)
        .clone()
    }

    /// Create a link for `partner_id` (admin key) with the extra `fields`; returns it.
    pub async fn create_link(&self, partner_id: &str, fields: Value) -> Value {
        let mut body = json!({"partner_id": partner_id, "destination": "https://acme.test/"});
        for (k, v) in fields.as_object().expect("link fields are an object") {
            body[k] = v.clone();
        }
        self.post("/links", &self.admin_key, &body)
            .await
            .ok(201)
            .clone()
    }

    /// A partner key for the partner `partner` (a partner as the API returned it).
    pub async fn partner_key(&self, partner: &Value) -> String {
        let id = PartnerId::parse(partner["id"].as_str().expect("partner id")).expect("id");
        let program =
            ProgramId::parse(partner["program_id"].as_str().expect("program id")).expect("id");
        insert_key(&self.store, Scope::Partner, Some(id), Some(program)).await
    }

    /// One program with partners `alice` and `bob`, each with a key.
    pub async fn seed(&self) -> Seed {
        let program = self.create_program("Acme").await;
        let program_id = program["id"].as_str().expect("program id").to_owned();
        let mut partners = Vec::new();
        for slug in ["alice", "bob"] {
            let partner = self.create_partner(&program_id, slug).await;
            partners.push(SeedPartner {
                id: partner["id"].as_str().expect("partner id").to_owned(),
                slug: slug.to_owned(),
                key: self.partner_key(&partner).await,
            });
        }
        let bob = partners.pop().expect("bob");
        let alice = partners.pop().expect("alice");
        Seed {
            program,
            program_id,
            alice,
            bob,
        }
    }

    /// How many rows `GET {path}` lists with the admin key (at most 500).
    pub async fn count(&self, path: &str) -> usize {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.get(&format!("{path}{sep}limit=500"), &self.admin_key)
            .await
            .ok(200)["data"]
            .as_array()
            .expect("a list")
            .len()
    }

    /// A partner's metrics over yesterday to tomorrow (UTC), with `key`.
    pub async fn metrics(&self, partner_id: &str, key: &str) -> Reply {
        let today = Utc::now().date_naive();
        let from = today - Days::days(1);
        let to = today + Days::days(1);
        self.get(
            &format!("/partners/{partner_id}/metrics?from={from}&to={to}"),
            key,
        )
        .await
    }

    /// Follow `path` (`/r/{code}?…`) as a browser would, without following the redirect.
    pub async fn visit(&self, path: &str) -> Reply {
        self.visit_as(path, &Visitor::default()).await
    }
    pub async fn visit_as(&self, path: &str, visitor: &Visitor) -> Reply {
        let request = self.client.request(visitor.method.clone(), self.url(path));
        let mut request = request.header("accept-language", "en-GB,en;q=0.9"); // as browsers do
        if let Some(ua) = visitor.user_agent {
            request = request.header(USER_AGENT, ua);
        }
        if let Some(referrer) = visitor.referrer {
            request = request.header(REFERER, referrer);
        }
        Reply::read(request.send().await.expect("following a link")).await
    }

    /// Wait (bounded) until the click `id` is written, and return it.
    pub async fn wait_for_click(&self, id: &str) -> Click {
        let id = ClickId::parse(id).expect("a click id");
        let deadline = Instant::now() + CLICK_WAIT;
        loop {
            if let Some(click) = self.store.click(&id).await.expect("loading a click") {
                return click;
            }
            assert!(
                Instant::now() < deadline,
                "click {id} not written within {CLICK_WAIT:?}"
            );
            tokio::time::sleep(POLL_STEP).await;
        }
    }

    /// Wait (bounded) until at least `n` clicks are written; return the count.
    pub async fn wait_for_clicks(&self, n: i64) -> i64 {
        let deadline = Instant::now() + CLICK_WAIT;
        loop {
            let count = self.store.count_clicks().await.expect("counting clicks");
            if count >= n {
                return count;
            }
            assert!(
                Instant::now() < deadline,
                "only {count} of {n} clicks written within {CLICK_WAIT:?}"
            );
            tokio::time::sleep(POLL_STEP).await;
        }
    }

    /// Stop the server and wait until every queued click is written.
    pub async fn shutdown(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        let _ = server.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), server.task)
            .await
            .expect("the server stops within 30 s")
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }

    /// Shut down (flushing clicks) and destroy the database this app owns.
    pub async fn finish(mut self) {
        self.shutdown().await;
        if let Some(db) = self.db.take() {
            db.destroy().await;
        }
    }
}

// --- ingestion and attribution helpers ------------------------------------

impl TestApp {
    /// POST JSON to `/api/v1{path}` with `key` and extra request headers.
    pub async fn post_with_headers(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1{path}")))
            .bearer_auth(key)
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(request.send().await.expect("sending an API request")).await
    }

    /// A send-only ingest key (the write key) bound to `program_id`.
    pub async fn ingest_key(&self, program_id: &str) -> String {
        let program = ProgramId::parse(program_id).expect("a program id");
        insert_key(&self.store, Scope::Ingest, None, Some(program)).await
    }

    /// Follow the short link `code` as a browser, wait until its click is
    /// written, and return the click id the redirect handed on (`tid`).
    pub async fn click_link(&self, code: &str) -> String {
        self.click_link_as(code, &Visitor::default()).await
    }

    pub async fn click_link_as(&self, code: &str, visitor: &Visitor) -> String {
        let reply = self.visit_as(&format!("/r/{code}"), visitor).await;
        reply.ok(302);
        let tid = reply
            .location()
            .query_pairs()
            .find(|(k, _)| k == "tid")
            .map(|(_, v)| v.into_owned())
            .expect("a tid in the Location");
        self.wait_for_click(&tid).await;
        tid
    }

    /// Make a new postback token for a program (replacing any it had) and
    /// return it: the only answer that shows it.
    pub async fn postback_token(&self, program_id: &str) -> String {
        let made = self
            .post(
                &format!("/programs/{program_id}/postback-token"),
                &self.admin_key,
                &json!({}),
            )
            .await;
        let made = made.ok(201);
        let token = str_of(made, "postback_token").to_owned();
        let in_url = Url::parse(str_of(made, "postback_url"))
            .expect("an absolute postback URL")
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            in_url.as_deref(),
            Some(token.as_str()),
            "the URL holds the token"
        );
        token
    }

    /// Set a program's default attribution model.
    pub async fn set_default_model(&self, program_id: &str, model: &str) {
        self.patch(
            &format!("/programs/{program_id}"),
            &self.admin_key,
            &json!({"default_model": model}),
        )
        .await
        .ok(200);
    }

    /// How many conversions a program has, as the admin list shows them.
    pub async fn conversion_count(&self, program_id: &str) -> usize {
        self.count(&format!("/conversions?program_id={program_id}"))
            .await
    }

    /// How many events the store holds for a program.
    pub async fn event_count(&self, program_id: &str) -> i64 {
        self.store
            .count_events(&ProgramId::parse(program_id).expect("a program id"))
            .await
            .expect("counting events")
    }
}

/// The string `field` of `v`, or a panic naming it.
pub fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` missing in {v}"))
}

/// The ids of a list page, sorted: rows made in the same millisecond are
/// listed in id order, not creation order, so tests compare sets.
pub fn ids(list: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|x| str_of(x, "id"))
        .collect();
    ids.sort_unstable();
    ids
}

/// `v` sorted, to compare as a set.
pub fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}
