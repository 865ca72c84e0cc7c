//! The shipper's unit tests, against a real socket with scripted answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;

use super::*;
use crate::pipeline::checkpoints::Position;
use crate::pipeline::shipper::*;

fn at(offset: u64) -> Position {
    Position {
        offset: loghound_shared::ByteOffset(offset),
        cursor: None,
    }
}

struct Request {
    head: String,
    body: Vec<u8>,
}

/// Answers each connection with the next canned response and records
/// the requests.
fn serve(responses: Vec<(&'static str, &'static str)>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    thread::spawn(move || {
        for response in responses {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            recorded.lock().unwrap().push(Request { head, body });
            let mut stream = reader.into_inner();
            let (head, body) = response;
            let answer = format!(
                "{head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).unwrap();
        }
    });
    (address, seen)
}

fn batch() -> Batch {
    Batch {
        seq: BatchSeq(7),
        body: b"pretend zstd".to_vec(),
        num_events: 1,
        stream_ends: vec![(FileId::new("f1").unwrap(), at(10))],
    }
}

const FOREVER: Patience = Patience::forever(BACKOFF_CAP);

fn client(servers: Vec<String>) -> Client {
    Client::new(
        ShipperConfig {
            servers,
            token: "s3cret".into(),
            agent_id: AgentId::new("agent1").unwrap(),
            tls_roots: None,
        },
        Arc::new(Metrics::default()),
    )
}

#[test]
fn retries_the_same_body_after_503_with_retry_after() {
    let (address, seen) = serve(vec![
        (
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1",
            r#"{"error":"indexer behind"}"#,
        ),
        ("HTTP/1.1 200 OK", r#"{"accepted":1,"duplicates":0}"#),
    ]);
    let started = std::time::Instant::now();
    let client = client(vec![address]);
    let outcome = client.deliver(&batch(), FOREVER);
    assert_eq!(
        outcome,
        Outcome::Acked(IngestResponse {
            accepted: 1,
            duplicates: 0
        })
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(client.metrics.retries.load(Ordering::Relaxed), 1);
    let error = client.metrics.last_error().unwrap().message;
    assert!(error.contains("503: indexer behind"), "{error}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(seen[0].body, b"pretend zstd");
    let head = &seen[0].head;
    assert!(head.starts_with("post /api/v1/ingest "), "{head}");
    assert!(head.contains("authorization: bearer s3cret"), "{head}");
    assert!(head.contains("content-encoding: zstd"), "{head}");
    assert!(
        head.contains("content-type: application/x-ndjson"),
        "{head}"
    );
    assert!(head.contains("x-loghound-protocol: 1"), "{head}");
    assert!(head.contains("x-loghound-agent: agent1"), "{head}");
}

#[test]
fn malformed_batch_is_rejected_not_retried() {
    let (address, seen) = serve(vec![(
        "HTTP/1.1 400 Bad Request",
        r#"{"error":"line 1: broken"}"#,
    )]);
    let outcome = client(vec![address]).deliver(&batch(), FOREVER);
    assert_eq!(
        outcome,
        Outcome::Rejected {
            status: 400,
            error: "line 1: broken".into()
        }
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// Answers every connection with `handler(body)` until dropped.
fn serve_with(
    handler: fn(&[u8]) -> (&'static str, String),
    listener: TcpListener,
) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let (head, answer) = handler(&body);
            recorded.lock().unwrap().push(body);
            let mut stream = reader.into_inner();
            let text = format!(
                "{head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(text.as_bytes());
        }
    });
    seen
}

fn events(messages: &[&str]) -> Vec<loghound_shared::Event> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| loghound_shared::Event {
            file_id: FileId::new("f1").unwrap(),
            offset: loghound_shared::ByteOffset(i as u64 * 10),
            end_offset: loghound_shared::ByteOffset(i as u64 * 10 + 10),
            host: "h".into(),
            source: "/var/log/f1.log".into(),
            message: m.to_string(),
            read_at_ms: None,
            tags: Default::default(),
            truncated: false,
            invalid_utf8: false,
            format: None,
            fields: Default::default(),
            severity: None,
            time_ms: None,
        })
        .collect()
}

fn real_batch(messages: &[&str]) -> Batch {
    Batch {
        seq: BatchSeq(1),
        body: loghound_shared::encode_batch(&events(messages), 3).unwrap(),
        num_events: messages.len(),
        stream_ends: vec![(FileId::new("f1").unwrap(), at(100))],
    }
}

/// More than two events: 413; an event saying BAD: 400; else 200.
fn picky(body: &[u8]) -> (&'static str, String) {
    let events = decode_own_batch(body).unwrap();
    if events.len() > 2 {
        return (
            "HTTP/1.1 413 Payload Too Large",
            r#"{"error":"too many events","limit":"max_events"}"#.into(),
        );
    }
    if events.iter().any(|e| e.message == "BAD") {
        return (
            "HTTP/1.1 400 Bad Request",
            r#"{"error":"line 1: unacceptable"}"#.into(),
        );
    }
    (
        "HTTP/1.1 200 OK",
        format!(r#"{{"accepted":{},"duplicates":0}}"#, events.len()),
    )
}

#[test]
fn a_refused_batch_is_split_down_to_the_one_bad_event() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let seen = serve_with(picky, listener);
    let client = client(vec![address]);
    let outcome = client.deliver(&real_batch(&["a", "b", "c", "BAD", "e", "f"]), FOREVER);
    assert_eq!(
        outcome,
        Outcome::Acked(IngestResponse {
            accepted: 5,
            duplicates: 0
        })
    );
    assert_eq!(client.num_rejected.load(Ordering::Relaxed), 1);
    assert_eq!(client.metrics.refused_events.load(Ordering::Relaxed), 1);
    assert_eq!(client.metrics.retries.load(Ordering::Relaxed), 0);
    // Every good line went through once, in file order.
    let delivered: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|body| decode_own_batch(body).unwrap())
        .filter(|events| events.len() <= 2 && events.iter().all(|e| e.message != "BAD"))
        .flatten()
        .map(|e| e.message)
        .collect();
    assert_eq!(delivered, ["a", "b", "c", "e", "f"]);
}

#[test]
fn returns_to_the_first_server_once_it_answers_again() {
    // The first server's port, with nothing listening on it yet.
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let first_address = first.local_addr().unwrap();
    drop(first);
    let second = TcpListener::bind("127.0.0.1:0").unwrap();
    let second_url = format!("http://{}", second.local_addr().unwrap());
    let second_seen = serve_with(picky, second);
    let mut client = client(vec![format!("http://{first_address}"), second_url]);
    client.probe_interval = Duration::from_millis(100);

    let outcome = client.deliver(&real_batch(&["one"]), FOREVER);
    assert!(matches!(outcome, Outcome::Acked(_)), "{outcome:?}");
    assert_eq!(second_seen.lock().unwrap().len(), 1);
    assert_eq!(client.current_server.load(Ordering::Relaxed), 1);

    // The first server comes back; after the probe interval the next
    // batch goes to it, and so does the one after.
    let Ok(first) = TcpListener::bind(first_address) else {
        panic!("port {first_address} was taken meanwhile");
    };
    let first_seen = serve_with(picky, first);
    thread::sleep(Duration::from_millis(150));
    client.deliver(&real_batch(&["two"]), FOREVER);
    client.deliver(&real_batch(&["three"]), FOREVER);
    assert_eq!(first_seen.lock().unwrap().len(), 2);
    assert_eq!(second_seen.lock().unwrap().len(), 1);
    assert_eq!(client.current_server.load(Ordering::Relaxed), 0);
}

#[test]
fn with_a_spool_an_unreachable_batch_is_handed_back_after_every_server_failed() {
    // Two ports with nothing listening.
    let dead: Vec<String> = (0..2)
        .map(|_| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        })
        .collect();
    let patience = Patience::for_senders(true, dead.len());
    assert_eq!(patience.give_up_after, Some(SPOOL_AFTER_ATTEMPTS));
    assert_eq!(
        Patience::for_senders(true, 5).give_up_after,
        Some(5),
        "at least one attempt on every server"
    );
    assert_eq!(Patience::for_senders(false, 2).give_up_after, None);
    let client = client(dead);
    assert_eq!(
        client.deliver(&real_batch(&["one"]), patience),
        Outcome::Unreachable
    );
}

