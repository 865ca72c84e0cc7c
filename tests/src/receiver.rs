//! A real HTTP receiver for webhook tests: records every request it gets
//! (at receipt, before answering) and answers with a status the test sets,
//! optionally after a delay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub url: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "webhook body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Behaviour {
    status: u16,
    delay: Duration,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Listens on `127.0.0.1:0`, answering 200 at once.
    pub fn start() -> Receiver {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind the webhook receiver");
        let addr = server
            .server_addr()
            .to_ip()
            .expect("the receiver listens on an IP address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour {
            status: 200,
            delay: Duration::ZERO,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, behaviour, stop) = (
                Arc::clone(&requests),
                Arc::clone(&behaviour),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(100))
                    else {
                        continue;
                    };
                    let at = Instant::now();
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let received = Received {
                        method: request.method().to_string(),
                        url: request.url().to_string(),
                        headers: request
                            .headers()
                            .iter()
                            .map(|h| {
                                (
                                    h.field.as_str().as_str().to_ascii_lowercase(),
                                    h.value.as_str().to_string(),
                                )
                            })
                            .collect(),
                        body,
                        at,
                    };
                    requests.lock().unwrap().push(received);
                    let now = *behaviour.lock().unwrap();
                    std::thread::spawn(move || {
                        std::thread::sleep(now.delay);
                        let _ = request.respond(
                            tiny_http::Response::from_string("ok").with_status_code(now.status),
                        );
                    });
                }
            })
        };
        Receiver {
            addr,
            requests,
            behaviour,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The status later requests get.
    pub fn set_status(&self, status: u16) {
        self.behaviour.lock().unwrap().status = status;
    }

    /// How long later requests wait for their answer.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour.lock().unwrap().delay = delay;
    }

    /// Every request so far, in order of receipt.
    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.url.starts_with(prefix))
            .collect()
    }

    /// Waits up to `timeout` until `done` holds for the requests so far;
    /// panics with what arrived otherwise.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            if Instant::now() > deadline {
                let bodies: Vec<String> = requests
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}: {}",
                            r.method,
                            r.url,
                            String::from_utf8_lossy(&r.body)
                        )
                    })
                    .collect();
                panic!(
                    "webhook receiver: {what} not seen within {timeout:?}; received {}:\n{}",
                    requests.len(),
                    bodies.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
