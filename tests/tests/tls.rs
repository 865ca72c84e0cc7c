//! HTTPS end to end: a server with its own certificate (signed by a CA
//! made for the test), agents that trust that CA or not, the CLI with
//! `--ca`, and connections that never finish (or never start) the TLS
//! handshake.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use loghound_tests::data::{append, numbered_lines};
use loghound_tests::http::{client, trust_ca};
use loghound_tests::process::{log_tail, run_loghound};
use loghound_tests::{
    assert_count_stays, assert_each_number_once, temp_dir, token, wait_for_count, Agent, Server,
    ServerOptions,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// A CA and a server certificate for 127.0.0.1 and localhost, signed by it.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA's certificate with its issuer, for signing.
fn new_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert.pem(), rcgen::Issuer::new(params, key))
}

/// The test's PKI, made once per process: the harness's HTTP client
/// trusts its CA.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let (ca_pem, issuer) = new_ca("Loghound test CA");
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        let key = rcgen::KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        trust_ca(&ca_pem);
        Pki {
            ca_pem,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    })
}

/// Writes `text` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// Starts a TLS server in `root/server` with its certificate in
/// `root/tls`.
fn start_tls_server(root: &Path, handshake_timeout_ms: u64) -> Server {
    let pki = pki();
    let tls_dir = root.join("tls");
    let cert = write(&tls_dir, "cert.pem", &pki.cert_pem);
    let key = write(&tls_dir, "key.pem", &pki.key_pem);
    let config = write(
        root,
        "server.toml",
        &format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nhandshake_timeout_ms = {handshake_timeout_ms}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    );
    let server = Server::start_with(
        &root.join("server"),
        ServerOptions {
            config: Some(config),
            ..ServerOptions::default()
        },
    );
    assert!(
        server.url().starts_with("https://"),
        "a server with [tls] must print `listening on https://…`, URL is {}",
        server.url()
    );
    server
}

#[test]
fn agent_with_the_ca_ships_over_https_and_the_cli_searches_with_ca() {
    let root = temp_dir();
    let server = start_tls_server(root.path(), 10_000);
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let ca = write(&root.path().join("tls"), "ca.pem", &pki().ca_pem);

    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let file = logs.join("app.log");
    append(&file, &numbered_lines("tlsok", 0..700));
    let ca_arg = ca.display().to_string();
    let _agent = Agent::start_with(
        &server.url(),
        &ingest_token,
        &root.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &["--tls-ca", ca_arg.as_str()],
    );
    wait_for_count(&server.url(), &read_token, "tlsok", 700, DEADLINE);
    assert_each_number_once(&server.url(), &read_token, "tlsok", 700);

    // The CLI: with --ca it searches; without, the certificate is refused
    // and it says so.
    let url = server.url();
    let base = [
        "search",
        "tlsok",
        "--server",
        &url,
        "--token",
        &read_token,
        "--count",
    ];
    let output = run_loghound(&[&base[..], &["--ca", ca_arg.as_str()]].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "search with --ca failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "700");
    let output = run_loghound(&base);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "search without --ca succeeded");
    assert!(
        stderr.contains("certificate"),
        "error without --ca should name the certificate problem: {stderr}"
    );

    // The session cookie of a sign-in over the server's own HTTPS is
    // Secure, with no proxy header to say so.
    let response = client()
        .post(format!("{url}/api/v1/session"))
        .header("X-Loghound-CSRF", "1")
        .send_json(serde_json::json!({ "token": read_token }))
        .expect("sign in over https");
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.ends_with("; Secure"),
        "{cookie}"
    );
}

