//! Live tail over a real socket: new matching lines arrive, others do not,
//! `Last-Event-ID` resumes without gaps or repeats, a client that stops
//! reading is dropped with its queue bounded, and shutdown ends open tails.
//! Every wait is bounded.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use loghound_server::cli::tail::{read_sse_line, SseEvent, SseParser};
use loghound_server::config::ServerConfig;
use loghound_server::http::{app, TailLimits, Tails};
use loghound_server::serve::{recover, serve_until, Recovered};
use loghound_server::tokens::{create, Scope};
use loghound_shared::{encode_batch, ByteOffset, Event, FileId};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        data_dir: dir.to_path_buf(),
        commit_interval_ms: 50,
        index_writer_heap_bytes: 16 << 20,
        index_writer_threads: 1,
        ..ServerConfig::default()
    }
}

/// A running server on 127.0.0.1 and what a test needs to drive it.
struct Server {
    address: SocketAddr,
    recovered: Recovered,
    ingest_token: String,
    read_token: String,
    next_offset: u64,
    stop: Option<oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// `send_buffer_bytes` shrinks the kernel's send buffer of accepted
    /// connections, so a client that stops reading fills it quickly.
    async fn start(
        dir: &std::path::Path,
        limits: TailLimits,
        send_buffer_bytes: Option<u32>,
    ) -> Server {
        let ingest_token = create(dir, &[Scope::Ingest]).unwrap();
        let read_token = create(dir, &[Scope::Read]).unwrap();
        let config = config(dir);
        let mut recovered = tokio::task::spawn_blocking(move || recover(&config))
            .await
            .unwrap()
            .unwrap();
        recovered.state.tails = Arc::new(Tails::new(limits));
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(bytes) = send_buffer_bytes {
            socket.set_send_buffer_size(bytes).unwrap();
        }
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(64).unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(serve_until(listener, recovered.state.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            address,
            recovered,
            ingest_token,
            read_token,
            next_offset: 0,
            stop: Some(stop),
            serving,
        }
    }

    fn tails(&self) -> &Tails {
        &self.recovered.state.tails
    }

    async fn ingest(&mut self, messages: &[String]) {
        let events: Vec<Event> = messages
            .iter()
            .map(|message| {
                let start = self.next_offset;
                self.next_offset += message.len() as u64 + 1;
                Event {
                    file_id: FileId::new("f1").unwrap(),
                    offset: ByteOffset(start),
                    end_offset: ByteOffset(self.next_offset),
                    host: "web3".into(),
                    source: "/var/log/app.log".into(),
                    message: message.clone(),
                    read_at_ms: Some(1_764_000_000_000),
                    tags: BTreeMap::new(),
                    truncated: false,
                    invalid_utf8: false,
                    format: None,
                    fields: Default::default(),
                    severity: None,
                    time_ms: None,
                }
            })
            .collect();
        let request = Request::post("/api/v1/ingest")
            .header("authorization", format!("Bearer {}", self.ingest_token))
            .header("x-loghound-protocol", "1")
            .header("x-loghound-agent", "agent-1")
            .header("content-encoding", "zstd")
            .body(Body::from(encode_batch(&events, 3).unwrap()))
            .unwrap();
        let response = app(self.recovered.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Waits until a search for `query` finds `count` lines, so they are
    /// committed.
    async fn wait_searchable(&self, query: &str, count: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let request = Request::get(format!("/api/v1/search?q={query}"))
                .header("authorization", format!("Bearer {}", self.read_token))
                .body(Body::empty())
                .unwrap();
            let response = app(self.recovered.state.clone())
                .oneshot(request)
                .await
                .unwrap();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            if body["count"] == count {
                return;
            }
            assert!(Instant::now() < deadline, "{query}: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server and checks that it stopped before the shutdown
    /// grace period (10 s) could have cut open tails off.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(8), self.serving)
            .await
            .expect("graceful shutdown must not wait on open tails")
            .unwrap()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(8));
        let recovered = self.recovered;
        tokio::task::spawn_blocking(move || recovered.shutdown())
            .await
            .unwrap();
    }
}

/// A tail read by a blocking ureq client on its own thread.
struct Subscriber {
    events: mpsc::UnboundedReceiver<SseEvent>,
}

impl Subscriber {
    /// Opens a tail; returns once the answer's headers arrived, so the
    /// tail's starting point is fixed.
    async fn open(
        server: &Server,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Result<Subscriber, (u16, Option<String>)> {
        let url = format!("http://{}/api/v1/tail", server.address);
        let token = server.read_token.clone();
        let query = query.to_string();
        let last_event_id = last_event_id.map(str::to_string);
        let (opened_tx, opened_rx) = oneshot::channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_per_read(Some(Duration::from_secs(30)))
                .build()
                .new_agent();
            let mut request = agent
                .get(&url)
                .header("authorization", &format!("Bearer {token}"))
                .query("q", &query);
            if let Some(id) = &last_event_id {
                request = request.header("last-event-id", id);
            }
            let response = request.call().unwrap();
            let status = response.status().as_u16();
            if status != 200 {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let _ = opened_tx.send(Err((status, retry_after)));
                return;
            }
            let _ = opened_tx.send(Ok(()));
            let mut reader = std::io::BufReader::new(response.into_body().into_reader());
            let mut parser = SseParser::default();
            let mut line = Vec::new();
            while let Ok(true) = read_sse_line(&mut reader, &mut line) {
                if let Some(event) = parser.push_line(std::str::from_utf8(&line).unwrap()) {
                    if events_tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, opened_rx)
            .await
            .expect("tail answers")
            .unwrap()
            .map(|()| Subscriber { events })
    }

    /// The next event; panics if none comes in time.
    async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("stream still open")
    }

    /// The next hit's id and message.
    async fn next_hit(&mut self) -> (String, String) {
        let event = self.next().await;
        assert_eq!(event.event, "hit", "{event:?}");
        let hit: Value = serde_json::from_str(&event.data).unwrap();
        let id = event.id.expect("hits carry their id");
        assert_eq!(hit["id"], id.as_str());
        (id, hit["message"].as_str().unwrap().to_string())
    }

    /// Waits for the stream to end.
    async fn ended(mut self) {
        let end =
            tokio::time::timeout(WAIT, async { while self.events.recv().await.is_some() {} }).await;
        assert!(end.is_ok(), "the stream must end");
    }
}

fn strings(messages: &[&str]) -> Vec<String> {
    messages.iter().map(|m| m.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_matching_lines_arrive_in_order_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), TailLimits::default(), None).await;
    server.ingest(&strings(&["old timeout"])).await;
    server.wait_searchable("old", 1).await;

    let mut tail = Subscriber::open(&server, "timeout", None).await.unwrap();
    server
        .ingest(&strings(&[
            "GET /a 200",
            "upstream timeout 1",
            "ok",
            "timeout 2",
        ]))
        .await;
    let (first_id, first) = tail.next_hit().await;
    assert_eq!(first, "upstream timeout 1", "the tail starts at now");
    let (second_id, second) = tail.next_hit().await;
    assert_eq!(second, "timeout 2");
    assert!(first_id.parse::<u64>().unwrap() < second_id.parse::<u64>().unwrap());
    server.ingest(&strings(&["GET /b 200", "timeout 3"])).await;
    assert_eq!(
        tail.next_hit().await.1,
        "timeout 3",
        "non-matching lines are not sent"
    );

    // Resuming after the first hit gets exactly what followed it.
    let mut resumed = Subscriber::open(&server, "timeout", Some(&first_id))
        .await
        .unwrap();
    assert_eq!(resumed.next_hit().await, (second_id.clone(), second));
    assert_eq!(resumed.next_hit().await.1, "timeout 3");
    server.ingest(&strings(&["timeout 4"])).await;
    assert_eq!(resumed.next_hit().await.1, "timeout 4", "no repeats");
    assert_eq!(tail.next_hit().await.1, "timeout 4");
    assert_eq!(server.tails().num_active(), 2);

    // Errors are answered before the stream starts.
    let error = Subscriber::open(&server, "\"unclosed", None).await.err();
    assert_eq!(error.map(|e| e.0), Some(400));
    let error = Subscriber::open(&server, "x", Some("not-an-id"))
        .await
        .err();
    assert_eq!(error.map(|e| e.0), Some(400));

    // Shutdown ends open tails instead of waiting on them.
    server.stop().await;
    tail.ended().await;
    resumed.ended().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_tails_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let limits = TailLimits {
        max_tails: 1,
        ..TailLimits::default()
    };
    let server = Server::start(dir.path(), limits, None).await;
    let tail = Subscriber::open(&server, "", None).await.unwrap();
    let refused = Subscriber::open(&server, "", None).await.err();
    assert_eq!(refused, Some((503, Some("5".to_string()))));
    server.stop().await;
    tail.ended().await;
}

/// Sends a tail request on a socket with a small receive buffer and reads
/// only the answer's headers. Blocking I/O, with read timeouts.
async fn open_unread_tail(server: &Server) -> (std::net::TcpStream, Vec<u8>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.address).await.unwrap();
    let mut stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "GET /api/v1/tail?q=slow HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        server.address, server.read_token
    );
    tokio::task::spawn_blocking(move || {
        stream.write_all(request.as_bytes()).unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).expect("headers in time");
            assert!(n > 0, "connection closed before the headers");
            received.extend_from_slice(&chunk[..n]);
        }
        (stream, received)
    })
    .await
    .unwrap()
}