#[test]
fn classification() {
    assert!(matches!(
        classify(401, "{\"error\":\"bad token\"}", None),
        Attempt::Retry { .. }
    ));
    assert!(matches!(classify(403, "", None), Attempt::Retry { .. }));
    assert!(matches!(classify(408, "", None), Attempt::Retry { .. }));
    assert!(matches!(classify(500, "", None), Attempt::Retry { .. }));
    let pause = Some(Duration::from_secs(3));
    assert!(matches!(
        classify(429, "", pause),
        Attempt::Retry {
            retry_after: Some(_),
            ..
        }
    ));
    assert!(matches!(
        classify(413, "{\"error\":\"too big\"}", None),
        Attempt::Settled(Outcome::Rejected { status: 413, .. })
    ));
}

#[test]
fn backoff_grows_with_jitter_up_to_the_cap() {
    let mut backoff = Backoff::with_cap(BACKOFF_CAP);
    for _ in 0..40 {
        assert!(backoff.next_delay(None) <= BACKOFF_CAP);
    }
    assert_eq!(
        backoff.next_delay(Some(Duration::from_secs(2))),
        Duration::from_secs(2)
    );
    let mut first = Backoff::with_cap(BACKOFF_CAP);
    assert!(first.next_delay(None) <= BACKOFF_START);
}

#[test]
fn a_settled_batch_cuts_short_the_other_threads_backoff() {
    let client = Arc::new(client(vec!["http://127.0.0.1:9".into()]));
    // An answer after the pause began wakes it.
    let (done, finished) = std::sync::mpsc::channel();
    let pausing = client.clone();
    let seen = client.num_answers();
    std::thread::spawn(move || {
        pausing.pause(Duration::from_secs(3600), seen);
        let _ = done.send(());
    });
    std::thread::sleep(Duration::from_millis(50));
    client.note_answer();
    assert!(
        finished.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the pause outlasted a settled batch"
    );
    // An answer that came while the try was under way: no pause at all.
    let seen = client.num_answers();
    client.note_answer();
    let (done, finished) = std::sync::mpsc::channel();
    let pausing = client.clone();
    std::thread::spawn(move || {
        pausing.pause(Duration::from_secs(3600), seen);
        let _ = done.send(());
    });
    assert!(finished.recv_timeout(Duration::from_secs(60)).is_ok());
    // Without an answer the pause lasts its full length.
    let (done, finished) = std::sync::mpsc::channel();
    let pausing = client.clone();
    let seen = client.num_answers();
    std::thread::spawn(move || {
        pausing.pause(Duration::from_millis(300), seen);
        let _ = done.send(());
    });
    assert!(finished.recv_timeout(Duration::from_millis(100)).is_err());
    assert!(finished.recv_timeout(Duration::from_secs(60)).is_ok());
}
