//! `GET /api/v1/tail`: live tail, newly committed lines that match a query,
//! as server-sent events.
//!
//! Each subscriber has a producer task and a bounded queue. The producer
//! wakes on every commit the indexer reports, pages through the matches
//! after its cursor (event ids grow with arrival) and queues them; the SSE
//! body drains the queue. A client that does not keep up is not buffered
//! for: when its queue stays full for `slow_client_grace` the producer
//! queues a last `dropped` event naming the id to resume after, and stops.
//! (A client catching up on a backlog fills its queue too, but keeps
//! freeing room, so it is never dropped.) Streams end when the server
//! shuts down, so graceful shutdown never waits on a tail.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use loghound_shared::api::{TailDropped, TAIL_EVENT_DROPPED, TAIL_EVENT_HIT};
use serde::Deserialize;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{debug, error, info};

use super::auth::RequireRead;
use super::extract::ApiQuery;
use super::{AppError, AppState};
use crate::index::search::{SearchError, Searcher};
use crate::index::tail::{last_id_of_seq, TailHit};

/// Bounds on live tails.
#[derive(Debug, Clone)]
pub struct TailLimits {
    /// Most tails open at once; more are answered 503.
    pub max_tails: usize,
    /// Events queued per subscriber, the final `dropped` event included.
    pub queue_events: usize,
    /// Bytes of event data queued per subscriber (one event always fits).
    pub queue_bytes: usize,
    /// Matches fetched per query.
    pub page_size: usize,
    /// Interval of keep-alive comments.
    pub keep_alive: Duration,
    /// How long a full queue may wait for room before the subscriber is
    /// dropped as too slow.
    pub slow_client_grace: Duration,
}

impl Default for TailLimits {
    fn default() -> Self {
        TailLimits {
            max_tails: 64,
            queue_events: 1000,
            queue_bytes: 8 << 20,
            page_size: 500,
            keep_alive: Duration::from_secs(15),
            slow_client_grace: Duration::from_secs(5),
        }
    }
}

/// The live tails of a server: limits, shutdown and gauges.
pub struct Tails {
    limits: TailLimits,
    shutdown: watch::Sender<bool>,
    num_active: AtomicUsize,
    num_queued_events: AtomicUsize,
    num_dropped_slow: AtomicU64,
}

impl Tails {
    /// No tails yet.
    pub fn new(limits: TailLimits) -> Self {
        Tails {
            limits: TailLimits {
                queue_events: limits.queue_events.max(2),
                page_size: limits.page_size.max(1),
                ..limits
            },
            shutdown: watch::channel(false).0,
            num_active: AtomicUsize::new(0),
            num_queued_events: AtomicUsize::new(0),
            num_dropped_slow: AtomicU64::new(0),
        }
    }

    /// Ends every tail, and refuses new ones, for server shutdown.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Tails open now.
    pub fn num_active(&self) -> usize {
        self.num_active.load(Ordering::Acquire)
    }

    /// Events queued for all subscribers together, not yet sent.
    pub fn num_queued_events(&self) -> usize {
        self.num_queued_events.load(Ordering::Acquire)
    }

    /// Subscribers dropped for reading too slowly, since start.
    pub fn num_dropped_slow(&self) -> u64 {
        self.num_dropped_slow.load(Ordering::Acquire)
    }

    /// The limits in force.
    pub fn limits(&self) -> &TailLimits {
        &self.limits
    }

    fn try_open(&self) -> bool {
        self.num_active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_tails).then_some(n + 1)
            })
            .is_ok()
    }
}

impl Default for Tails {
    fn default() -> Self {
        Tails::new(TailLimits::default())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TailParams {
    #[serde(default)]
    q: String,
    /// Resume after this event id (`Last-Event-ID` wins when both are set).
    after: Option<String>,
}

/// Where a tail starts: the `Last-Event-ID` header, which a reconnecting
/// `EventSource` sends and which is newer than the URL's `after`, else
/// `after`, else "now".
fn resume_after(headers: &HeaderMap, after: Option<&str>) -> Result<Option<u64>, AppError> {
    let header = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::bad_request("Last-Event-ID: not an event id"))
        })
        .transpose()?;
    let (name, text) = match (header, after) {
        (Some(text), _) if !text.trim().is_empty() => ("Last-Event-ID", text),
        (_, Some(text)) if !text.trim().is_empty() => ("after", text),
        _ => return Ok(None),
    };
    text.trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| AppError::bad_request(format!("{name}: not an event id: {text:?}")))
}

