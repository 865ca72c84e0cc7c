//! `GET /metrics` on `metrics_listen`: a deliberately tiny HTTP/1 server on
//! std's `TcpListener` rather than an HTTP crate, so the agent stays small.
//!
//! One thread serves one connection at a time: a scrape is one short
//! request every few seconds. Handling is strict: the request head must
//! arrive within [`REQUEST_TIMEOUT`] and fit in [`MAX_HEAD_BYTES`]; only
//! `GET` (and `HEAD`) of `/metrics` succeed, anything else gets 404, 405 or
//! 400; every answer closes the connection. A request body is never read.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;

/// How long a client may take to send its request head, and to take the
/// answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request head accepted.
const MAX_HEAD_BYTES: usize = 8 << 10;

/// Serves `/metrics` on `listener` from a thread of its own.
pub(crate) fn start(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(error) = serve(stream, &metrics) {
                            tracing::debug!(%error, "metrics request failed");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a metrics connection");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .map(drop)
}

fn serve(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let head = match read_head(&mut stream)? {
        Some(head) => head,
        None => return respond(&mut stream, "400 Bad Request", "bad request\n", true),
    };
    let (status, body, with_body) = answer(&head, metrics);
    respond(&mut stream, status, &body, with_body)
}

/// Reads up to the blank line ending the head; `None` if the head is too
/// long or the connection ends first.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buffer[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
    }
}

/// Status line, body, and whether to send the body, for a request head.
fn answer(head: &[u8], metrics: &Metrics) -> (&'static str, String, bool) {
    let text = String::from_utf8_lossy(head);
    let request_line = text.lines().next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return ("400 Bad Request", "bad request line\n".into(), true);
    };
    if !version.starts_with("HTTP/1.") {
        return ("400 Bad Request", "HTTP/1.x only\n".into(), true);
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return (
            "404 Not Found",
            "only /metrics is served here\n".into(),
            true,
        );
    }
    match method {
        "GET" => ("200 OK", metrics.render(), true),
        "HEAD" => ("200 OK", metrics.render(), false),
        _ => ("405 Method Not Allowed", "use GET\n".into(), true),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    with_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn serves_metrics_and_refuses_everything_else() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        metrics
            .lines_acked
            .store(42, std::sync::atomic::Ordering::Relaxed);
        start(listener, metrics).unwrap();

        let ok = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("\nloghound_agent_lines_acked_total 42\n"),
            "{ok}"
        );
        let head = exchange(address, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"));
        let missing = exchange(address, b"GET / HTTP/1.1\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let post = exchange(address, b"POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let garbage = exchange(address, b"hello\r\n\r\n");
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        // A head over the limit is refused (the answer may be lost to the
        // reset of a connection with unread bytes); the server goes on.
        let mut long = TcpStream::connect(address).unwrap();
        let _ = long.write_all(&vec![b'a'; MAX_HEAD_BYTES + 2048]);
        let _ = long.read_to_string(&mut String::new());
        // A client that connects and says nothing holds the server for at
        // most the request timeout; the next scrape is served after it.
        let _silent = TcpStream::connect(address).unwrap();
        let after = exchange(address, b"GET /metrics HTTP/1.0\r\n\r\n");
        assert!(after.starts_with("HTTP/1.1 200 OK\r\n"), "{after}");
    }
}
