//! Listeners over an in-memory log: what a peer sends reaches the indexer
//! once and in order, a full queue holds a TCP sender back instead of
//! dropping, and peers outside `allow` are refused.

use std::sync::Arc;
use std::time::Duration;

use loghound_shared::Limits;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::index::indexer::IndexerMsg;
use crate::ingest::queue::QueueBudget;
use crate::log::memory::MemoryLog;

struct Rig {
    rx: crossbeam_channel::Receiver<IndexerMsg>,
    queue: Arc<QueueBudget>,
    stop: watch::Sender<bool>,
    bound: Vec<Bound>,
}

async fn rig(extra: &str, protocol: &str) -> Rig {
    let (tx, rx) = crossbeam_channel::unbounded();
    let queue = Arc::new(QueueBudget::new(1 << 20));
    let ingest = Arc::new(Ingest::new(
        Limits::default(),
        Arc::new(MemoryLog::default()),
        Arc::default(),
        tx,
        Arc::clone(&queue),
    ));
    let text = format!(
        "[[syslog]]\nname = \"net\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"{protocol}\"\n{extra}"
    );
    let config: crate::config::ServerConfig = toml::from_str(&text).unwrap();
    config.validate().unwrap();
    let (stop, stopping) = watch::channel(false);
    let bound = start(&config.syslog, &ingest, &stopping).await.unwrap();
    Rig {
        rx,
        queue,
        stop,
        bound,
    }
}

impl Rig {
    /// The events handed to the indexer, waiting up to 10 s for `count`.
    async fn events(&self, count: usize) -> Vec<InEvent> {
        self.events_within(count, Duration::from_secs(10)).await
    }

    async fn events_within(&self, count: usize, wait: Duration) -> Vec<InEvent> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while events.len() < count && tokio::time::Instant::now() < deadline {
            match self.rx.try_recv() {
                Ok(IndexerMsg::Batch(batch)) => {
                    self.queue.release(batch.cost_bytes);
                    events.extend(batch.events.into_iter().map(|(_, e)| e));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        events
    }

    async fn stop(self) -> Vec<Arc<SyslogStats>> {
        self.stop.send_replace(true);
        let mut stats = Vec::new();
        for bound in self.bound {
            stats.push(Arc::clone(&bound.stats));
            bound.join().await;
        }
        stats
    }
}

fn messages(events: &[InEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

#[tokio::test]
async fn both_framings_reach_the_indexer_once_and_in_order() {
    let rig = rig("", "tcp").await;
    let address = rig.bound[0].address;
    let mut counted = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut lines = tokio::net::TcpStream::connect(address).await.unwrap();
    for i in 0..50 {
        let message = format!("<14>1 2026-12-04T10:00:00Z web-1 api - - - counted {i}");
        counted
            .write_all(format!("{} {message}", message.len()).as_bytes())
            .await
            .unwrap();
        lines
            .write_all(format!("<14>Dec  4 10:00:00 web-2 cron: line {i}\n").as_bytes())
            .await
            .unwrap();
    }
    drop((counted, lines));
    let events = rig.events(100).await;
    let of = |host: &str| -> Vec<&str> {
        events
            .iter()
            .filter(|e| e.host == host)
            .map(|e| e.message.as_str())
            .collect()
    };
    let expect = |what: &str| (0..50).map(|i| format!("{what} {i}")).collect::<Vec<_>>();
    assert_eq!(of("web-1"), expect("counted"));
    assert_eq!(of("web-2"), expect("line"));
    assert!(events
        .iter()
        .all(|e| e.source == "syslog/net/127.0.0.1" && e.severity.as_deref() == Some("info")));
    let stats = rig.stop().await;
    assert_eq!(stats[0].messages.load(Ordering::Relaxed), 100);
}

#[tokio::test]
async fn a_full_queue_holds_the_sender_back_and_drops_nothing() {
    let rig = rig("", "tcp").await;
    // The indexer's queue full: nothing can be logged.
    assert!(rig.queue.try_reserve(rig.queue.max_bytes()));
    let mut stream = tokio::net::TcpStream::connect(rig.bound[0].address)
        .await
        .unwrap();
    for i in 0..20 {
        stream
            .write_all(format!("<13>held {i}\n").as_bytes())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        rig.rx.try_recv().is_err(),
        "nothing is logged while the queue is full"
    );
    rig.queue.release(rig.queue.max_bytes());
    drop(stream);
    let events = rig.events(20).await;
    let expected: Vec<String> = (0..20).map(|i| format!("held {i}")).collect();
    assert_eq!(messages(&events), expected);
    let stats = rig.stop().await;
    assert_eq!(stats[0].dropped.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn peers_outside_allow_are_refused() {
    let rig = rig("allow = [\"10.0.0.0/8\", \"::1/128\"]", "tcp").await;
    let mut stream = tokio::net::TcpStream::connect(rig.bound[0].address)
        .await
        .unwrap();
    let _ = stream.write_all(b"<13>not from here\n").await;
    drop(stream);
    assert!(rig
        .events_within(1, Duration::from_millis(500))
        .await
        .is_empty());
    let stats = rig.stop().await;
    assert_eq!(stats[0].refused_peers.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn datagrams_are_messages_with_the_listeners_defaults() {
    let rig = rig(
        "default_host = \"switch-3\"\ndefault_app = \"netdev\"",
        "udp",
    )
    .await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..10 {
        socket
            .send_to(
                format!("<187>port {i} flapping\n").as_bytes(),
                rig.bound[0].address,
            )
            .await
            .unwrap();
    }
    let events = rig.events(10).await;
    let mut got: Vec<&str> = messages(&events);
    got.sort_unstable();
    let mut expected: Vec<String> = (0..10).map(|i| format!("port {i} flapping")).collect();
    expected.sort_unstable();
    assert_eq!(got, expected);
    for event in &events {
        assert_eq!(event.host, "switch-3");
        assert_eq!(event.tags["app"], "netdev");
        assert_eq!(event.severity.as_deref(), Some("err"));
        assert_eq!(event.fields["facility"], "local7");
    }
    rig.stop().await;
}
