//! Replay threads: deliver the spool's batches, oldest first, once a
//! server answers again.
//!
//! Each of `max_in_flight` threads claims the oldest record not yet handed
//! out, sends it with the shared [`Client`] until it is settled (retrying
//! with a backoff capped at [`REPLAY_BACKOFF_CAP`], so a returning server
//! is noticed within seconds, and cut short for every thread once one of
//! them gets an answer; `Retry-After` honoured; refused batches split
//! as for live batches) and reports it done, which lets the spool delete a
//! segment once every record in it is done. A record that can no longer be
//! read back (the disk changed it since it was written) is reported with
//! its segment and position.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::Spool;
use crate::pipeline::batcher::Batch;
use crate::pipeline::checkpoints::{BatchSeq, Position};
use crate::pipeline::shipper::{Client, Outcome, Patience};

/// The longest pause between two tries of a spooled batch.
pub(crate) const REPLAY_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How long an idle replay thread waits for a record before looking again.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// Starts `num_threads` replay threads; they run as long as the process.
pub(crate) fn start(spool: Arc<Spool>, client: Arc<Client>, num_threads: usize) {
    for index in 0..num_threads {
        let (spool, client) = (spool.clone(), client.clone());
        let spawned = thread::Builder::new()
            .name(format!("replay-{index}"))
            .spawn(move || replay_loop(&spool, &client));
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a replay thread");
        }
    }
}

fn replay_loop(spool: &Spool, client: &Client) {
    let patience = Patience::forever(REPLAY_BACKOFF_CAP);
    loop {
        let Some(claim) = spool.claim(IDLE_WAIT) else {
            continue;
        };
        match spool.read(&claim) {
            Ok((header, body)) => {
                let batch = Batch {
                    // Only for log messages: spooled batches have no place
                    // in the checkpoints' queues any more.
                    seq: BatchSeq(0),
                    body,
                    num_events: header.num_events,
                    stream_ends: header
                        .streams
                        .into_iter()
                        .map(|(id, offset)| {
                            (
                                id,
                                Position {
                                    offset,
                                    cursor: None,
                                },
                            )
                        })
                        .collect(),
                };
                match client.deliver(&batch, patience) {
                    Outcome::Acked(answer) => tracing::debug!(
                        num_events = batch.num_events,
                        accepted = answer.accepted,
                        duplicates = answer.duplicates,
                        "spooled batch delivered"
                    ),
                    Outcome::Rejected { status, error } => {
                        tracing::error!(status, %error, num_events = batch.num_events, "server refused a spooled batch")
                    }
                    Outcome::Unreachable => {
                        debug_assert!(false, "replay retries until settled")
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, ?claim, "spooled batch cannot be read back; its lines are lost");
            }
        }
        spool.done(&claim);
    }
}
