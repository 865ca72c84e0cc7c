//! Who may do what: every route of the server × every kind of credential,
//! each cell with the exact status it must answer.

use std::time::Duration;

use loghound_shared::api::{FIELDS_PATH, HEADER_AGENT, HEADER_PROTOCOL, INGEST_PATH, STATS_PATH};
use loghound_shared::{encode_batch, PROTOCOL_VERSION};
use loghound_tests::data::event;
use loghound_tests::http::{api_expect, client};
use loghound_tests::process::run_loghound;
use loghound_tests::{temp_dir, token, wait_for_count, Server};
use serde_json::json;

/// The credentials a request can carry, one column of the matrix each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    /// Nothing at all.
    None,
    /// A well-formed bearer token the server never issued.
    Unknown,
    /// A revoked token that had every scope.
    Revoked,
    /// Bearer tokens with one scope each.
    Ingest,
    Read,
    Admin,
    /// A session cookie the server never issued.
    UnknownCookie,
    /// The web UI's session cookie, signed in with a read / admin token.
    ReadCookie,
    AdminCookie,
}

const COLUMNS: [Cred; 9] = [
    Cred::None,
    Cred::Unknown,
    Cred::Revoked,
    Cred::Ingest,
    Cred::Read,
    Cred::Admin,
    Cred::UnknownCookie,
    Cred::ReadCookie,
    Cred::AdminCookie,
];

/// What a route needs before the request can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixture {
    Nothing,
    /// `{search}` in the path: a fresh saved search no rule uses.
    Search,
    /// `{rule}` in the path: a fresh alert rule with a webhook channel.
    Rule,
}

/// One row: a route and the status each column gets, in [`COLUMNS`] order.
struct Row {
    method: &'static str,
    path: &'static str,
    fixture: Fixture,
    /// What the body is, when there is one.
    body: Body,
    statuses: [u16; 9],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Empty,
    /// A zstd NDJSON batch of one new event.
    Batch,
    /// A saved search.
    SearchJson,
    /// An alert rule on a fresh saved search.
    RuleJson,
    /// A sign-in carrying the column's token in the body.
    SignIn,
}

//                              none unkn revk  ing read adm  ?ck rdck adck
const INGEST_ONLY: [u16; 9] = [401, 401, 401, 200, 403, 403, 401, 403, 403];
const READ: [u16; 9] = [401, 401, 401, 403, 200, 200, 401, 200, 200];
const ADMIN_201: [u16; 9] = [401, 401, 401, 403, 403, 201, 401, 403, 201];
const ADMIN_200: [u16; 9] = [401, 401, 401, 403, 403, 200, 401, 403, 200];
const ADMIN_204: [u16; 9] = [401, 401, 401, 403, 403, 204, 401, 403, 204];
const ADMIN_202: [u16; 9] = [401, 401, 401, 403, 403, 202, 401, 403, 202];
const PUBLIC: [u16; 9] = [200; 9];

