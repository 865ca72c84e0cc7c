//! The server's HTTP API as the tests use it: ingest with chosen headers and
//! bodies, and search with the exact `count` and cursor pagination.

use std::time::Duration;

use loghound_shared::api::{
    ErrorBody, IngestResponse, SearchResponse, HEADER_AGENT, HEADER_PROTOCOL, INGEST_PATH,
    MAX_SEARCH_LIMIT,
};
use loghound_shared::{encode_batch, Event, PROTOCOL_VERSION};

/// Searches cover all of time: corpus lines carry their own timestamps
/// (2005–2017) and the server indexes them at those times.
pub const ALL_TIME_FROM: &str = "1970-01-01T00:00:00Z";
/// See [`ALL_TIME_FROM`].
pub const ALL_TIME_TO: &str = "2100-01-01T00:00:00Z";
/// The largest page the search API serves.
pub const MAX_PAGE: usize = MAX_SEARCH_LIMIT;

/// One search hit as raw JSON (`id`, `timestamp`, `message`, …), so tests
/// see exactly what the server sent, absent keys included.
pub type Hit = serde_json::Value;

/// One page of `GET /api/v1/search`: the hits newest first, the exact
/// number of matches in the whole range, and where the next (older) page
/// starts, if there is one.
pub type SearchPage = SearchResponse<Hit>;

/// A status and a body, whatever the status.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!(
                "status {} body is not the expected JSON ({error}): {:?}",
                self.status, self.body
            )
        })
    }

    /// The body as an error body `{"error": …, "limit"?: …}`.
    pub fn error_body(&self) -> ErrorBody {
        self.json()
    }
}

/// The CA that [`client`] trusts for `https://` servers, when a test set
/// one with [`trust_ca`]; the built-in public roots otherwise.
static TRUSTED_CA: std::sync::Mutex<Option<Vec<ureq::tls::Certificate<'static>>>> =
    std::sync::Mutex::new(None);

/// Makes every later [`client`] of this process trust only the
/// certificates in `ca_pem` (a test's own CA).
pub fn trust_ca(ca_pem: &str) {
    let certs: Vec<_> = ureq::tls::parse_pem(ca_pem.as_bytes())
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    assert!(!certs.is_empty(), "trust_ca: no certificate in the PEM");
    *TRUSTED_CA.lock().unwrap_or_else(|e| e.into_inner()) = Some(certs);
}

/// An HTTP client that returns 4xx/5xx as answers instead of errors.
pub fn client() -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(certs) = &*TRUSTED_CA.lock().unwrap_or_else(|e| e.into_inner()) {
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(certs));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .tls_config(tls.build())
        .build()
        .new_agent()
}

fn answer(response: ureq::http::Response<ureq::Body>) -> Result<Answer, ureq::Error> {
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .into_with_config()
        .limit(256 << 20)
        .read_to_string()?;
    Ok(Answer { status, body })
}

/// The headers of a well-formed ingest request.
pub fn ingest_headers(token: &str, agent_id: &str) -> Vec<(String, String)> {
    vec![
        ("Authorization".into(), format!("Bearer {token}")),
        (HEADER_PROTOCOL.into(), PROTOCOL_VERSION.to_string()),
        (HEADER_AGENT.into(), agent_id.into()),
        ("Content-Encoding".into(), "zstd".into()),
        ("Content-Type".into(), "application/x-ndjson".into()),
    ]
}