pub(super) async fn tail(
    _: RequireRead,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<TailParams>,
) -> Result<Response, AppError> {
    let after_opt = resume_after(&headers, params.after.as_deref())?;
    let query: Arc<str> = params.q.into();
    let searcher = Arc::clone(&state.searcher);
    let checked = Arc::clone(&query);
    tokio::task::spawn_blocking(move || searcher.check_query(&checked)).await??;

    let tails = Arc::clone(&state.tails);
    let shutdown = tails.shutdown.subscribe();
    if *shutdown.borrow() {
        return Err(
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
                .retry_after(1),
        );
    }
    if !tails.try_open() {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many live tails open (at most {}); retry later",
                tails.limits.max_tails
            ),
        )
        .retry_after(5));
    }
    let committed = state.committed.clone();
    let after_id = after_opt.unwrap_or_else(|| last_id_of_seq(*committed.borrow()));
    let (tx, rx) = mpsc::channel(tails.limits.queue_events);
    let queue = Arc::new(QueueState::default());
    let subscription = Subscription {
        rx,
        shutdown: shutdown.clone(),
        queue: Arc::clone(&queue),
        tails: Arc::clone(&tails),
    };
    let producer = Producer {
        searcher: Arc::clone(&state.searcher),
        query,
        cursor: after_id,
        committed,
        shutdown,
        tx,
        queue,
        tails: Arc::clone(&tails),
    };
    // Sent at once, so the client sees the answer and where it starts
    // without waiting for a match.
    producer.push(
        Event::default().comment(format!("tail after {after_id}")),
        0,
    );
    debug!(after_id, "live tail opened");
    tokio::spawn(producer.run());
    Ok(Sse::new(subscription.into_stream())
        .keep_alive(KeepAlive::new().interval(tails.limits.keep_alive))
        .into_response())
}

/// Why a producer stopped before its subscriber went away.
#[derive(Debug, thiserror::Error)]
enum ProducerError {
    /// The tail query failed.
    #[error(transparent)]
    Search(#[from] SearchError),
    /// The blocking task running it panicked.
    #[error("tail query task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a subscriber's two ends share besides the channel.
#[derive(Default)]
struct QueueState {
    /// Bytes of event data in the queue.
    bytes: AtomicUsize,
    /// Signalled when the stream takes an event (or goes away).
    room: Notify,
}

/// An event in a subscriber's queue, with the bytes it holds.
struct Queued {
    event: Event,
    bytes: usize,
}

/// Fills one subscriber's queue.
struct Producer {
    searcher: Arc<Searcher>,
    query: Arc<str>,
    /// Everything matching up to here has been queued.
    cursor: u64,
    committed: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    tx: mpsc::Sender<Queued>,
    queue: Arc<QueueState>,
    tails: Arc<Tails>,
}

impl Producer {
    async fn run(mut self) {
        loop {
            let through_id = last_id_of_seq(*self.committed.borrow_and_update());
            match self.queue_through(through_id).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    error!(%error, "live tail query failed; closing the stream");
                    return;
                }
            }
            tokio::select! {
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return; // the indexer is gone
                    }
                }
                _ = self.shutdown.wait_for(|stopping| *stopping) => return,
                () = self.tx.closed() => return,
            }
        }
    }

    /// Queues every match up to `through_id`; false when the stream ends.
    async fn queue_through(&mut self, through_id: u64) -> Result<bool, ProducerError> {
        let page_size = self.tails.limits.page_size;
        while self.cursor < through_id {
            let searcher = Arc::clone(&self.searcher);
            let query = Arc::clone(&self.query);
            let after_id = self.cursor;
            let page = tokio::task::spawn_blocking(move || {
                searcher.tail_page(&query, after_id, through_id, page_size)
            })
            .await??;
            let complete = page.len() < page_size;
            for TailHit { id, hit } in page {
                let data = match serde_json::to_string(&hit) {
                    Ok(data) => data,
                    Err(error) => {
                        error!(%error, id, "cannot serialize a hit");
                        continue;
                    }
                };
                if !self.wait_for_room(data.len()).await {
                    self.drop_slow_client();
                    return Ok(false);
                }
                let bytes = data.len();
                let event = Event::default()
                    .id(id.to_string())
                    .event(TAIL_EVENT_HIT)
                    .data(data);
                if !self.push(event, bytes) {
                    return Ok(false);
                }
                self.cursor = id;
            }
            if complete {
                // No match left at or below `through_id`: resume past it.
                self.cursor = through_id;
            }
        }
        Ok(true)
    }

    /// Waits up to the grace period for room for an event of `bytes`.
    async fn wait_for_room(&self, bytes: usize) -> bool {
        let deadline = tokio::time::Instant::now() + self.tails.limits.slow_client_grace;
        loop {
            if self.has_room_for(bytes) {
                return true;
            }
            // `notify_one` keeps a permit, so room made since the check is
            // not missed.
            let notified = self.queue.room.notified();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.has_room_for(bytes);
            }
        }
    }

    /// One slot is always kept for the final `dropped` event.
    fn has_room_for(&self, bytes: usize) -> bool {
        let queued_bytes = self.queue.bytes.load(Ordering::Acquire);
        self.tx.capacity() > 1
            && (queued_bytes == 0 || queued_bytes + bytes <= self.tails.limits.queue_bytes)
    }

    /// Queues an event; false when the subscriber is gone.
    fn push(&self, event: Event, bytes: usize) -> bool {
        // Count first: the stream may take the event before `try_send`
        // returns, and the gauges must never go below zero.
        self.queue.bytes.fetch_add(bytes, Ordering::AcqRel);
        self.tails.num_queued_events.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(Queued { event, bytes }) {
            Ok(()) => true,
            Err(_) => {
                self.queue.bytes.fetch_sub(bytes, Ordering::AcqRel);
                self.tails.num_queued_events.fetch_sub(1, Ordering::AcqRel);
                false
            }
        }
    }

    fn drop_slow_client(&self) {
        let dropped = TailDropped {
            reason: "client too slow".into(),
            last_id: self.cursor.to_string(),
        };
        let data = serde_json::to_string(&dropped).expect("two strings always serialize");
        let event = Event::default()
            .id(&dropped.last_id)
            .event(TAIL_EVENT_DROPPED)
            .data(data);
        // Only this task sends, and it kept a slot free.
        let _ = self.push(event, 0);
        self.tails.num_dropped_slow.fetch_add(1, Ordering::AcqRel);
        info!(last_id = %dropped.last_id, "live tail client too slow; dropped");
    }
}

