//! The Elasticsearch bulk API end to end, with real clients: the official
//! `elasticsearch` Python package (`helpers.bulk`, `refresh=wait_for`,
//! basic auth) and curl with a gzip body, the server killed with SIGKILL
//! right after curl's answer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use loghound_tests::data::{now_ms, rfc3339_utc};
use loghound_tests::http::{hit_message, search, search_all};
use loghound_tests::{assert_count_stays, temp_dir, token, wait_for_count, Server, ServerOptions};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

/// A server with `[elasticsearch]` on; an ingest and a read token.
fn server_with_elastic(root: &Path) -> (Server, String, String) {
    let config = root.join("server.toml");
    std::fs::write(&config, "[elasticsearch]\nversion = \"8.17.0\"\n").expect("write server.toml");
    let data = root.join("data");
    let server = Server::start_with(
        &data,
        ServerOptions {
            config: Some(config),
            ..ServerOptions::default()
        },
    );
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    (server, ingest, read)
}

/// What `curl` answered: status, headers and body.
struct Curled {
    status: u16,
    headers: String,
    body: String,
}

impl Curled {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status, self.body
            )
        })
    }

    /// The Elasticsearch error type of an error answer.
    fn error_type(&self) -> String {
        self.json()["error"]["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.type in {}", self.body))
            .to_string()
    }
}

fn curl(root: &Path, args: &[&str]) -> Curled {
    let headers = root.join("curl-headers");
    let body = root.join("curl-body");
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run curl: {error}"));
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Curled {
        status,
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    }
}

fn python_client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("elasticsearch/ship.py")
}

