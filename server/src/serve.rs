//! `loghound serve`: recover from the data directory, then serve.
//!
//! Start-up order matters: the indexer thread starts first, the WAL is
//! replayed into it (streaming, so a large log never sits in memory), and
//! only then is the socket bound — a server that answers is a server that
//! has recovered everything it acknowledged.
//!
//! With `[tls]` every connection first goes through a rustls handshake,
//! bounded by `tls.handshake_timeout_ms`, and only then reaches hyper.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use loghound_shared::Limits;
use tokio::sync::watch;
use tracing::info;

use crate::config::ServerConfig;
use crate::http::{app, AppState, Tails};
use crate::index::indexer::{Indexer, IndexerConfig, IndexerMsg};
use crate::index::search::Searcher;
use crate::index::IndexSet;
use crate::ingest::checkpoint::{Checkpoint, Checkpoints};
use crate::ingest::queue::QueueBudget;
use crate::ingest::replay::Replay;
use crate::ingest::Ingest;
use crate::log::{Log, LogPosition};
use crate::sessions::Sessions;
use crate::tokens::TokenStore;
use crate::wal::Wal;

/// How long shutdown waits for open connections once live tails have been
/// told to end; a client that stopped reading could hold one forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (such as too many open files).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A server that has recovered its data directory and is ready to serve.
pub struct Recovered {
    /// The handlers' state.
    pub state: AppState,
    indexer_tx: crossbeam_channel::Sender<IndexerMsg>,
    indexer_thread: std::thread::JoinHandle<()>,
}

impl Recovered {
    /// Commits what is pending and stops the indexer. Blocking.
    pub fn shutdown(self) {
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let _ = self.indexer_tx.send(IndexerMsg::Shutdown(done_tx));
        let _ = done_rx.recv();
        drop(self.state);
        drop(self.indexer_tx);
        let _ = self.indexer_thread.join();
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let listen = config.listen;
    // A bad certificate or key stops the server before it touches its data.
    let tls = match &config.tls {
        Some(tls) => Some(Tls {
            acceptor: crate::tls::acceptor(tls)?,
            handshake_timeout: Duration::from_millis(tls.handshake_timeout_ms),
        }),
        None => None,
    };
    let config = Arc::new(config);
    let recovered = {
        let config = Arc::clone(&config);
        tokio::task::spawn_blocking(move || recover(&config)).await??
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    recovered
        .state
        .alerts
        .public_url
        .set(config.public_url(Some(address)));
    info!(%address, "loghound server ready");
    // Scripts and tests read this line to learn the address.
    println!("listening on {}://{address}", config.scheme());

    // One signal stops the HTTP server and the syslog listeners; the
    // listeners finish logging what they read before indexing stops.
    let (stop_tx, stop_rx) = watch::channel(false);
    let syslog = crate::syslog::start(&config.syslog, &recovered.state.ingest, &stop_rx).await?;
    let mut stopped = stop_rx.clone();
    let signal = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        stop_tx.send_replace(true);
    });
    serve_with(listener, recovered.state.clone(), tls, signal).await?;
    for listener in syslog {
        listener.join().await;
    }
    info!("finishing indexing");
    tokio::task::spawn_blocking(move || recovered.shutdown()).await?;
    Ok(())
}

/// Serves `state` on `listener` until `signal` completes, then shuts down
/// gracefully: live tails end at once (they never end on their own), other
/// requests finish, and connections still open after [`SHUTDOWN_GRACE`]
/// are abandoned.
///
/// Each connection must send a request's headers within
/// `state.header_read_timeout` of connecting or of its previous answer,
/// or it is closed: a client that trickles bytes, or sends none, cannot
/// hold a connection (request bodies have `body_idle_timeout`).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, None, signal).await
}

/// HTTPS for [`serve_with`].
#[derive(Clone)]
pub struct Tls {
    /// The server's certificate and key.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Longest time a connection may take to finish the handshake.
    pub handshake_timeout: Duration,
}

/// Marks requests that came over the server's own TLS, so that what
/// depends on it (the session cookie's `Secure`) knows.
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

/// [`serve_until`], over TLS when `tls` is given: each connection must
/// finish its handshake within `tls.handshake_timeout` or it is closed,
/// and the header read timeout starts after the handshake.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<Tls>,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tails = Arc::clone(&state.tails);
    let (stopping_tx, stopping_rx) = watch::channel(false);
    state.alerts.start(stopping_rx);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(state.header_read_timeout)
        .keep_alive(true);
    let router = match tls {
        Some(_) => app(state).layer(axum::Extension(ServedOverTls)),
        None => app(state),
    };
    let service = hyper_util::service::TowerToHyperService::new(router);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(signal);
    loop {
        let stream = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors and the like: wait for some to
                    // free up rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // Taken before the handshake, so shutdown also waits for (and
        // then ends) a connection that is still shaking hands.
        let watcher = graceful.watcher();
        let http = http.clone();
        let service = with_peer(service.clone(), stream.peer_addr().ok());
        match &tls {
            None => {
                tokio::spawn(serve_connection(http, service, watcher, stream));
            }
            Some(tls) => {
                let tls = tls.clone();
                tokio::spawn(async move {
                    let peer = stream.peer_addr().ok();
                    let handshake =
                        tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => serve_connection(http, service, watcher, stream).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, ?peer, "tls handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(?peer, "tls handshake timed out; connection closed");
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    tails.shutdown();
    stopping_tx.send_replace(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
            "connections still open after the shutdown grace period; closing them"
        );
    }
    Ok(())
}

/// A service that tells each request its connection's address
/// ([`crate::http::Peer`]).
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: Option<std::net::SocketAddr>,
}

fn with_peer<S>(inner: S, peer: Option<std::net::SocketAddr>) -> WithPeer<S> {
    WithPeer { inner, peer }
}

impl<S, B> hyper::service::Service<hyper::Request<B>> for WithPeer<S>
where
    S: hyper::service::Service<hyper::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: hyper::Request<B>) -> Self::Future {
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(crate::http::Peer(peer));
        }
        self.inner.call(request)
    }
}

