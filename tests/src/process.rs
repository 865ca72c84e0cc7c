//! The binaries as child processes: the server ([`Server`]), the agent
//! ([`Agent`]) and one-shot CLI commands ([`token`], [`run_loghound`]).
//!
//! Every child writes its stderr to a log file; when a test panics while a
//! [`Server`] or [`Agent`] is alive, its log is printed from `Drop`, so the
//! failure report shows what the process said.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::paths::{agent_bin, loghound_bin};

/// How long a server may take to print its `listening on` line.
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a one-shot CLI command may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How many trailing log lines a failing test prints per process.
const LOG_TAIL_LINES: usize = 150;

/// A running `loghound serve`, bound to an address on 127.0.0.1.
pub struct Server {
    data_dir: PathBuf,
    log_path: PathBuf,
    addr: SocketAddr,
    /// `http` or `https`, as the server printed it.
    scheme: &'static str,
    options: ServerOptions,
    /// How long a restart may take to print its `listening on` line.
    ready_timeout: Duration,
    child: Option<Child>,
}

/// How a test starts `loghound serve` beyond its data directory.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server on `127.0.0.1:0` with its data in `data_dir` and
    /// waits for its `listening on http://IP:PORT` line.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, ServerOptions::default())
    }

    /// [`Server::start`] with a config file or environment; restarts keep
    /// them unless [`Server::set_options`] changes them.
    pub fn start_with(data_dir: &Path, options: ServerOptions) -> Server {
        std::fs::create_dir_all(data_dir).expect("create the server data directory");
        let log_path = log_path_for(data_dir);
        match spawn_server(
            data_dir,
            "127.0.0.1:0",
            &log_path,
            &options,
            SERVER_READY_TIMEOUT,
        ) {
            Ok((child, addr, scheme)) => Server {
                data_dir: data_dir.to_path_buf(),
                log_path,
                addr,
                scheme,
                options,
                ready_timeout: SERVER_READY_TIMEOUT,
                child: Some(child),
            },
            Err(error) => panic!("server did not start: {error}\n{}", log_tail(&log_path)),
        }
    }

    /// How long later restarts may take to be ready (30 s unless set): a
    /// restart replays the write-ahead log before it listens.
    pub fn set_ready_timeout(&mut self, timeout: Duration) {
        self.ready_timeout = timeout;
    }

    /// The options the next [`Server::restart`] uses.
    pub fn set_options(&mut self, options: ServerOptions) {
        self.options = options;
    }

    /// Waits up to `timeout` for the process to exit on its own (a crash
    /// the test provoked); returns whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.child.as_mut().map(Child::try_wait) {
                None => return true,
                Some(Ok(Some(status))) => {
                    append_marker(&self.log_path, &format!("exited on its own: {status}"));
                    self.child = None;
                    return true;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        false
    }

    /// The base URL, `http://IP:PORT` (`https://` for a server with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The stderr log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id; panics when the server is not running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            append_marker(&self.log_path, "killed with SIGKILL by the test");
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the server to exit.
    /// Panics if it does not.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.take().expect("server is running");
        terminate("server", child, &self.log_path, timeout)
    }

    /// Restarts on the same data directory and the same address (so agents
    /// pointed at the old URL reconnect), killing it first if it runs.
    /// Retries for a while when the port is still held.
    pub fn restart(&mut self) {
        self.kill9();
        let listen = self.addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            append_marker(&self.log_path, &format!("restarting on {listen}"));
            match spawn_server(
                &self.data_dir,
                &listen,
                &self.log_path,
                &self.options,
                self.ready_timeout,
            ) {
                Ok((child, addr, _)) => {
                    assert_eq!(
                        addr, self.addr,
                        "server was asked to listen on {listen} but printed {addr}"
                    );
                    self.child = Some(child);
                    return;
                }
                Err(error) if Instant::now() > deadline => panic!(
                    "server did not restart on {listen}: {error}\n{}",
                    log_tail(&self.log_path)
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// Panics (printing the log) if the server process has exited.
    pub fn assert_running(&mut self) {
        assert_running("server", &mut self.child, &self.log_path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        report_and_kill("server", &mut self.child, &self.log_path);
    }
}

/// Spawns `loghound serve` and waits for its ready line. On failure the
/// child is killed and reaped.
fn spawn_server(
    data_dir: &Path,
    listen: &str,
    log_path: &Path,
    options: &ServerOptions,
    ready_timeout: Duration,
) -> Result<(Child, SocketAddr, &'static str), String> {
    let mut command = Command::new(loghound_bin());
    command
        .arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(config) = &options.config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .envs(options.env.iter().map(|(k, v)| (k, v)))
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(open_log(log_path))
        .spawn()
        .map_err(|error| format!("cannot spawn loghound serve: {error}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    let stdout_log = open_log(log_path);
    std::thread::spawn(move || forward_stdout(stdout, stdout_log, ready_tx));

    let fail = |child: &mut Child, why: String| {
        let _ = child.kill();
        let status = child.wait();
        Err(format!("{why} (process status: {status:?})"))
    };
    let line = match ready_rx.recv_timeout(ready_timeout) {
        Ok(line) => line,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return fail(
                &mut child,
                format!("no `listening on` line on stdout within {ready_timeout:?}"),
            )
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return fail(&mut child, "stdout closed before a ready line".into())
        }
    };
    let addr = line
        .strip_prefix("listening on http://")
        .map(|rest| (rest, "http"))
        .or_else(|| {
            line.strip_prefix("listening on https://")
                .map(|rest| (rest, "https"))
        })
        .and_then(|(rest, scheme)| Some((rest.parse::<SocketAddr>().ok()?, scheme)));
    match addr {
        Some((addr, scheme)) => Ok((child, addr, scheme)),
        None => fail(
            &mut child,
            format!("first stdout line is {line:?}, expected `listening on http(s)://IP:PORT`"),
        ),
    }
}

/// Sends the first stdout line to `ready`, and copies every line into the
/// log so later output neither blocks the child nor gets lost.
fn forward_stdout(stdout: impl Read, mut log: File, ready: mpsc::Sender<String>) {
    let mut ready = Some(ready);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(log, "[stdout] {line}");
        if let Some(ready) = ready.take() {
            let _ = ready.send(line);
        }
    }
}

/// A running `loghound-agent`.
pub struct Agent {
    server_url: String,
    token: String,
    state_dir: PathBuf,
    paths: Vec<String>,
    extra_args: Vec<String>,
    /// A command the agent is started through (its path and arguments
    /// follow), such as `unshare -U`; empty for none.
    wrapper: Vec<String>,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Starts an agent that tails `paths` (globs) and ships to `server_url`.
    pub fn start(
        server_url: &str,
        token: &str,
        state_dir: &Path,
        paths: &[impl AsRef<str>],
    ) -> Agent {
        Agent::start_with(server_url, token, state_dir, paths, &[] as &[&str])
    }

    /// Like [`Agent::start`], with extra command-line arguments such as
    /// `--batch-max-bytes 65536`.
    pub fn start_with(
        server_url: &str,
        token: &str,
        state_dir: &Path,
        paths: &[impl AsRef<str>],
        extra_args: &[impl AsRef<str>],
    ) -> Agent {
        Agent::start_wrapped(
            &[] as &[&str],
            server_url,
            token,
            state_dir,
            paths,
            extra_args,
        )
    }

    /// Like [`Agent::start_with`], run through `wrapper`: the agent's path
    /// and arguments are appended to it (e.g. `unshare -U -r sh -c SCRIPT`,
    /// where the script ends with `exec "$0" "$@"`). The process id is the
    /// agent's as long as the wrapper `exec`s it.
    pub fn start_wrapped(
        wrapper: &[impl AsRef<str>],
        server_url: &str,
        token: &str,
        state_dir: &Path,
        paths: &[impl AsRef<str>],
        extra_args: &[impl AsRef<str>],
    ) -> Agent {
        std::fs::create_dir_all(state_dir).expect("create the agent state directory");
        let mut agent = Agent {
            server_url: server_url.to_string(),
            token: token.to_string(),
            state_dir: state_dir.to_path_buf(),
            paths: paths.iter().map(|p| p.as_ref().to_string()).collect(),
            extra_args: extra_args.iter().map(|a| a.as_ref().to_string()).collect(),
            wrapper: wrapper.iter().map(|a| a.as_ref().to_string()).collect(),
            log_path: log_path_for(state_dir),
            child: None,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(agent_bin());
                command
            }
            None => Command::new(agent_bin()),
        };
        command
            .arg("--server")
            .arg(&self.server_url)
            .arg("--token")
            .arg(&self.token)
            .arg("--state-dir")
            .arg(&self.state_dir);
        for path in &self.paths {
            command.arg("--path").arg(path);
        }
        let child = command
            .args(&self.extra_args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(open_log(&self.log_path))
            .stderr(open_log(&self.log_path))
            .spawn()
            .unwrap_or_else(|error| panic!("cannot spawn loghound-agent: {error}"));
        self.child = Some(child);
    }

    /// Kills the agent with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            append_marker(&self.log_path, "killed with SIGKILL by the test");
        }
    }

    /// Starts the agent again with the same state directory and arguments,
    /// killing it first if it runs.
    pub fn restart(&mut self) {
        self.kill9();
        append_marker(&self.log_path, "restarting");
        self.spawn();
    }

    /// Sends SIGTERM and waits up to `timeout` for the agent to exit;
    /// returns its exit status. Panics (printing the log) if it does not
    /// exit in time.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.take().expect("agent is running");
        terminate("agent", child, &self.log_path, timeout)
    }

    /// Starts the agent again after it stopped (SIGTERM or SIGKILL), with
    /// the same state directory and arguments.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "agent is still running");
        append_marker(&self.log_path, "starting again");
        self.spawn();
    }

    /// Points later restarts at another server URL.
    pub fn set_server_url(&mut self, url: &str) {
        self.server_url = url.to_string();
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The stderr log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id; panics when the agent is not running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent is running").id()
    }

    /// Panics (printing the log) if the agent process has exited.
    pub fn assert_running(&mut self) {
        assert_running("agent", &mut self.child, &self.log_path);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        report_and_kill("agent", &mut self.child, &self.log_path);
    }
}