fn rows() -> Vec<Row> {
    let row = |method, path, fixture, body, statuses| Row {
        method,
        path,
        fixture,
        body,
        statuses,
    };
    use Body::*;
    use Fixture::*;
    vec![
        row("POST", INGEST_PATH, Nothing, Batch, INGEST_ONLY),
        row("GET", "/api/v1/search?q=matrix", Nothing, Empty, READ),
        row("GET", "/api/v1/histogram?q=matrix", Nothing, Empty, READ),
        row(
            "GET",
            "/api/v1/stats?q=matrix%20%7C%20stats%20count()",
            Nothing,
            Empty,
            READ,
        ),
        row("GET", "/api/v1/fields?q=matrix", Nothing, Empty, READ),
        row("GET", "/api/v1/context?id={event}", Nothing, Empty, READ),
        row("GET", "/api/v1/tail?q=matrix", Nothing, Empty, READ),
        row("GET", "/api/v1/searches", Nothing, Empty, READ),
        row("POST", "/api/v1/searches", Nothing, SearchJson, ADMIN_201),
        row("GET", "/api/v1/searches/{search}", Search, Empty, READ),
        row(
            "PUT",
            "/api/v1/searches/{search}",
            Search,
            SearchJson,
            ADMIN_200,
        ),
        row(
            "DELETE",
            "/api/v1/searches/{search}",
            Search,
            Empty,
            ADMIN_204,
        ),
        row("GET", "/api/v1/alerts", Nothing, Empty, ADMIN_200),
        row("POST", "/api/v1/alerts", Nothing, RuleJson, ADMIN_201),
        row("GET", "/api/v1/alerts/{rule}", Rule, Empty, ADMIN_200),
        row("PUT", "/api/v1/alerts/{rule}", Rule, RuleJson, ADMIN_200),
        row("DELETE", "/api/v1/alerts/{rule}", Rule, Empty, ADMIN_204),
        row(
            "GET",
            "/api/v1/alerts/{rule}/history",
            Rule,
            Empty,
            ADMIN_200,
        ),
        row("POST", "/api/v1/alerts/{rule}/test", Rule, Empty, ADMIN_202),
        // Sign-in: the token travels in the body (the cookie columns send
        // an empty one); it needs `read`.
        row(
            "POST",
            "/api/v1/session",
            Nothing,
            SignIn,
            [401, 401, 401, 403, 200, 200, 401, 401, 401],
        ),
        // The session's own scopes: by cookie only.
        row(
            "GET",
            "/api/v1/session",
            Nothing,
            Empty,
            [401, 401, 401, 401, 401, 401, 401, 200, 200],
        ),
        // Signing out needs nothing and reveals nothing.
        row("DELETE", "/api/v1/session", Nothing, Empty, [204; 9]),
        row("GET", "/", Nothing, Empty, PUBLIC),
        row("GET", "/saved", Nothing, Empty, PUBLIC),
        row("GET", "/alerts", Nothing, Empty, PUBLIC),
        row("GET", "/assets/js/app.js", Nothing, Empty, PUBLIC),
        row("GET", "/assets/style.css", Nothing, Empty, PUBLIC),
        row("GET", "/healthz", Nothing, Empty, PUBLIC),
        row("GET", "/readyz", Nothing, Empty, PUBLIC),
        row("GET", "/api/v1/no-such-route", Nothing, Empty, [404; 9]),
        // A malformed id is only judged once the caller may use the route.
        row(
            "GET",
            "/api/v1/searches/x1",
            Nothing,
            Empty,
            [401, 401, 401, 403, 400, 400, 401, 400, 400],
        ),
        row(
            "DELETE",
            "/api/v1/alerts/x1",
            Nothing,
            Empty,
            [401, 401, 401, 403, 403, 400, 401, 403, 400],
        ),
    ]
}

/// Every route the router declares in `server/src/http/mod.rs` (method,
/// path with `{…}` parameters), plus the UI's pages from `ui.rs`, so a
/// route added there without a row here fails the test.
fn declared_routes() -> Vec<(String, String)> {
    let source = include_str!("../../server/src/http/mod.rs");
    let body = source
        .split_once("Router::new()")
        .and_then(|(_, rest)| rest.split_once(".fallback("))
        .map(|(routes, _)| routes)
        .expect("the router in http/mod.rs");
    let constant = |name: &str| match name {
        "INGEST_PATH" => INGEST_PATH.to_string(),
        "TAIL_PATH" => "/api/v1/tail".to_string(),
        "STATS_PATH" => STATS_PATH.to_string(),
        "FIELDS_PATH" => FIELDS_PATH.to_string(),
        "SESSION_PATH" => "/api/v1/session".to_string(),
        other => panic!("route path {other} is not known to the matrix test"),
    };
    let mut routes = Vec::new();
    for chunk in body.split(".route(").skip(1) {
        let first = chunk.split(',').next().unwrap_or("").trim();
        if first == "path" {
            // The UI's pages, from their list.
            let ui = include_str!("../../server/src/http/ui.rs");
            let list = ui
                .split_once("PAGE_PATHS: &[&str] = &[")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(list, _)| list)
                .expect("PAGE_PATHS in ui.rs");
            for page in list.split(',') {
                routes.push(("GET".to_string(), page.trim().trim_matches('"').to_string()));
            }
            continue;
        }
        let path = match first.strip_prefix('"') {
            Some(quoted) => quoted.trim_end_matches('"').to_string(),
            None => constant(first),
        };
        let handlers = &chunk[first.len()..];
        for (needle, method) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("put(", "PUT"),
            ("delete(", "DELETE"),
        ] {
            for (at, _) in handlers.match_indices(needle) {
                let before = handlers[..at].chars().last();
                if matches!(before, Some('.' | ' ' | '\n' | '(')) {
                    routes.push((method.to_string(), path.clone()));
                }
            }
        }
    }
    routes
}