/// One subscriber's end of the queue: the SSE body.
struct Subscription {
    rx: mpsc::Receiver<Queued>,
    shutdown: watch::Receiver<bool>,
    queue: Arc<QueueState>,
    tails: Arc<Tails>,
}

impl Subscription {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        futures_util::stream::unfold(self, |mut subscription| async move {
            let queued = tokio::select! {
                biased;
                _ = subscription.shutdown.wait_for(|stopping| *stopping) => None,
                queued = subscription.rx.recv() => queued,
            }?;
            subscription.release(&queued);
            Some((Ok(queued.event), subscription))
        })
    }

    fn release(&self, queued: &Queued) {
        self.queue.bytes.fetch_sub(queued.bytes, Ordering::AcqRel);
        self.tails.num_queued_events.fetch_sub(1, Ordering::AcqRel);
        self.queue.room.notify_one();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(queued) = self.rx.try_recv() {
            self.release(&queued);
        }
        self.tails.num_active.fetch_sub(1, Ordering::AcqRel);
        self.queue.room.notify_one();
        debug!("live tail closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(last_event_id: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(id) = last_event_id {
            headers.insert("last-event-id", id.parse().unwrap());
        }
        headers
    }

    #[test]
    fn last_event_id_wins_over_after() {
        assert_eq!(resume_after(&headers(None), None).unwrap(), None);
        assert_eq!(resume_after(&headers(None), Some("7")).unwrap(), Some(7));
        assert_eq!(
            resume_after(&headers(Some("9")), Some("7")).unwrap(),
            Some(9)
        );
        assert_eq!(
            resume_after(&headers(Some("")), Some("7")).unwrap(),
            Some(7)
        );
        assert!(resume_after(&headers(Some("x")), None).is_err());
        assert!(resume_after(&headers(None), Some("-1")).is_err());
    }

    #[test]
    fn open_tails_are_capped() {
        let tails = Tails::new(TailLimits {
            max_tails: 2,
            ..TailLimits::default()
        });
        assert!(tails.try_open());
        assert!(tails.try_open());
        assert!(!tails.try_open());
        assert_eq!(tails.num_active(), 2);
    }
}