#[test]
fn agent_without_the_right_ca_delivers_nothing_then_everything_exactly_once() {
    let root = temp_dir();
    let server = start_tls_server(root.path(), 10_000);
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let tls_dir = root.path().join("tls");
    let right_ca = write(&tls_dir, "ca.pem", &pki().ca_pem);
    let (other_ca_pem, _) = new_ca("Some other CA");
    let wrong_ca = write(&tls_dir, "other-ca.pem", &other_ca_pem);

    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let file = logs.join("app.log");
    append(&file, &numbered_lines("tlsretry", 0..400));
    let glob = [format!("{}/*.log", logs.display())];
    let state = root.path().join("agent");

    // The built-in public roots do not know the test CA; then a CA that
    // did not sign the server's certificate.
    for extra in [
        vec![],
        vec!["--tls-ca".to_string(), wrong_ca.display().to_string()],
    ] {
        let mut agent = Agent::start_with(&server.url(), &ingest_token, &state, &glob, &extra);
        let before = std::fs::read_to_string(agent.log_path()).unwrap_or_default();
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(agent.log_path()).unwrap_or_default();
            let new = &text[before.len().min(text.len())..];
            if new.contains("server certificate refused") && new.contains("UnknownIssuer") {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the agent never logged the certificate error ({extra:?})\n{}",
                log_tail(agent.log_path())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        agent.assert_running();
        assert_count_stays(
            &server.url(),
            &read_token,
            "tlsretry",
            0,
            Duration::from_secs(2),
        );
        agent.kill9();
    }
    append(&file, &numbered_lines("tlsretry", 400..500));

    let right = right_ca.display().to_string();
    let _agent = Agent::start_with(
        &server.url(),
        &ingest_token,
        &state,
        &glob,
        &["--tls-ca", right.as_str()],
    );
    wait_for_count(&server.url(), &read_token, "tlsretry", 500, DEADLINE);
    assert_each_number_once(&server.url(), &read_token, "tlsretry", 500);
    assert_count_stays(
        &server.url(),
        &read_token,
        "tlsretry",
        500,
        Duration::from_secs(3),
    );
}

/// Reads from `stream` until the server closes it; returns what it sent.
/// Panics if the server keeps it open past the deadline.
fn read_until_closed(mut stream: TcpStream, what: &str) -> Vec<u8> {
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("set read timeout");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(error) => panic!("{what}: the server did not close the connection: {error}"),
        }
    }
}

#[test]
fn plain_http_and_stalled_handshakes_are_dropped_while_others_are_served() {
    let root = temp_dir();
    let server = start_tls_server(root.path(), 1_000);
    let read_token = token(server.data_dir(), &["read"]);
    let addr = server.addr();
    let healthz = || {
        let response = client()
            .get(format!("{}/healthz", server.url()))
            .call()
            .expect("healthz over https");
        assert_eq!(response.status().as_u16(), 200);
    };

    // Plain HTTP to the TLS port: no HTTP answer, the connection closes.
    let mut plain = TcpStream::connect(addr).expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send a plain request");
    let answer = read_until_closed(plain, "plain HTTP");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "the TLS port answered plain HTTP: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // Two clients that connect and stall: one sends nothing, one the first
    // bytes of a ClientHello. Others are served meanwhile.
    let silent = TcpStream::connect(addr).expect("connect");
    let mut partial = TcpStream::connect(addr).expect("connect");
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("send part of a ClientHello");
    for _ in 0..5 {
        healthz();
    }
    let page = loghound_tests::http::search_page(&server.url(), &read_token, "", 1, None)
        .expect("search over https while others stall");
    assert_eq!(page.count, 0);
    assert!(read_until_closed(silent, "silent client").is_empty());
    assert!(read_until_closed(partial, "partial handshake").is_empty());
    healthz();
}

#[test]
fn bad_certificate_or_key_files_stop_the_server_naming_the_file() {
    let root = temp_dir();
    let pki = pki();
    let tls_dir = root.path().join("tls");
    let cert = write(&tls_dir, "cert.pem", &pki.cert_pem);
    let key = write(&tls_dir, "key.pem", &pki.key_pem);
    let garbage = write(&tls_dir, "garbage.pem", "this is not PEM\n");
    let other_key = write(
        &tls_dir,
        "other-key.pem",
        &rcgen::KeyPair::generate().unwrap().serialize_pem(),
    );
    let missing = tls_dir.join("missing.pem");
    let data_dir = root.path().join("server");
    let cases: [(&Path, &Path, &[&str]); 4] = [
        (&missing, &key, &["missing.pem", "certificate"]),
        (&garbage, &key, &["garbage.pem", "BEGIN CERTIFICATE"]),
        (&cert, &garbage, &["garbage.pem", "no private key"]),
        (&cert, &other_key, &["cert.pem", "other-key.pem"]),
    ];
    for (cert, key, expected) in cases {
        let output = run_loghound(&[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            data_dir.as_os_str(),
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ] as &[&std::ffi::OsStr]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "server started with {cert:?} {key:?}"
        );
        assert!(output.stdout.is_empty(), "{:?}", output.stdout);
        for word in expected {
            assert!(stderr.contains(word), "expected {word:?} in: {stderr}");
        }
    }
}