struct World {
    server: Server,
    read: String,
    admin: String,
    ingest: String,
    revoked: String,
    event_id: String,
    next: std::cell::Cell<u64>,
}

impl World {
    fn url(&self) -> String {
        self.server.url()
    }

    fn fresh(&self) -> u64 {
        let n = self.next.get() + 1;
        self.next.set(n);
        n
    }

    fn create_search(&self) -> i64 {
        let n = self.fresh();
        let body = json!({"name": format!("matrix {n}"), "query": "matrix"});
        let saved = api_expect(
            "POST",
            &self.url(),
            "/api/v1/searches",
            &self.admin,
            Some(&body),
            201,
        );
        saved["id"].as_i64().expect("a saved search has an id")
    }

    fn rule_body(&self) -> serde_json::Value {
        let search = self.create_search();
        json!({
            "search_id": search,
            "name": format!("rule {}", self.fresh()),
            "kind": "any",
            // Nothing listens there; a test send fails and is retried later.
            "channels": [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}],
        })
    }

    fn create_rule(&self) -> i64 {
        let body = self.rule_body();
        let rule = api_expect(
            "POST",
            &self.url(),
            "/api/v1/alerts",
            &self.admin,
            Some(&body),
            201,
        );
        rule["id"].as_i64().expect("a rule has an id")
    }

    fn token_of(&self, cred: Cred) -> Option<String> {
        match cred {
            Cred::None | Cred::UnknownCookie | Cred::ReadCookie | Cred::AdminCookie => None,
            Cred::Unknown => Some(format!("lh_{}", "0123456789ab".repeat(4))),
            Cred::Revoked => Some(self.revoked.clone()),
            Cred::Ingest => Some(self.ingest.clone()),
            Cred::Read => Some(self.read.clone()),
            Cred::Admin => Some(self.admin.clone()),
        }
    }

    /// A new session's cookie value, signed in with `token`.
    fn sign_in(&self, token: &str) -> String {
        let response = client()
            .post(format!("{}/api/v1/session", self.url()))
            .header("X-Loghound-CSRF", "1")
            .send_json(json!({ "token": token }))
            .expect("sign in");
        assert_eq!(response.status().as_u16(), 200, "sign-in failed");
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("sign-in sets a cookie")
            .to_string();
        cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, value)| value.to_string())
            .expect("cookie has a value")
    }

    fn cookie_of(&self, cred: Cred) -> Option<String> {
        match cred {
            Cred::UnknownCookie => Some("0".repeat(64)),
            Cred::ReadCookie => Some(self.sign_in(&self.read)),
            Cred::AdminCookie => Some(self.sign_in(&self.admin)),
            _ => None,
        }
    }

    /// Makes the request of `row` with `cred` and returns its status.
    fn status(&self, row: &Row, cred: Cred) -> u16 {
        let mut path = row.path.replace("{event}", &self.event_id);
        match row.fixture {
            Fixture::Nothing => {}
            Fixture::Search => path = path.replace("{search}", &self.create_search().to_string()),
            Fixture::Rule => path = path.replace("{rule}", &self.create_rule().to_string()),
        }
        let url = format!("{}{path}", self.url());
        let token = self.token_of(cred);
        let cookie = self.cookie_of(cred);
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(token) = &token {
            if row.body != Body::SignIn {
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            }
        }
        if let Some(cookie) = &cookie {
            headers.push(("Cookie".into(), format!("loghound_session={cookie}")));
            headers.push(("X-Loghound-CSRF".into(), "1".into()));
        }
        let (content_type, body): (&str, Vec<u8>) = match row.body {
            Body::Empty => ("", Vec::new()),
            Body::Batch => {
                let n = self.fresh();
                let events = [event("matrix-file", n * 100, &format!("matrix line {n}"))];
                headers.push((HEADER_PROTOCOL.into(), PROTOCOL_VERSION.to_string()));
                headers.push((HEADER_AGENT.into(), "matrix-agent".into()));
                headers.push(("Content-Encoding".into(), "zstd".into()));
                (
                    "application/x-ndjson",
                    encode_batch(&events, 3).expect("encode a batch"),
                )
            }
            Body::SearchJson => {
                let n = self.fresh();
                let body = json!({"name": format!("matrix {n}"), "query": "matrix"});
                ("application/json", body.to_string().into_bytes())
            }
            Body::RuleJson => (
                "application/json",
                self.rule_body().to_string().into_bytes(),
            ),
            Body::SignIn => {
                headers.push(("X-Loghound-CSRF".into(), "1".into()));
                let body = json!({ "token": token.clone().unwrap_or_default() });
                ("application/json", body.to_string().into_bytes())
            }
        };
        if !content_type.is_empty() {
            headers.push(("Content-Type".into(), content_type.into()));
        }
        let agent = client();
        let mut request = ureq::http::Request::builder().method(row.method).uri(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request.body(body).expect("a valid request");
        let response = agent
            .run(request)
            .unwrap_or_else(|e| panic!("{} {path} with {cred:?}: {e}", row.method));
        let status = response.status().as_u16();
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_stream {
            // Drain, so the connection is left clean. A live tail never ends
            // by itself: dropping the response closes it.
            let _ = response.into_body().read_to_vec();
        }
        status
    }
}