/// Runs `loghound-agent status --state-dir DIR`; its stdout. Panics when
/// the command fails.
pub fn agent_status(state_dir: &Path) -> String {
    let output = Command::new(agent_bin())
        .args(["status", "--state-dir"])
        .arg(state_dir)
        .output()
        .expect("run loghound-agent status");
    assert!(
        output.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("status prints UTF-8")
}

/// Creates a token with the given scopes (`ingest`, `read`, `admin`) with
/// `loghound token create` and returns it.
pub fn token(data_dir: &Path, scopes: &[&str]) -> String {
    let mut args = vec![
        "token".to_string(),
        "create".to_string(),
        "--data-dir".to_string(),
        data_dir.display().to_string(),
    ];
    for scope in scopes {
        args.push("--scope".to_string());
        args.push(scope.to_string());
    }
    let output = run_loghound(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "`loghound {}` failed with {}\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1 && !lines[0].trim().contains(char::is_whitespace),
        "`loghound token create` must print the token alone on one line, printed {stdout:?}"
    );
    lines[0].trim().to_string()
}

/// Runs `loghound ARGS…` to completion (bounded by a timeout) and returns
/// its output.
pub fn run_loghound(args: &[impl AsRef<std::ffi::OsStr>]) -> Output {
    let mut child = Command::new(loghound_bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loghound");
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll loghound") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`loghound` CLI did not finish within {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn log_path_for(dir: &Path) -> PathBuf {
    let name = dir.file_name().map_or_else(
        || "process".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    dir.with_file_name(format!("{name}.log"))
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|error| panic!("open log {}: {error}", path.display()))
}

fn append_marker(path: &Path, what: &str) {
    let _ = writeln!(open_log(path), "===== e2e harness: {what} =====");
}

/// The last lines of a log, framed for a failure report.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|error| format!("(cannot read: {error})"));
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    format!(
        "----- {} (last {} of {} lines) -----\n{}\n----- end of {} -----",
        path.display(),
        lines.len() - start,
        lines.len(),
        lines[start..].join("\n"),
        path.display()
    )
}

fn assert_running(name: &str, child: &mut Option<Child>, log_path: &Path) {
    let Some(process) = child.as_mut() else {
        panic!("{name} is not running (killed by the test and not restarted)");
    };
    if let Some(status) = process.try_wait().expect("poll child") {
        child.take();
        panic!(
            "{name} exited unexpectedly: {status}\n{}",
            log_tail(log_path)
        );
    }
}

/// Kills the child; if the test is failing, prints the child's log and
/// whether it had died on its own.
fn report_and_kill(name: &str, child: &mut Option<Child>, log_path: &Path) {
    let state = match child.as_mut().map(Child::try_wait) {
        None => "not running (killed by the test)".to_string(),
        Some(Ok(None)) => "still running".to_string(),
        Some(Ok(Some(status))) => format!("HAD EXITED ON ITS OWN: {status}"),
        Some(Err(error)) => format!("unknown ({error})"),
    };
    if let Some(mut process) = child.take() {
        let _ = process.kill();
        let _ = process.wait();
    }
    if std::thread::panicking() {
        eprintln!("\n{name} process was {state}\n{}", log_tail(log_path));
    }
}

/// The usual end-to-end setup: a server in `root/server`, an ingest and a
/// read token, and an agent in `root/agent` following `glob`.
pub struct Pipeline {
    /// The server.
    pub server: Server,
    /// The agent.
    pub agent: Agent,
    /// The server's base URL.
    pub url: String,
    /// A token with the `read` scope.
    pub read_token: String,
}

impl Pipeline {
    /// Starts the server, creates the tokens and starts the agent.
    pub fn start(root: &Path, glob: &str) -> Pipeline {
        Pipeline::start_with(root, glob, ServerOptions::default())
    }

    /// [`Pipeline::start`] with server options.
    pub fn start_with(root: &Path, glob: &str, options: ServerOptions) -> Pipeline {
        let server = Server::start_with(&root.join("server"), options);
        let ingest_token = token(server.data_dir(), &["ingest"]);
        let read_token = token(server.data_dir(), &["read"]);
        let url = server.url();
        let agent = Agent::start(&url, &ingest_token, &root.join("agent"), &[glob]);
        Pipeline {
            server,
            agent,
            url,
            read_token,
        }
    }
}

/// Sends SIGTERM to `child` and waits up to `timeout` for it to exit;
/// returns its exit status. Panics (printing the log) if it does not exit
/// in time.
fn terminate(what: &str, mut child: Child, log_path: &Path, timeout: Duration) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill -TERM");
    assert!(status.success(), "kill -TERM failed: {status}");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll the process") {
            append_marker(log_path, &format!("exited after SIGTERM: {status}"));
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not exit within {timeout:?} of SIGTERM\n{}",
                log_tail(log_path)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
