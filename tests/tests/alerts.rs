//! Saved searches and alerts end to end: a real agent ships lines, the real
//! server evaluates rules, and a real HTTP receiver or SMTP server gets the
//! notifications.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use loghound_tests::data::append;
use loghound_tests::http::{api, api_expect};
use loghound_tests::process::run_loghound;
use loghound_tests::receiver::{Received, Receiver};
use loghound_tests::smtp::SmtpServer;
use loghound_tests::{token, Pipeline, ServerOptions};
use serde_json::{json, Value};
use sha2::Sha256;

/// Longest wait for a notification: the agent's batching, an index commit
/// and a rule interval (10 s) with room for a loaded machine.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);

struct Setup {
    _dir: tempfile::TempDir,
    pipeline: Pipeline,
    log: PathBuf,
    admin: String,
}

fn setup_with(config: Option<&str>, env: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("app.log");
    std::fs::write(&log, b"").unwrap();
    let config = config.map(|text| {
        let path = dir.path().join("server.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let options = ServerOptions {
        config,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let pipeline = Pipeline::start_with(dir.path(), &format!("{}/*.log", logs.display()), options);
    let admin = token(pipeline.server.data_dir(), &["admin"]);
    Setup {
        _dir: dir,
        pipeline,
        log,
        admin,
    }
}

fn setup() -> Setup {
    setup_with(None, &[])
}

impl Setup {
    fn url(&self) -> &str {
        &self.pipeline.url
    }

    fn save_search(&self, name: &str, query: &str) -> i64 {
        let body = json!({ "name": name, "query": query });
        let saved = api_expect(
            "POST",
            self.url(),
            "/api/v1/searches",
            &self.admin,
            Some(&body),
            201,
        );
        saved["id"].as_i64().expect("saved search id")
    }

    fn create_rule(&self, rule: Value) -> i64 {
        let created = api_expect(
            "POST",
            self.url(),
            "/api/v1/alerts",
            &self.admin,
            Some(&rule),
            201,
        );
        created["id"].as_i64().expect("rule id")
    }

    fn history(&self, rule: i64) -> Vec<Value> {
        let history = api_expect(
            "GET",
            self.url(),
            &format!("/api/v1/alerts/{rule}/history"),
            &self.admin,
            None,
            200,
        );
        history["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn write(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        append(&self.log, text.as_bytes());
    }
}

fn now_rfc3339() -> String {
    loghound_tests::data::rfc3339_utc(loghound_tests::data::now_ms())
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn count_of(request: &Received) -> u64 {
    request.json()["count"].as_u64().unwrap_or(0)
}

fn sum_counts(requests: &[Received]) -> u64 {
    requests.iter().map(count_of).sum()
}

fn events_of(requests: &[Received]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Holds for `duration`, checking that nothing more arrives.
fn assert_no_more(receiver: &Receiver, expected: usize, duration: Duration) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let got = receiver.requests();
        assert_eq!(
            got.len(),
            expected,
            "expected no further webhook; got {:?}",
            got.iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn any_match_rule_reports_each_line_once_signed_even_when_late() {
    let s = setup();
    let receiver = Receiver::start();
    let search = s.save_search("payment failures", "\"payment failed\"");
    let rule = s.create_rule(json!({
        "search_id": search,
        "name": "payments",
        "kind": "any",
        "samples": 10,
        "channels": [{"type": "webhook", "url": receiver.url("/hook"), "secret": "s3cret"}],
    }));

    let now = now_rfc3339();
    s.write(&[
        format!("{now} INFO checkout ok order=0"),
        format!("{now} ERROR payment failed order=1"),
        // Arrives now, but its own time is long past: still reported.
        "2001-02-03T04:05:06Z ERROR payment failed order=2".to_string(),
        format!("{now} INFO payment ok order=3"),
        format!("{now} ERROR payment failed order=4"),
    ]);
    receiver.wait_until("3 matches", NOTIFY_TIMEOUT, |r| sum_counts(r) >= 3);
    // Grouped or not, every match is reported exactly once.
    assert_no_more(&receiver, receiver.requests().len(), Duration::from_secs(3));
    let first_round = receiver.requests();
    assert_eq!(sum_counts(&first_round), 3);

    s.write(&[
        format!("{now} ERROR payment failed order=5"),
        format!("{now} ERROR payment failed order=6"),
    ]);
    receiver.wait_until("5 matches", NOTIFY_TIMEOUT, |r| sum_counts(r) >= 5);
    let all = receiver.requests();
    assert_no_more(&receiver, all.len(), Duration::from_secs(3));
    assert_eq!(sum_counts(&all), 5);

    let mut ids = Vec::new();
    let mut reported = Vec::new();
    for request in &all {
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let signature = request.header("x-loghound-signature").expect("signed");
        assert_eq!(
            signature,
            format!("sha256={}", hmac_hex("s3cret", &request.body))
        );
        let body = request.json();
        let delivery = request.header("x-loghound-delivery").expect("delivery id");
        assert_eq!(body["delivery_id"], delivery);
        ids.push(delivery.to_string());
        assert_eq!(body["event"], "fire");
        assert_eq!(body["rule"]["id"], rule);
        assert_eq!(body["rule"]["name"], "payments");
        assert_eq!(body["rule"]["kind"], "any");
        assert_eq!(body["search"]["name"], "payment failures");
        assert_eq!(body["search"]["query"], "\"payment failed\"");
        assert!(body["link"]
            .as_str()
            .unwrap()
            .contains("q=%22payment+failed%22"));
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len() as u64, body["count"].as_u64().unwrap());
        for event in events {
            assert!(event["host"].is_string() && event["source"].is_string());
            assert!(event["timestamp"].is_string());
            reported.push(event["message"].as_str().unwrap().to_string());
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        all.len(),
        "each notification has its own delivery id"
    );
    let mut orders: Vec<&str> = reported
        .iter()
        .map(|m| m.rsplit(' ').next().unwrap())
        .collect();
    orders.sort();
    assert_eq!(
        orders,
        ["order=1", "order=2", "order=4", "order=5", "order=6"]
    );
    assert!(reported.iter().any(|m| m.starts_with("2001-02-03")));

    let history = s.history(rule);
    assert_eq!(history.len(), all.len());
    for delivery in &history {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"][0]["status_code"], 200);
        assert_eq!(delivery["event"], "fire");
    }
}

#[test]
fn threshold_fires_once_while_above_and_resolves() {
    let s = setup();
    let receiver = Receiver::start();
    let search = s.save_search("timeouts", "upstream timeout");
    let mut settings = json!({
        "search_id": search,
        "kind": "threshold",
        "threshold": 3,
        "window_secs": 10,
        "interval_secs": 10,
        "channels": [{"type": "webhook", "url": receiver.url("/t")}],
    });
    let rule = s.create_rule(settings.clone());
    let line = |n: u32| format!("{} WARN upstream timeout request={n}", now_rfc3339());
    s.write(&(0..5).map(line).collect::<Vec<_>>());
    receiver.wait_until("the threshold firing", NOTIFY_TIMEOUT, |r| !r.is_empty());
    // Renaming a firing rule keeps it firing, unannounced.
    settings["name"] = json!("upstream timeouts");
    let renamed = api_expect(
        "PUT",
        s.url(),
        &format!("/api/v1/alerts/{rule}"),
        &s.admin,
        Some(&settings),
        200,
    );
    assert_eq!(renamed["state"]["status"], "firing", "{renamed}");

    // Stay above the threshold across two more evaluations: no repeat.
    let until = Instant::now() + Duration::from_secs(22);
    let mut n = 100;
    while Instant::now() < until {
        s.write(&[line(n), line(n + 1)]);
        n += 2;
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(
            receiver.requests().len(),
            1,
            "fired again while above the threshold"
        );
    }

    // Stop: the window empties and the rule resolves, once.
    let all = receiver.wait_until("the resolve notice", NOTIFY_TIMEOUT, |r| r.len() >= 2);
    assert_eq!(events_of(&all), ["fire", "resolve"]);
    let fire = all[0].json();
    assert!(fire["count"].as_u64().unwrap() >= 3, "{fire}");
    assert_eq!(fire["rule"]["threshold"], 3);
    assert_eq!(fire["rule"]["window_secs"], 10);
    assert!(all[1].json()["count"].as_u64().unwrap() < 3);
    let rule_state = api_expect(
        "GET",
        s.url(),
        &format!("/api/v1/alerts/{rule}"),
        &s.admin,
        None,
        200,
    );
    assert_eq!(rule_state["state"]["status"], "ok");
}

#[test]
fn absence_fires_when_a_heartbeat_stops_and_resolves_when_it_returns() {
    let s = setup();
    let receiver = Receiver::start();
    let search = s.save_search("backup heartbeat", "backup completed");
    let rule = s.create_rule(json!({
        "search_id": search,
        "kind": "absence",
        "window_secs": 10,
        "interval_secs": 10,
        "channels": [{"type": "webhook", "url": receiver.url("/a")}],
    }));
    s.write(&[format!("{} INFO unrelated line", now_rfc3339())]);
    let fired = receiver.wait_until("the absence firing", NOTIFY_TIMEOUT, |r| !r.is_empty());
    assert_eq!(events_of(&fired), ["fire"]);
    assert_eq!(fired[0].json()["count"], 0);
    let state = api_expect(
        "GET",
        s.url(),
        &format!("/api/v1/alerts/{rule}"),
        &s.admin,
        None,
        200,
    );
    assert_eq!(state["state"]["status"], "firing");

    s.write(&[format!("{} INFO backup completed in 31s", now_rfc3339())]);
    let all = receiver.wait_until("the resolve notice", NOTIFY_TIMEOUT, |r| r.len() >= 2);
    assert_eq!(events_of(&all[..2]), ["fire", "resolve"]);
    assert_eq!(all[1].json()["count"], 1);
}

#[test]
fn email_arrives_with_the_search_and_count_in_the_subject() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(smtp_dir.path());
    let config = format!(
        "[alerts]\npublic_url = \"http://loghound.test:7700\"\n\
         [alerts.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         from = \"Loghound <loghound@example.com>\"\n",
        smtp.port()
    );
    let s = setup_with(Some(&config), &[]);
    let search = s.save_search("disk full", "\"no space left\"");
    let rule = s.create_rule(json!({
        "search_id": search,
        "kind": "any",
        "channels": [{"type": "email", "to": ["ops@example.com", "oncall@example.com"]}],
    }));
    s.write(&[format!(
        "{} ERROR write /data/x failed: no space left on device",
        now_rfc3339()
    )]);
    let messages = smtp.wait_for_messages(1, NOTIFY_TIMEOUT);
    let mail = &messages[0];
    let header = |name: &str| {
        mail.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in {mail}"))
            .to_string()
    };
    let subject = header("Subject");
    assert!(subject.contains("disk full"), "{subject}");
    assert!(subject.contains("1 new match"), "{subject}");
    assert!(
        header("To").contains("ops@example.com") && header("To").contains("oncall@example.com")
    );
    assert!(header("From").contains("loghound@example.com"));
    assert!(mail.contains("no space left on device"), "{mail}");
    assert!(mail.contains("http://loghound.test:7700/?q="), "{mail}");
    let history = s.history(rule);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], "delivered");

    // A test notification goes the same way.
    api_expect(
        "POST",
        s.url(),
        &format!("/api/v1/alerts/{rule}/test"),
        &s.admin,
        None,
        202,
    );
    let messages = smtp.wait_for_messages(2, NOTIFY_TIMEOUT);
    assert!(messages[1].contains("test notification"), "{}", messages[1]);
    assert_eq!(messages.len(), 2);
}

#[test]
fn slack_and_papertrail_formats_have_their_documented_shapes() {
    let s = setup();
    let receiver = Receiver::start();
    let search = s.save_search("oom", "\"out of memory\"");
    s.create_rule(json!({
        "search_id": search,
        "kind": "any",
        "channels": [
            {"type": "webhook", "url": receiver.url("/slack"), "format": "slack"},
            {"type": "webhook", "url": receiver.url("/papertrail"), "format": "papertrail"},
        ],
    }));
    s.write(&[format!("{} ERROR worker 7: out of memory", now_rfc3339())]);
    receiver.wait_until("both webhooks", NOTIFY_TIMEOUT, |r| r.len() >= 2);

    let slack = &receiver.requests_to("/slack")[0];
    assert_eq!(slack.header("content-type"), Some("application/json"));
    let body = slack.json();
    let object = body.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["text"]);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("worker 7: out of memory") && text.contains("1 new match"),
        "{text}"
    );

    let papertrail = &receiver.requests_to("/papertrail")[0];
    assert_eq!(
        papertrail.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(&papertrail.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(form.len(), 1, "{form:?}");
    assert_eq!(form[0].0, "payload");
    let payload: Value = serde_json::from_str(&form[0].1).unwrap();
    let event = &payload["events"][0];
    assert!(event["message"]
        .as_str()
        .unwrap()
        .ends_with("worker 7: out of memory"));
    assert!(event["id"].is_u64());
    for key in [
        "received_at",
        "display_received_at",
        "hostname",
        "source_name",
        "program",
        "severity",
    ] {
        assert!(event[key].is_string(), "event lacks {key}: {event}");
    }
    assert_eq!(payload["saved_search"]["name"], "oom");
    assert_eq!(payload["saved_search"]["query"], "\"out of memory\"");
    assert!(payload["saved_search"]["html_search_url"].is_string());
    assert_eq!(payload["min_id"], payload["max_id"]);
    assert_eq!(payload["min_id"].as_str().unwrap(), event["id"].to_string());
}

#[test]
fn crash_between_evaluation_and_delivery_sends_exactly_once() {
    let mut s = setup_with(None, &[("LOGHOUND_FAULT", "abort-after-alert-commit")]);
    let receiver = Receiver::start();
    let search = s.save_search("fatal", "fatal");
    let rule = s.create_rule(json!({
        "search_id": search,
        "kind": "any",
        "channels": [{"type": "webhook", "url": receiver.url("/k")}],
    }));
    s.write(&[format!("{} FATAL kernel panic", now_rfc3339())]);
    // The server decides the notification, commits it, and dies.
    assert!(
        s.pipeline.server.wait_exit(NOTIFY_TIMEOUT),
        "the server did not abort after committing the notification"
    );
    assert!(receiver.requests().is_empty(), "delivered before the crash");

    s.pipeline.server.set_options(ServerOptions::default());
    s.pipeline.server.restart();
    let got = receiver.wait_until("the delivery after restart", NOTIFY_TIMEOUT, |r| {
        !r.is_empty()
    });
    assert_no_more(&receiver, 1, Duration::from_secs(5));
    assert_eq!(count_of(&got[0]), 1);
    let history = s.history(rule);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["delivery_id"], got[0].json()["delivery_id"]);
    assert_eq!(history[0]["status"], "delivered");
}

#[test]
fn crash_during_delivery_retries_with_the_same_delivery_id() {
    let mut s = setup();
    let receiver = Receiver::start();
    // The receiver holds its answer, so the server dies not knowing.
    receiver.set_delay(Duration::from_secs(30));
    let search = s.save_search("fatal", "fatal");
    let rule = s.create_rule(json!({
        "search_id": search,
        "kind": "any",
        "channels": [{"type": "webhook", "url": receiver.url("/k")}],
    }));
    s.write(&[format!("{} FATAL kernel panic", now_rfc3339())]);
    receiver.wait_until("the first attempt", NOTIFY_TIMEOUT, |r| !r.is_empty());
    s.pipeline.server.kill9();
    receiver.set_delay(Duration::ZERO);
    s.pipeline.server.restart();

    let got = receiver.wait_until("the retry", NOTIFY_TIMEOUT, |r| r.len() >= 2);
    assert_no_more(&receiver, 2, Duration::from_secs(5));
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-loghound-delivery").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "a retry carries the same delivery id");
    assert_eq!(got[0].body, got[1].body, "a retry sends the same body");
    let history = s.history(rule);
    assert_eq!(history.len(), 1);
    let outcomes: Vec<&str> = history[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["unknown", "delivered"]);
}

#[test]
fn failed_deliveries_back_off_then_stop_and_every_attempt_is_recorded() {
    let config = "[alerts]\nmax_attempts = 3\nretry_base_ms = 200\nretry_max_ms = 1000\n";
    let s = setup_with(Some(config), &[]);
    let receiver = Receiver::start();
    receiver.set_status(500);
    let search = s.save_search("fatal", "fatal");
    let rule = s.create_rule(json!({
        "search_id": search,
        "kind": "any",
        "channels": [{"type": "webhook", "url": receiver.url("/f")}],
    }));
    s.write(&[format!("{} FATAL disk gone", now_rfc3339())]);
    let got = receiver.wait_until("three attempts", NOTIFY_TIMEOUT, |r| r.len() >= 3);
    assert_no_more(&receiver, 3, Duration::from_secs(3));
    let first = got[0].header("x-loghound-delivery").unwrap();
    assert!(got
        .iter()
        .all(|r| r.header("x-loghound-delivery") == Some(first)));
    let deadline = Instant::now() + NOTIFY_TIMEOUT;
    let history = loop {
        let history = s.history(rule);
        if history.first().is_some_and(|d| d["status"] == "failed") || Instant::now() > deadline {
            break history;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(history[0]["status"], "failed", "{history:?}");
    let attempts = history[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    for attempt in attempts {
        assert_eq!(attempt["status_code"], 500);
        assert!(attempt["error"].as_str().unwrap().contains("500"));
    }

    // A test notification to a receiver that now answers 200.
    receiver.set_status(200);
    let answer = api_expect(
        "POST",
        s.url(),
        &format!("/api/v1/alerts/{rule}/test"),
        &s.admin,
        None,
        202,
    );
    let id = answer["delivery_id"].as_str().unwrap().to_string();
    let got = receiver.wait_until("the test", NOTIFY_TIMEOUT, |r| r.len() >= 4);
    assert_eq!(got[3].header("x-loghound-delivery"), Some(id.as_str()));
    assert_eq!(got[3].json()["event"], "test");
}

#[test]
fn searches_and_rules_api_checks_input_and_scopes() {
    let s = setup();
    let read = s.pipeline.read_token.clone();
    let url = s.url().to_string();
    // A malformed query is refused with its position.
    let bad = api(
        "POST",
        &url,
        "/api/v1/searches",
        &s.admin,
        Some(&json!({"name": "x", "query": "(oops"})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("position"), "{}", bad.body);
    // Writes need admin.
    let denied = api(
        "POST",
        &url,
        "/api/v1/searches",
        &read,
        Some(&json!({"name": "x", "query": "a"})),
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    let id = s.save_search("errors", "severity:error");
    let duplicate = api(
        "POST",
        &url,
        "/api/v1/searches",
        &s.admin,
        Some(&json!({"name": "errors", "query": "b"})),
    );
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);
    // Reads need read.
    let list = api_expect("GET", &url, "/api/v1/searches", &read, None, 200);
    assert_eq!(list["searches"][0]["name"], "errors");
    let renamed = api_expect(
        "PUT",
        &url,
        &format!("/api/v1/searches/{id}"),
        &s.admin,
        Some(&json!({"name": "all errors", "query": "severity:<=error", "range": "24h"})),
        200,
    );
    assert_eq!(renamed["name"], "all errors");
    assert_eq!(renamed["range"], "24h");

    // Rules: validation names the field; unknown search is 404; email
    // without a relay is refused; rules need admin even to read.
    let bad_interval = api(
        "POST",
        &url,
        "/api/v1/alerts",
        &s.admin,
        Some(&json!({"search_id": id, "kind": "any", "interval_secs": 7})),
    );
    assert_eq!(bad_interval.status, 400);
    assert!(
        bad_interval.body.contains("interval_secs"),
        "{}",
        bad_interval.body
    );
    let no_search = api(
        "POST",
        &url,
        "/api/v1/alerts",
        &s.admin,
        Some(&json!({"search_id": 999, "kind": "any"})),
    );
    assert_eq!(no_search.status, 404, "{}", no_search.body);
    let email = api(
        "POST",
        &url,
        "/api/v1/alerts",
        &s.admin,
        Some(
            &json!({"search_id": id, "kind": "any", "channels": [{"type": "email", "to": ["a@example.com"]}]}),
        ),
    );
    assert_eq!(email.status, 400);
    assert!(email.body.contains("SMTP"), "{}", email.body);
    let rule = s.create_rule(json!({"search_id": id, "kind": "threshold", "threshold": 5, "window_secs": 600, "interval_secs": 60}));
    assert_eq!(api("GET", &url, "/api/v1/alerts", &read, None).status, 403);
    let rules = api_expect("GET", &url, "/api/v1/alerts", &s.admin, None, 200);
    assert_eq!(rules["alerts"][0]["name"], "all errors");
    assert_eq!(rules["alerts"][0]["state"]["status"], "ok");
    // A search in use cannot be deleted; after the rule goes, it can.
    let in_use = api(
        "DELETE",
        &url,
        &format!("/api/v1/searches/{id}"),
        &s.admin,
        None,
    );
    assert_eq!(in_use.status, 409, "{}", in_use.body);
    api_expect(
        "DELETE",
        &url,
        &format!("/api/v1/alerts/{rule}"),
        &s.admin,
        None,
        204,
    );
    assert_eq!(
        api(
            "GET",
            &url,
            &format!("/api/v1/alerts/{rule}"),
            &s.admin,
            None
        )
        .status,
        404
    );
    api_expect(
        "DELETE",
        &url,
        &format!("/api/v1/searches/{id}"),
        &s.admin,
        None,
        204,
    );
    assert_eq!(
        api("GET", &url, &format!("/api/v1/searches/{id}"), &read, None).status,
        404
    );
}

fn cli(url: &str, token: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["search"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--server", url, "--token", token]);
    run_loghound(&all)
}

#[test]
fn cli_saves_lists_and_removes_searches() {
    let s = setup();
    let url = s.url().to_string();
    let saved = cli(
        &url,
        &s.admin,
        &[
            "save",
            "slow requests",
            "duration_ms:>1000",
            "--range",
            "1h",
        ],
    );
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let id: i64 = String::from_utf8_lossy(&saved.stdout)
        .trim()
        .parse()
        .unwrap();
    let listed = cli(&url, &s.pipeline.read_token, &["list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert!(
        text.lines().any(|l| l.contains("slow requests")
            && l.contains("duration_ms:>1000")
            && l.trim_start().starts_with(&id.to_string())),
        "{text}"
    );
    let bad = cli(&url, &s.admin, &["save", "broken", "(oops"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("400"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let removed = cli(&url, &s.admin, &["rm", "slow requests"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let listed = cli(&url, &s.pipeline.read_token, &["list"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("slow requests"));
    let missing = cli(&url, &s.admin, &["rm", "slow requests"]);
    assert!(!missing.status.success());
}

#[test]
fn a_slow_webhook_does_not_hold_up_other_deliveries() {
    let config = "[alerts]\ndelivery_timeout_ms = 120000\n";
    let s = setup_with(Some(config), &[]);
    let slow = Receiver::start();
    slow.set_delay(Duration::from_secs(120));
    let fast = Receiver::start();
    let search = s.save_search("crashes", "segfault");
    let slow_rule = s.create_rule(json!({
        "search_id": search, "name": "to slow", "kind": "any",
        "channels": [{"type": "webhook", "url": slow.url("/slow")}],
    }));
    s.create_rule(json!({
        "search_id": search, "name": "to fast", "kind": "any",
        "channels": [{"type": "webhook", "url": fast.url("/fast")}],
    }));
    s.write(&[format!("{} ERROR worker segfault at 0x0", now_rfc3339())]);
    slow.wait_until("the slow receiver's request", NOTIFY_TIMEOUT, |r| {
        !r.is_empty()
    });
    fast.wait_until("the fast receiver's request", NOTIFY_TIMEOUT, |r| {
        !r.is_empty()
    });
    // The slow receiver has not answered yet, and the other delivery is done.
    let history = s.history(slow_rule);
    assert_eq!(history[0]["status"], "pending", "{history:?}");
    assert_eq!(
        history[0]["attempts"][0]["outcome"], "sending",
        "{history:?}"
    );
}

#[test]
fn a_muted_rule_sends_nothing_and_does_not_replay_after_unmuting() {
    let s = setup();
    let receiver = Receiver::start();
    let search = s.save_search("denied", "\"permission denied\"");
    let muted = json!({
        "search_id": search, "kind": "any", "muted_until_ms": 4_102_444_800_000i64,
        "channels": [{"type": "webhook", "url": receiver.url("/m")}],
    });
    let rule = s.create_rule(muted.clone());
    s.write(&[format!(
        "{} WARN open /etc/shadow: permission denied (muted)",
        now_rfc3339()
    )]);
    loghound_tests::wait_for_count(
        s.url(),
        &s.pipeline.read_token,
        "\"permission denied\"",
        1,
        NOTIFY_TIMEOUT,
    );
    // Wait for an evaluation that saw the line.
    let (_, hits) =
        loghound_tests::search(s.url(), &s.pipeline.read_token, "\"permission denied\"");
    let line_id: u64 = hits[0]["id"].as_str().unwrap().parse().unwrap();
    let deadline = Instant::now() + NOTIFY_TIMEOUT;
    loop {
        let state = api_expect(
            "GET",
            s.url(),
            &format!("/api/v1/alerts/{rule}"),
            &s.admin,
            None,
            200,
        );
        let through = state["state"]["evaluated_through"].as_str().unwrap_or("0");
        if through.parse::<u64>().unwrap() >= line_id {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rule was not evaluated through line {line_id}: {state}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(receiver.requests().is_empty(), "a muted rule notified");

    let mut unmuted = muted;
    unmuted["muted_until_ms"] = Value::Null;
    api_expect(
        "PUT",
        s.url(),
        &format!("/api/v1/alerts/{rule}"),
        &s.admin,
        Some(&unmuted),
        200,
    );
    s.write(&[format!(
        "{} WARN open /root: permission denied (live)",
        now_rfc3339()
    )]);
    let got = receiver.wait_until("the unmuted notification", NOTIFY_TIMEOUT, |r| {
        !r.is_empty()
    });
    assert_no_more(&receiver, 1, Duration::from_secs(3));
    let body = got[0].json();
    assert_eq!(body["count"], 1, "{body}");
    assert!(body["events"][0]["message"]
        .as_str()
        .unwrap()
        .ends_with("(live)"));
}

/// The value at rank ⌊q × (n − 1)⌋ of the sorted values (docs/QUERY.md).
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).floor() as usize]
}

#[test]
fn metric_rule_fires_and_resolves_once_per_group_that_crosses() {
    let s = setup();
    let receiver = Receiver::start();
    let line =
        |path: &str, ms: f64| json!({"msg": "served", "path": path, "duration_ms": ms}).to_string();

    // A metric rule needs a table; a line rule refuses one.
    let plain = s.save_search("plain", "served");
    let piped = s.save_search("latency", "served | stats p95(duration_ms) by (path)");
    for (body, words) in [
        (
            json!({"search_id": plain, "kind": "metric", "above": 1}),
            "needs a saved search with a table",
        ),
        (
            json!({"search_id": piped, "kind": "threshold"}),
            "has pipes",
        ),
    ] {
        let refused = api_expect(
            "POST",
            s.url(),
            "/api/v1/alerts",
            &s.admin,
            Some(&body),
            400,
        );
        assert!(refused.to_string().contains(words), "{body}: {refused}");
    }
    let refused = api_expect(
        "POST",
        s.url(),
        "/api/v1/alerts",
        &s.admin,
        Some(&json!({"search_id": piped, "kind": "metric"})),
        400,
    );
    assert!(
        refused
            .to_string()
            .contains("exactly one of above or below"),
        "{refused}"
    );

    let rule = s.create_rule(json!({
        "search_id": piped,
        "kind": "metric",
        "above": 800,
        "window_secs": 600,
        "interval_secs": 10,
        "channels": [{"type": "webhook", "url": receiver.url("/m")}],
    }));
    let slow: Vec<f64> = (0..10).map(|i| 900.0 + f64::from(i) * 10.0).collect();
    let fast: Vec<f64> = (0..10).map(|i| 10.0 + f64::from(i) * 10.0).collect();
    let mut lines: Vec<String> = slow.iter().map(|ms| line("/slow", *ms)).collect();
    lines.extend(fast.iter().map(|ms| line("/fast", *ms)));
    s.write(&lines);

    let fired = receiver.wait_until("the slow path firing", NOTIFY_TIMEOUT, |r| !r.is_empty());
    let fire = fired[0].json();
    assert_eq!(fire["event"], "fire", "{fire}");
    assert_eq!(fire["group"], json!({"path": "/slow"}), "{fire}");
    assert_eq!(fire["metric"], "p95(duration_ms)", "{fire}");
    assert_eq!(
        fire["value"].as_f64(),
        Some(percentile(&slow, 95.0)),
        "{fire}"
    );
    assert_eq!(fire["condition"], "above 800", "{fire}");
    assert!(
        fire["text"]
            .as_str()
            .unwrap_or_default()
            .contains("path=/slow"),
        "{fire}"
    );
    let state = api_expect(
        "GET",
        s.url(),
        &format!("/api/v1/alerts/{rule}"),
        &s.admin,
        None,
        200,
    );
    assert_eq!(state["state"]["status"], "firing", "{state}");
    assert_eq!(
        state["state"]["firing_groups"],
        json!([{"path": "/slow"}]),
        "{state}"
    );

    // Still above across two more evaluations: nothing more; the fast
    // path never crosses.
    assert_no_more(&receiver, 1, Duration::from_secs(22));

    // Many fast requests on the slow path bring its p95 back under.
    let recovered: Vec<f64> = (0..200).map(|_| 50.0).collect();
    s.write(
        &recovered
            .iter()
            .map(|ms| line("/slow", *ms))
            .collect::<Vec<_>>(),
    );
    let all = receiver.wait_until("the slow path resolving", NOTIFY_TIMEOUT, |r| r.len() >= 2);
    let resolve = all[1].json();
    assert_eq!(resolve["event"], "resolve", "{resolve}");
    assert_eq!(resolve["group"], json!({"path": "/slow"}), "{resolve}");
    let mut after: Vec<f64> = slow.clone();
    after.extend(&recovered);
    assert_eq!(
        resolve["value"].as_f64(),
        Some(percentile(&after, 95.0)),
        "{resolve}"
    );
    assert_no_more(&receiver, 2, Duration::from_secs(12));
    let state = api_expect(
        "GET",
        s.url(),
        &format!("/api/v1/alerts/{rule}"),
        &s.admin,
        None,
        200,
    );
    assert_eq!(state["state"]["status"], "ok", "{state}");
    assert!(state["state"].get("firing_groups").is_none(), "{state}");
}