fn start_world(dir: &std::path::Path) -> World {
    let server = Server::start(&dir.join("server"));
    let read = token(server.data_dir(), &["read"]);
    let admin = token(server.data_dir(), &["admin"]);
    let ingest = token(server.data_dir(), &["ingest"]);

    // A token with every scope, revoked before the server ever sees it (so
    // no cache can remember it as good).
    let data_dir = server.data_dir().display().to_string();
    let created = run_loghound(&[
        "token",
        "create",
        "--data-dir",
        &data_dir,
        "--scope",
        "ingest",
        "--scope",
        "read",
        "--scope",
        "admin",
    ]);
    assert!(created.status.success(), "token create failed");
    let revoked = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&created.stderr);
    let id = stderr
        .split_whitespace()
        .skip_while(|w| *w != "token")
        .nth(1)
        .map(|w| w.trim_end_matches(';').to_string())
        .unwrap_or_else(|| panic!("no token id in {stderr:?}"));
    let revoke = run_loghound(&["token", "revoke", "--data-dir", &data_dir, &id]);
    assert!(
        revoke.status.success(),
        "token revoke failed: {}",
        String::from_utf8_lossy(&revoke.stderr)
    );

    // One searchable event, for the context route.
    loghound_tests::http::ingest(
        &server.url(),
        &ingest,
        "matrix-setup",
        &[event("matrix-setup-file", 0, "matrix context line")],
    );
    wait_for_count(
        &server.url(),
        &read,
        "matrix context",
        1,
        Duration::from_secs(30),
    );
    let page = loghound_tests::http::search_page(&server.url(), &read, "matrix context", 1, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let event_id = page.hits[0]["id"]
        .as_str()
        .expect("a hit has an id")
        .to_string();
    World {
        server,
        read,
        admin,
        ingest,
        revoked,
        event_id,
        next: std::cell::Cell::new(0),
    }
}