/// Serves one connection (plain or after its TLS handshake) until it
/// ends or graceful shutdown ends it.
async fn serve_connection<I, S>(
    http: hyper::server::conn::http1::Builder,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Opens the data directory, replays the WAL into the indexer and returns
/// the state to serve from. Blocking.
pub fn recover(config: &ServerConfig) -> anyhow::Result<Recovered> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    drop(crate::meta::open(&data_dir).context("cannot open meta.sqlite")?);
    let limits = Limits::from(config.limits);

    let indexes = IndexSet::open(&data_dir.join("indexes"))?;
    let checkpoint = Checkpoint::load(&data_dir)?;
    let replay_from = LogPosition(checkpoint.indexed_through_seq + 1);
    let (wal, opened) = Wal::open(&data_dir.join("wal"), config.wal_segment_bytes, replay_from)?;
    let log: Arc<dyn Log> = wal;
    let state = Arc::new(std::sync::Mutex::new(checkpoint.dedup()));
    let checkpoints = Checkpoints::new(&data_dir, Arc::clone(&log), Arc::clone(&state));
    // The channel itself is unbounded: what it holds is bounded in bytes
    // by `queue`, which ingest and replay reserve before sending.
    let (indexer_tx, indexer_rx) = crossbeam_channel::unbounded();
    let queue = Arc::new(QueueBudget::new(config.index_queue_max_bytes));
    let (committed_tx, committed_rx) = watch::channel(checkpoint.indexed_through_seq);

    // The indexer runs during replay, so a large log streams through it
    // instead of sitting in memory.
    let indexer = Indexer::new(
        IndexerConfig {
            commit_interval: Duration::from_millis(config.commit_interval_ms),
            writer_heap_bytes: config.index_writer_heap_bytes,
            writer_threads: config.index_writer_threads,
            retention_days: config.retention_days,
        },
        Arc::clone(&indexes),
        Arc::clone(&log),
        checkpoints.clone(),
        committed_tx,
        Arc::clone(&queue),
    );
    let indexer_thread = std::thread::Builder::new()
        .name("indexer".into())
        .spawn(move || indexer.run(indexer_rx))?;

    let started = std::time::Instant::now();
    let replayed = Replay {
        limits: &limits,
        state: &state,
        checkpoints: &checkpoints,
        queue: &queue,
        indexer: &indexer_tx,
    }
    .run(log.as_ref(), replay_from)?;
    info!(
        records = replayed.read.records,
        bytes_truncated = opened.bytes_truncated + replayed.read.bytes_skipped,
        legacy_records = replayed.legacy_records,
        streams = state.lock().map_or(0, |s| s.num_streams()),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "write-ahead log replayed"
    );

    // Retention once at start, after replay (the indexer takes messages in
    // order), then hourly by the indexer itself.
    if config.retention_days.is_some() {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let today = crate::index::day_of_ms(crate::timeparse::now_ms());
        let _ = indexer_tx.send(IndexerMsg::Retention {
            today,
            done: done_tx,
        });
        if let Ok(report) = done_rx.recv() {
            info!(
                dropped = report.dropped.len(),
                deferred = report.deferred.len(),
                "retention applied"
            );
        }
    }

    let ingest = Arc::new(Ingest::new(limits, log, state, indexer_tx.clone(), queue));
    let searcher = Arc::new(Searcher::new(Arc::clone(&indexes)));
    let alerts = crate::alerts::Alerts::new(
        &data_dir,
        &config.alerts,
        crate::alerts::PublicUrl::new(config.public_url(None)),
        Arc::clone(&searcher),
        committed_rx.clone(),
    )
    .context("cannot open meta.sqlite")?;
    let state = AppState {
        ingest,
        searcher,
        tokens: TokenStore::new(&data_dir),
        max_body_bytes: limits.max_compressed_bytes,
        body_idle_timeout: Duration::from_millis(config.body_idle_timeout_ms),
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
        committed: committed_rx,
        tails: Arc::new(Tails::default()),
        alerts: Arc::new(alerts),
        sessions: Sessions::default(),
        elastic: config.elasticsearch.clone().map(Arc::new),
        otlp: config.otlp.clone().map(Arc::new),
    };
    Ok(Recovered {
        state,
        indexer_tx,
        indexer_thread,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    info!("shutting down");
}
