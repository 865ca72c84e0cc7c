//! The web UI's server side in process: embedded pages and assets with
//! their headers, sign-in sessions and the CSRF rule for cookie requests.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use loghound_server::config::ServerConfig;
use loghound_server::http::app;
use loghound_server::serve::{recover, Recovered};
use loghound_server::tokens::{create, Scope};
use serde_json::Value;
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    server: Recovered,
    read_token: String,
    ingest_token: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let read_token = create(dir.path(), &[Scope::Read]).unwrap();
    let ingest_token = create(dir.path(), &[Scope::Ingest]).unwrap();
    let config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        index_writer_heap_bytes: 16 << 20,
        index_writer_threads: 1,
        ..ServerConfig::default()
    };
    let server = tokio::task::spawn_blocking(move || recover(&config))
        .await
        .unwrap()
        .unwrap();
    Fixture {
        _dir: dir,
        server,
        read_token,
        ingest_token,
    }
}

impl Fixture {
    async fn call(&self, request: Request<Body>) -> Response {
        app(self.server.state.clone())
            .oneshot(request)
            .await
            .unwrap()
    }

    /// Signs in with `token` the way the UI does; returns the answer.
    async fn sign_in(&self, token: &str) -> Response {
        self.call(
            Request::post("/api/v1/session")
                .header("content-type", "application/json")
                .header("x-loghound-csrf", "1")
                .body(Body::from(
                    serde_json::json!({ "token": token }).to_string(),
                ))
                .unwrap(),
        )
        .await
    }

    /// Signs in with the read token and returns the `Cookie` header value.
    async fn session_cookie(&self) -> String {
        let response = self.sign_in(&self.read_token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let set_cookie = set_cookie(&response);
        set_cookie.split(';').next().unwrap().trim().to_string()
    }
}

fn set_cookie(response: &Response) -> String {
    response
        .headers()
        .get(header::SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string()
}

async fn json(response: Response) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn sign_in_sets_an_http_only_same_site_strict_cookie() {
    let f = fixture().await;
    let response = f.sign_in(&f.read_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = set_cookie(&response);
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("loghound_session="), "{cookie}");
    let id = attributes[0].trim_start_matches("loghound_session=");
    assert_eq!(id.len(), 64, "a 256-bit random id: {cookie}");
    assert_ne!(id, f.read_token);
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&wanted), "{wanted} missing: {cookie}");
    }
    assert!(
        attributes.iter().any(|a| a.starts_with("Max-Age=")),
        "{cookie}"
    );
    assert!(!attributes.contains(&"Secure"), "plain HTTP: {cookie}");
    assert_eq!(json(response).await["scopes"], serde_json::json!(["read"]));
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure() {
    let f = fixture().await;
    let response = f
        .call(
            Request::post("/api/v1/session")
                .header("content-type", "application/json")
                .header("x-loghound-csrf", "1")
                .header("x-forwarded-proto", "https")
                .body(Body::from(
                    serde_json::json!({ "token": f.read_token }).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie(&response)
        .split(';')
        .any(|a| a.trim() == "Secure"));
}

#[tokio::test]
async fn sign_in_refuses_bad_tokens_and_forged_requests() {
    let f = fixture().await;
    let unknown = f.sign_in("lh_000").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(unknown.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(json(unknown).await["error"], "unknown or revoked token");

    let ingest = f.sign_in(&f.ingest_token).await;
    assert_eq!(ingest.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(ingest).await["error"], "token lacks the `read` scope");

    // A cross-site form or script without the header and with a foreign
    // Origin cannot sign the browser in.
    let forged = f
        .call(
            Request::post("/api/v1/session")
                .header("content-type", "application/json")
                .header("origin", "http://evil.example")
                .header("host", "logs:7700")
                .body(Body::from(
                    serde_json::json!({ "token": f.read_token }).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let error = json(forged).await["error"].as_str().unwrap().to_string();
    assert!(error.contains("X-Loghound-CSRF"), "{error}");

    // Same origin without the header is fine.
    let same_origin = f
        .call(
            Request::post("/api/v1/session")
                .header("content-type", "application/json")
                .header("origin", "http://logs:7700")
                .header("host", "logs:7700")
                .body(Body::from(
                    serde_json::json!({ "token": f.read_token }).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(same_origin.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_cookie_authorizes_reads_with_the_tokens_scopes() {
    let f = fixture().await;
    let cookie = f.session_cookie().await;
    let search = f.call(get("/api/v1/search?q=x", &cookie)).await;
    assert_eq!(search.status(), StatusCode::OK);
    assert_eq!(json(search).await["count"], 0);
    let session = f.call(get("/api/v1/session", &cookie)).await;
    assert_eq!(session.status(), StatusCode::OK);
    assert_eq!(json(session).await["scopes"], serde_json::json!(["read"]));
    // The session has the read token's scopes, not more.
    let ingest = f
        .call(
            Request::post("/api/v1/ingest")
                .header(header::COOKIE, &cookie)
                .header("x-loghound-csrf", "1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(ingest.status(), StatusCode::FORBIDDEN);
    // Without a cookie or token: 401.
    let anonymous = f
        .call(Request::get("/api/v1/search").body(Body::empty()).unwrap())
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let made_up = f
        .call(get("/api/v1/search", "loghound_session=0123abcd"))
        .await;
    assert_eq!(made_up.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_header() {
    let f = fixture().await;
    let cookie = f.session_cookie().await;
    for (method, path) in [("DELETE", "/api/v1/session"), ("POST", "/api/v1/ingest")] {
        let response = f
            .call(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::COOKIE, &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let error = json(response).await["error"].as_str().unwrap().to_string();
        assert!(error.starts_with("cross-site request refused"), "{error}");
    }
    // The refused sign-out did not sign out.
    let still = f.call(get("/api/v1/session", &cookie)).await;
    assert_eq!(still.status(), StatusCode::OK);
    // A bearer request carries no ambient credential and needs no header.
    let bearer = f
        .call(
            Request::post("/api/v1/ingest")
                .header(header::COOKIE, &cookie)
                .header("authorization", format!("Bearer {}", f.read_token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bearer.status(), StatusCode::FORBIDDEN);
    let error = json(bearer).await["error"].as_str().unwrap().to_string();
    assert_eq!(error, "token lacks the `ingest` scope");
}

#[tokio::test]
async fn signed_out_cookies_are_refused() {
    let f = fixture().await;
    let cookie = f.session_cookie().await;
    let out = f
        .call(
            Request::delete("/api/v1/session")
                .header(header::COOKIE, &cookie)
                .header("x-loghound-csrf", "1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookie(&out);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    for path in ["/api/v1/search", "/api/v1/session", "/api/v1/tail"] {
        let response = f.call(get(path, &cookie)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn the_page_and_assets_are_served_with_their_headers() {
    let f = fixture().await;
    for path in ["/", "/saved", "/alerts"] {
        let response = f
            .call(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains(r#"<script type="module" src="/assets/js/app.js">"#));
        assert!(!html.contains("<script>"), "no inline script");
    }
    for (path, content_type) in [
        ("/assets/js/app.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let response = f
            .call(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        let again = f
            .call(
                Request::get(path)
                    .header("if-none-match", &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty());
    }
    let missing = f
        .call(
            Request::get("/assets/js/nope.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(missing).await["error"], "no asset \"js/nope.js\"");
}