#[test]
fn every_route_answers_every_credential_with_the_exact_status() {
    let dir = temp_dir();
    let world = start_world(dir.path());
    let rows = rows();

    // Every declared route has a row, and every row is a declared route
    // (or the not-found fallback).
    let declared = declared_routes();
    assert!(
        declared.len() >= 20,
        "the route scan found only {declared:?}"
    );
    let row_key = |row: &Row| {
        let path = row.path.split('?').next().unwrap_or(row.path);
        let path = path.replace("{search}", "{id}").replace("{rule}", "{id}");
        (row.method.to_string(), path)
    };
    for (method, path) in &declared {
        let covered = rows.iter().any(|row| {
            let (m, p) = row_key(row);
            &m == method && (&p == path || (path == "/assets/{*path}" && p.starts_with("/assets/")))
        });
        assert!(covered, "route {method} {path} has no row in the matrix");
    }
    for row in &rows {
        let (m, p) = row_key(row);
        let declared_here = declared.iter().any(|(method, path)| {
            *method == m && (*path == p || (path == "/assets/{*path}" && p.starts_with("/assets/")))
        });
        assert!(
            declared_here || p == "/api/v1/no-such-route" || p.ends_with("/x1"),
            "row {m} {p} is not a route of the router"
        );
    }

    let mut wrong = Vec::new();
    for row in &rows {
        for (column, cred) in COLUMNS.iter().enumerate() {
            let expected = row.statuses[column];
            let got = world.status(row, *cred);
            if got != expected {
                wrong.push(format!(
                    "{} {} with {cred:?}: expected {expected}, got {got}",
                    row.method, row.path
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cells answered the wrong status:\n{}",
        wrong.len(),
        rows.len() * COLUMNS.len(),
        wrong.join("\n")
    );
    drop(world);
}

/// Reads the server's log once it has exited, so nothing is left unflushed.
fn finished_log(mut server: Server) -> String {
    server.terminate(Duration::from_secs(30));
    let bytes = std::fs::read(server.log_path()).expect("read the server log");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn the_server_log_holds_no_secrets_and_no_log_lines_even_at_debug() {
    let dir = temp_dir();
    let options = loghound_tests::ServerOptions {
        env: vec![("RUST_LOG".into(), "debug".into())],
        ..Default::default()
    };
    let server = Server::start_with(&dir.path().join("server"), options);
    let url = server.url();
    let ingest = token(server.data_dir(), &["ingest"]);
    let read = token(server.data_dir(), &["read"]);
    let admin = token(server.data_dir(), &["admin"]);
    let unknown = format!("lh_{}", "feedc0de4242".repeat(4));
    let secret = "whsec-Jq7vT2mPz9";
    // Webhook URLs often carry their credential in the path (Slack).
    let hook_path = "/hook/T0Kd8sPq3Lm";
    let distinctive = "Xq7Zr2Wv9Kp";
    let receiver = loghound_tests::receiver::Receiver::start();

    // Ingest a line and find it by another word of it.
    loghound_tests::http::ingest(
        &url,
        &ingest,
        "hygiene-agent",
        &[event(
            "hygiene-file",
            0,
            &format!("hygiene payment card {distinctive} declined"),
        )],
    );
    wait_for_count(&url, &read, "hygiene", 1, Duration::from_secs(30));

    // Refused requests: an unknown token, a token without the scope.
    let refused = loghound_tests::http::get_search(&url, Some(&unknown), &[("q", "hygiene")])
        .expect("search with an unknown token");
    assert_eq!(refused.status, 401);
    let forbidden = loghound_tests::http::get_search(&url, Some(&ingest), &[("q", "hygiene")])
        .expect("search with an ingest token");
    assert_eq!(forbidden.status, 403);

    // A session.
    let response = client()
        .post(format!("{url}/api/v1/session"))
        .header("X-Loghound-CSRF", "1")
        .send_json(json!({ "token": read }))
        .expect("sign in");
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_string())
        .expect("a session cookie");
    let current = client()
        .get(format!("{url}/api/v1/session"))
        .header("Cookie", format!("loghound_session={cookie}"))
        .call()
        .expect("session");
    assert_eq!(current.status().as_u16(), 200);

    // Alert rules with a webhook secret: create, read, change, test, remove.
    let search = api_expect(
        "POST",
        &url,
        "/api/v1/searches",
        &admin,
        Some(&json!({"name": "hygiene", "query": "hygiene"})),
        201,
    );
    let rule_body = json!({
        "search_id": search["id"],
        "name": "hygiene rule",
        "kind": "threshold",
        "threshold": 1000,
        "channels": [{"type": "webhook", "url": receiver.url(hook_path), "secret": secret}],
    });
    let rule = api_expect(
        "POST",
        &url,
        "/api/v1/alerts",
        &admin,
        Some(&rule_body),
        201,
    );
    let rule_path = format!("/api/v1/alerts/{}", rule["id"]);
    api_expect("GET", &url, &rule_path, &admin, None, 200);
    api_expect("PUT", &url, &rule_path, &admin, Some(&rule_body), 200);
    api_expect(
        "POST",
        &url,
        &format!("{rule_path}/test"),
        &admin,
        None,
        202,
    );
    let sent = receiver.wait_until("the test notification", Duration::from_secs(30), |r| {
        !r.is_empty()
    });
    assert!(
        sent[0].header("x-loghound-signature").is_some(),
        "the test notification is signed"
    );
    api_expect(
        "GET",
        &url,
        &format!("{rule_path}/history"),
        &admin,
        None,
        200,
    );
    api_expect("DELETE", &url, &rule_path, &admin, None, 204);

    let log = finished_log(server);
    assert!(
        log.contains("DEBUG"),
        "the server did not log at debug level; the test proves nothing:\n{log}"
    );
    let lower = log.to_lowercase();
    for (what, needle) in [
        ("the ingest token", ingest.as_str()),
        ("the read token", read.as_str()),
        ("the admin token", admin.as_str()),
        ("the refused unknown token", unknown.as_str()),
        ("the webhook secret", secret),
        ("the webhook URL's path", hook_path),
        ("the session cookie", cookie.as_str()),
        ("an ingested line", distinctive),
    ] {
        assert!(
            !lower.contains(&needle.to_lowercase()),
            "the server log contains {what} ({needle}):\n{}",
            log.lines()
                .filter(|l| l.to_lowercase().contains(&needle.to_lowercase()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// A client that sends part of a request line and then nothing is
/// disconnected within the header read timeout, while other clients are
/// served.
#[test]
fn a_client_that_stalls_in_its_headers_is_disconnected() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let dir = temp_dir();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "header_read_timeout_ms = 500\n").expect("write server.toml");
    let server = Server::start_with(
        &dir.path().join("server"),
        loghound_tests::ServerOptions {
            config: Some(config),
            ..Default::default()
        },
    );
    let addr = server.url().trim_start_matches("http://").to_string();

    // One connection sends a partial request line and then its headers a
    // byte every 50 ms, forever; another sends nothing at all.
    let trickling = TcpStream::connect(&addr).expect("connect");
    let silent = TcpStream::connect(&addr).expect("connect");
    let mut writer = trickling.try_clone().expect("clone the stream");
    let trickler = std::thread::spawn(move || {
        if writer
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .is_err()
        {
            return;
        }
        // Ends when the server has closed the connection.
        while writer.write_all(b"a").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });

    // While they stall, other clients are answered.
    let answer = client()
        .get(format!("{}/healthz", server.url()))
        .call()
        .expect("healthz");
    assert_eq!(answer.status().as_u16(), 200);

    // Far longer than the server's limit, so a server without one fails
    // the test by keeping the connections open.
    let bound = Duration::from_secs(20);
    for (what, mut stream) in [("trickling", trickling), ("silent", silent)] {
        stream
            .set_read_timeout(Some(bound))
            .expect("set a read timeout");
        let mut buffer = [0u8; 512];
        let closed = loop {
            match stream.read(&mut buffer) {
                Ok(0) => break true,
                // Whatever the server says before closing is fine.
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "the {what} connection stayed open for {bound:?}");
    }
    trickler.join().expect("the trickling thread");

    // Meanwhile, and after, a normal request is answered.
    let answer = client()
        .get(format!("{}/healthz", server.url()))
        .call()
        .expect("healthz");
    assert_eq!(answer.status().as_u16(), 200);
}