/// POSTs `body` to the ingest endpoint with exactly `headers`.
pub fn post_ingest(
    base_url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Answer, ureq::Error> {
    let mut request = client().post(format!("{base_url}{INGEST_PATH}"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    answer(request.send(body)?)
}

/// Ingests `events` as one batch and expects a 200.
pub fn ingest(base_url: &str, token: &str, agent_id: &str, events: &[Event]) -> IngestResponse {
    let body = encode_batch(events, 3).expect("encode batch");
    let answer = post_ingest(base_url, &ingest_headers(token, agent_id), &body)
        .unwrap_or_else(|error| panic!("ingest request failed: {error}"));
    assert_eq!(
        answer.status,
        200,
        "ingest of {} events answered {}: {}",
        events.len(),
        answer.status,
        answer.body
    );
    answer.json()
}

/// `GET /api/v1/search` with the given query parameters and an optional
/// bearer token.
pub fn get_search(
    base_url: &str,
    token: Option<&str>,
    params: &[(&str, &str)],
) -> Result<Answer, ureq::Error> {
    get_with_params(base_url, "/api/v1/search", token, params)
}

/// `GET path` with query parameters, whatever the status.
pub fn get_with_params(
    base_url: &str,
    path: &str,
    token: Option<&str>,
    params: &[(&str, &str)],
) -> Result<Answer, ureq::Error> {
    let mut request = client().get(format!("{base_url}{path}"));
    for (name, value) in params {
        request = request.query(name, value);
    }
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    answer(request.call()?)
}

/// One page over all of time; an error names the status and body.
pub fn search_page(
    base_url: &str,
    token: &str,
    q: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<SearchPage, String> {
    let limit = limit.to_string();
    let mut params = vec![
        ("q", q),
        ("from", ALL_TIME_FROM),
        ("to", ALL_TIME_TO),
        ("limit", limit.as_str()),
    ];
    if let Some(cursor) = cursor {
        params.push(("cursor", cursor));
    }
    let answer = get_search(base_url, Some(token), &params).map_err(|e| e.to_string())?;
    if answer.status != 200 {
        return Err(format!(
            "search {q:?} answered {}: {}",
            answer.status, answer.body
        ));
    }
    serde_json::from_str(&answer.body)
        .map_err(|error| format!("search {q:?}: bad JSON ({error}): {}", answer.body))
}

/// Searches all of time for `q`: the exact count and the first 100 hits.
pub fn search(base_url: &str, token: &str, q: &str) -> (u64, Vec<Hit>) {
    let page = search_page(base_url, token, q, 100, None).unwrap_or_else(|error| panic!("{error}"));
    (page.count, page.hits)
}

/// Every hit for `q`, following the cursor page by page.
pub fn search_all(base_url: &str, token: &str, q: &str) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut expected_count = None;
    loop {
        let page = search_page(base_url, token, q, MAX_PAGE, cursor.as_deref())
            .unwrap_or_else(|error| panic!("{error}"));
        let count = *expected_count.get_or_insert(page.count);
        assert_eq!(
            page.count, count,
            "count changed while paging through {q:?}"
        );
        let page_len = page.hits.len();
        hits.extend(page.hits);
        assert!(
            hits.len() as u64 <= count,
            "paging through {q:?} returned {} hits, more than its count {count}: \
             the cursor repeats hits",
            hits.len()
        );
        match page.cursor {
            Some(next) if page_len > 0 && (hits.len() as u64) < count => cursor = Some(next),
            _ => break,
        }
    }
    hits
}

/// The `message` of a hit; panics when it has none.
pub fn hit_message(hit: &Hit) -> &str {
    hit.get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_else(|| panic!("hit without a string `message`: {hit}"))
}

/// A string field of a hit, if present.
pub fn hit_str<'a>(hit: &'a Hit, field: &str) -> Option<&'a str> {
    hit.get(field).and_then(|v| v.as_str())
}

/// `METHOD base_url + path` with a bearer token and an optional JSON body;
/// any status is an answer.
pub fn api(
    method: &str,
    base_url: &str,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
) -> Answer {
    let url = format!("{base_url}{path}");
    let auth = format!("Bearer {token}");
    let agent = client();
    let result = match method {
        "GET" => agent.get(&url).header("Authorization", &auth).call(),
        "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
        "POST" => {
            let request = agent.post(&url).header("Authorization", &auth);
            match body {
                Some(body) => request.send_json(body),
                None => request.send_empty(),
            }
        }
        "PUT" => agent
            .put(&url)
            .header("Authorization", &auth)
            .send_json(body.unwrap_or(&serde_json::Value::Null)),
        other => panic!("unsupported method {other}"),
    };
    let response = result.unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
    answer(response).unwrap_or_else(|e| panic!("{method} {url}: unreadable answer: {e}"))
}

/// [`api`], expecting `status`; returns the body as JSON (`null` if empty).
pub fn api_expect(
    method: &str,
    base_url: &str,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
    status: u16,
) -> serde_json::Value {
    let answer = api(method, base_url, path, token, body);
    assert_eq!(
        answer.status, status,
        "{method} {path} answered {}: {}",
        answer.status, answer.body
    );
    if answer.body.is_empty() {
        serde_json::Value::Null
    } else {
        answer.json()
    }
}