/// The body of an HTTP/1.1 answer with chunked transfer encoding.
fn dechunk(answer: &[u8]) -> String {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&answer[..split]).to_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut rest = &answer[split..];
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    String::from_utf8(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_dropped_and_can_resume() {
    let dir = tempfile::tempdir().unwrap();
    let limits = TailLimits {
        queue_events: 16,
        page_size: 50,
        slow_client_grace: Duration::from_millis(500),
        ..TailLimits::default()
    };
    let mut server = Server::start(dir.path(), limits, Some(4096)).await;
    let (stream, answer) = open_unread_tail(&server).await;

    // Far more than the queue, hyper's buffer and both socket buffers hold.
    let padding = "x".repeat(1000);
    let total = 3000;
    for batch in 0..(total / 500) {
        let messages: Vec<String> = (batch * 500..(batch + 1) * 500)
            .map(|i| format!("slow {i:05} {padding}"))
            .collect();
        server.ingest(&messages).await;
    }
    let deadline = Instant::now() + WAIT;
    while server.tails().num_dropped_slow() == 0 {
        assert!(
            server.tails().num_queued_events() <= 16,
            "the queue is bounded"
        );
        assert!(Instant::now() < deadline, "the slow client is dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(server.tails().num_queued_events() <= 16);

    // What the client gets: hits in order, then `dropped`, then the end.
    let answer = tokio::task::spawn_blocking(move || {
        let (mut stream, mut answer) = (stream, answer);
        stream
            .read_to_end(&mut answer)
            .expect("the dropped stream ends in time");
        answer
    })
    .await
    .unwrap();
    let mut parser = SseParser::default();
    let events: Vec<SseEvent> = dechunk(&answer)
        .split_inclusive('\n')
        .filter_map(|line| parser.push_line(line))
        .collect();
    let (dropped, hits) = events.split_last().unwrap();
    assert_eq!(dropped.event, "dropped", "{dropped:?}");
    let dropped_data: Value = serde_json::from_str(&dropped.data).unwrap();
    assert_eq!(dropped_data["reason"], "client too slow");
    let last_id = dropped_data["last_id"].as_str().unwrap().to_string();
    assert_eq!(hits.last().unwrap().id.as_deref(), Some(last_id.as_str()));
    let received = hits.len();
    assert!(received < total, "dropped before the end: {received}");
    for (i, hit) in hits.iter().enumerate() {
        let message: Value = serde_json::from_str(&hit.data).unwrap();
        assert!(
            message["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("slow {i:05} ")),
            "hit {i} in order"
        );
    }

    // Resuming after `last_id` yields the rest, each line once.
    let mut resumed = Subscriber::open(&server, "slow", Some(&last_id))
        .await
        .unwrap();
    for i in received..total {
        let (_, message) = resumed.next_hit().await;
        assert!(message.starts_with(&format!("slow {i:05} ")), "{i}");
    }
    server.ingest(&strings(&["slow end"])).await;
    assert_eq!(resumed.next_hit().await.1, "slow end");
    assert_eq!(server.tails().num_active(), 1, "the dropped tail is closed");
    assert_eq!(server.tails().num_queued_events(), 0);
    server.stop().await;
    resumed.ended().await;
}