#[test]
fn official_python_client_ships_with_helpers_bulk_and_refresh() {
    let root = temp_dir();
    let (server, ingest, read) = server_with_elastic(root.path());
    let url = server.url();
    const COUNT: u64 = 3000;
    let output = Command::new("python3")
        .arg(python_client_script())
        .args([url.as_str(), ingest.as_str(), &COUNT.to_string()])
        .output()
        .unwrap_or_else(|error| panic!("cannot run python3: {error}"));
    assert!(
        output.status.success(),
        "the Python elasticsearch client failed (is the `elasticsearch` package installed? \
         scripts/test.sh installs it):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "ship.py printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(report["version"], "8.17.0", "{report}");
    assert_eq!(report["stored"], COUNT, "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");

    // `refresh=wait_for` answered once the item was searchable: no wait.
    let (count, hits) = search(&url, &read, "es-refresh-marker");
    assert_eq!(
        count, 1,
        "refresh=wait_for answered before the item was searchable"
    );
    assert_eq!(hits[0]["host"], "api-1", "{}", hits[0]);
    assert_eq!(report["mixed_errors"], true, "{report}");
    let statuses: Vec<(&str, u64)> = report["mixed"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["action"].as_str().unwrap_or(""),
                        i["status"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        [("create", 201), ("delete", 400), ("update", 400)],
        "{report}"
    );
    assert_eq!(
        report["mixed"][0]["id"], "marker-1",
        "the client's _id is answered back"
    );
    assert_eq!(report["mixed"][1]["error"], "illegal_argument_exception");

    // Every document once, each part where it belongs.
    wait_for_count(
        &url,
        &read,
        "source:\"elasticsearch/app-logs\" es-doc",
        COUNT,
        DEADLINE,
    );
    let expect = |q: &str, want: u64| {
        let (count, _) = search(&url, &read, q);
        assert_eq!(count, want, "{q}");
    };
    let numbers = 0..COUNT;
    expect("app:checkout", COUNT);
    expect(
        "host:web-1",
        numbers.clone().filter(|n| n % 3 == 1).count() as u64,
    );
    expect(
        "severity:error es-doc",
        numbers.clone().filter(|n| n % 10 == 0).count() as u64,
    );
    expect(
        "http.response.status_code:>=502",
        numbers.clone().filter(|n| n % 5 == 0 && n % 4 >= 2).count() as u64,
    );
    let hits = search_all(&url, &read, "user.id:1234");
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit_message(hit), "es-doc 1234 checkout step 2", "{hit}");
    assert_eq!(hit["host"], "web-1", "{hit}");
    assert_eq!(hit["fields"]["log.level"], "info", "{hit}");
    assert!(
        hit["fields"].get("host.name").is_none(),
        "host.name became the host: {hit}"
    );
    let numbers_seen: std::collections::BTreeSet<u64> = search_all(&url, &read, "es-doc")
        .iter()
        .filter_map(|h| hit_message(h).split(' ').nth(1)?.parse().ok())
        .collect();
    assert_eq!(
        numbers_seen.len() as u64,
        COUNT,
        "every document number once"
    );
}

#[test]
fn curl_gzip_bulk_is_durable_at_its_answer_and_bad_input_is_precise() {
    let root = temp_dir();
    let (mut server, ingest, read) = server_with_elastic(root.path());
    let url = server.url();
    let auth = format!("loghound:{ingest}");

    // 1000 documents as Fluent Bit sends them (`log`, dotted keys), one
    // document line broken among them.
    let time = rfc3339_utc(now_ms());
    let mut body = String::new();
    for n in 0..1000u32 {
        body.push_str("{\"create\":{}}\n");
        if n == 500 {
            body.push_str("{\"log\": \"half a document\n");
            continue;
        }
        body.push_str(&format!(
            "{{\"@timestamp\":\"{time}\",\"log\":\"curl-doc {n} level=warn\",\"kubernetes.container_name\":\"shop\",\"stream\":\"stdout\"}}\n"
        ));
    }
    let plain = root.path().join("bulk.ndjson");
    std::fs::write(&plain, &body).expect("write the bulk body");
    let gzip = Command::new("gzip")
        .arg("-kf")
        .arg(&plain)
        .status()
        .expect("run gzip");
    assert!(gzip.success());
    let gz = format!("@{}.gz", plain.display());
    let answer = curl(
        root.path(),
        &[
            "-u",
            &auth,
            "-H",
            "Content-Type: application/x-ndjson",
            "-H",
            "Content-Encoding: gzip",
            "--data-binary",
            &gz,
            &format!("{url}/es/fluent-bit/_bulk"),
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .headers
            .to_ascii_lowercase()
            .contains("x-elastic-product: elasticsearch"),
        "{}",
        answer.headers
    );
    let json = answer.json();
    assert_eq!(json["errors"], true);
    let items = json["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1000);
    for (n, item) in items.iter().enumerate() {
        let want = if n == 500 { 400 } else { 201 };
        assert_eq!(item["create"]["status"], want, "item {n}: {item}");
        assert_eq!(item["create"]["_index"], "fluent-bit", "item {n}: {item}");
    }
    assert_eq!(
        items[500]["create"]["error"]["type"],
        "document_parsing_exception"
    );

    // Answered means durable: a SIGKILL right after loses none of them.
    server.kill9();
    server.restart();
    wait_for_count(
        &url,
        &read,
        "source:\"elasticsearch/fluent-bit\"",
        999,
        DEADLINE,
    );
    let (count, hits) = search(&url, &read, "curl-doc 7");
    assert_eq!(count, 1);
    assert_eq!(hits[0]["app"], "shop", "{}", hits[0]);
    assert_eq!(hits[0]["severity"], "warning", "{}", hits[0]);
    assert_eq!(
        hits[0]["host"], "127.0.0.1",
        "the sender's address: {}",
        hits[0]
    );
    assert_eq!(hits[0]["fields"]["stream"], "stdout", "{}", hits[0]);

    // Bad requests: a precise Elasticsearch error each, nothing stored.
    let bulk_url = format!("{url}/es/_bulk");
    let ndjson = ["-H", "Content-Type: application/x-ndjson"];
    let no_auth = curl(
        root.path(),
        &[
            &ndjson[..],
            &[
                "--data-binary",
                "{\"create\":{}}\n{\"message\":\"no-auth-doc\"}\n",
                &bulk_url,
            ],
        ]
        .concat(),
    );
    assert_eq!(no_auth.status, 401, "{}", no_auth.body);
    assert_eq!(no_auth.error_type(), "security_exception");
    let wrong = curl(
        root.path(),
        &[
            &ndjson[..],
            &[
                "-u",
                "loghound:not-a-token",
                "--data-binary",
                "{\"create\":{}}\n{\"message\":\"no-auth-doc\"}\n",
                &bulk_url,
            ],
        ]
        .concat(),
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let read_only = format!("loghound:{read}");
    let forbidden = curl(
        root.path(),
        &[
            &ndjson[..],
            &[
                "-u",
                &read_only,
                "--data-binary",
                "{\"create\":{}}\n{\"message\":\"no-auth-doc\"}\n",
                &bulk_url,
            ],
        ]
        .concat(),
    );
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    let broken = curl(
        root.path(),
        &[
            &ndjson[..],
            &[
                "-u",
                &auth,
                "--data-binary",
                "{\"create\":{}}\n{\"message\":\"broken-request-doc\"}\n{\"upsert\":{}}\n{}\n",
                &bulk_url,
            ],
        ]
        .concat(),
    );
    assert_eq!(broken.status, 400, "{}", broken.body);
    assert_eq!(broken.error_type(), "x_content_parse_exception");
    assert!(broken.body.contains("line [3]"), "{}", broken.body);
    let encoded = curl(
        root.path(),
        &[
            &ndjson[..],
            &[
                "-u",
                &auth,
                "-H",
                "Content-Encoding: br",
                "--data-binary",
                "x",
                &bulk_url,
            ],
        ]
        .concat(),
    );
    assert_eq!(encoded.status, 415, "{}", encoded.body);
    let search_api = curl(
        root.path(),
        &["-u", &auth, &format!("{url}/es/app/_search")],
    );
    assert_eq!(search_api.status, 400, "{}", search_api.body);
    assert!(search_api.body.contains("_bulk"), "{}", search_api.body);

    // The probes shippers make at start.
    let method = curl(root.path(), &["-u", &auth, &bulk_url]);
    assert_eq!(method.status, 405, "{}", method.body);
    assert_eq!(method.error_type(), "illegal_argument_exception");
    // Elasticsearch's own API key form: base64 of `id:key`, the key the token.
    use base64::Engine as _;
    let api_key = base64::engine::general_purpose::STANDARD.encode(format!("shipper:{ingest}"));
    let keyed = curl(
        root.path(),
        &[
            "-H",
            &format!("Authorization: ApiKey {api_key}"),
            &format!("{url}/es/_license"),
        ],
    );
    assert_eq!(keyed.status, 200, "{}", keyed.body);
    let info = curl(
        root.path(),
        &[
            "-H",
            &format!("Authorization: ApiKey {ingest}"),
            &format!("{url}/es/"),
        ],
    );
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["version"]["number"], "8.17.0");
    let template = format!("{url}/es/_index_template/filebeat-8");
    let head = curl(root.path(), &["-u", &auth, "-I", &template]);
    assert_eq!(head.status, 404);
    let put = curl(
        root.path(),
        &[
            "-u",
            &auth,
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data",
            "{}",
            &template,
        ],
    );
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["acknowledged"], true);

    // Refused requests stored nothing.
    assert_count_stays(
        &url,
        &read,
        "no-auth-doc OR broken-request-doc",
        0,
        Duration::from_millis(1500),
    );
    let (count, _) = search(&url, &read, "source:\"elasticsearch/fluent-bit\"");
    assert_eq!(count, 999);
}
