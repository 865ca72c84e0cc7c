//! The byte bound on what waits for the indexer (`index_queue_max_bytes`).
//!
//! Ingest reserves the estimated memory of a batch's new events before it
//! appends the batch to the WAL, and answers 429 when the reservation does
//! not fit; WAL replay waits for room instead. The indexer gives the bytes
//! back only once the batch is committed, because until then it keeps the
//! events to add them again should a commit fail (disk full). So the
//! events between the WAL and the index never hold more than the bound,
//! whatever the load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::InEvent;

/// Bytes counted per event besides its strings: the `Event` itself, its
/// position in the batch and the vector slot.
const EVENT_OVERHEAD_BYTES: u64 = 160;

/// The estimated memory of accepted events while they wait for the index.
pub fn events_cost_bytes<'a>(events: impl IntoIterator<Item = &'a InEvent>) -> u64 {
    events
        .into_iter()
        .map(|event| {
            let tags: usize = event.tags.iter().map(|(k, v)| k.len() + v.len() + 48).sum();
            let strings = event.message.len()
                + event.host.len()
                + event.source.len()
                + event.stream.as_ref().map_or(0, |r| r.stream.as_str().len())
                + event.format.as_deref().map_or(0, str::len)
                + event.severity.as_deref().map_or(0, str::len)
                + event
                    .fields
                    .iter()
                    .map(|(k, v)| k.len() + json_cost(v))
                    .sum::<usize>()
                + tags;
            strings as u64 + EVENT_OVERHEAD_BYTES
        })
        .sum()
}

/// The estimated memory of a JSON value: its strings plus a slot per node.
fn json_cost(value: &serde_json::Value) -> usize {
    const NODE_BYTES: usize = 48;
    NODE_BYTES
        + match value {
            serde_json::Value::String(text) => text.len(),
            serde_json::Value::Array(items) => items.iter().map(json_cost).sum(),
            serde_json::Value::Object(members) => {
                members.iter().map(|(k, v)| k.len() + json_cost(v)).sum()
            }
            _ => 0,
        }
}

/// The shared counter of bytes held between the WAL and the index.
#[derive(Debug)]
pub struct QueueBudget {
    max_bytes: u64,
    used_bytes: Mutex<u64>,
    freed: Condvar,
    /// Batches waiting in [`QueueBudget::wait_for_room`] now.
    num_waiting: AtomicUsize,
}

impl QueueBudget {
    /// A budget of `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        QueueBudget {
            max_bytes,
            used_bytes: Mutex::new(0),
            freed: Condvar::new(),
            num_waiting: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        // A counter is consistent after any panic.
        self.used_bytes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bound.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes held now.
    pub fn used_bytes(&self) -> u64 {
        *self.lock()
    }

    /// Waits up to `patience` until `bytes` fit, as at most `max_waiting`
    /// callers at a time (the others are answered at once); returns whether
    /// they fit (without reserving them). A full queue empties at the
    /// indexer's next commit, usually well within a second: holding a batch
    /// that long keeps the indexer fed, where a refusal would leave it idle
    /// until the client's retry.
    pub fn wait_for_room(&self, bytes: u64, patience: Duration, max_waiting: usize) -> bool {
        if self.fits(self.used_bytes(), bytes) {
            return true;
        }
        if self.num_waiting.fetch_add(1, Ordering::Relaxed) >= max_waiting {
            self.num_waiting.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let deadline = Instant::now() + patience;
        let mut used = self.lock();
        while !self.fits(*used, bytes) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            used = self
                .freed
                .wait_timeout(used, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let room = self.fits(*used, bytes);
        drop(used);
        self.num_waiting.fetch_sub(1, Ordering::Relaxed);
        room
    }

    /// Whether `used + bytes` fits; an empty queue takes any one batch, so
    /// a batch larger than the bound is slow, never refused forever.
    fn fits(&self, used: u64, bytes: u64) -> bool {
        used == 0 || used.saturating_add(bytes) <= self.max_bytes
    }

    /// Reserves `bytes` if they fit now; returns whether they did.
    pub fn try_reserve(&self, bytes: u64) -> bool {
        let mut used = self.lock();
        if !self.fits(*used, bytes) {
            return false;
        }
        *used += bytes;
        true
    }

    /// Reserves `bytes`, waiting for the indexer to free room (replay).
    pub fn reserve_blocking(&self, bytes: u64) {
        let mut used = self.lock();
        while !self.fits(*used, bytes) {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += bytes;
    }

    /// Gives back `bytes` reserved earlier.
    pub fn release(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut used = self.lock();
        debug_assert!(*used >= bytes, "released more than reserved");
        *used = used.saturating_sub(bytes);
        drop(used);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn reservations_stop_at_the_bound_and_an_empty_queue_takes_anything() {
        let budget = QueueBudget::new(100);
        assert!(budget.try_reserve(60));
        assert!(budget.try_reserve(40));
        assert_eq!(budget.used_bytes(), 100);
        assert!(!budget.try_reserve(1));
        budget.release(100);
        assert_eq!(budget.used_bytes(), 0);
        assert!(budget.try_reserve(1_000), "one oversized batch when empty");
        assert!(!budget.try_reserve(1));
        budget.release(1_000);
        assert_eq!(budget.used_bytes(), 0);
    }

    #[test]
    fn blocking_reservation_waits_for_a_release() {
        let budget = Arc::new(QueueBudget::new(10));
        assert!(budget.try_reserve(10));
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.reserve_blocking(5))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "must wait while the queue is full");
        budget.release(10);
        waiter.join().unwrap();
        assert_eq!(budget.used_bytes(), 5);
    }

    #[test]
    fn a_full_queue_holds_a_few_batches_until_room_comes_or_patience_ends() {
        let budget = Arc::new(QueueBudget::new(10));
        assert!(budget.wait_for_room(10, Duration::ZERO, 0), "room: no wait");
        assert!(budget.try_reserve(6));
        assert!(budget.wait_for_room(4, Duration::ZERO, 0));
        // Nobody frees room: refused once patience runs out.
        assert!(!budget.wait_for_room(5, Duration::from_millis(30), 4));
        assert!(budget.try_reserve(4));
        // Room freed during the wait: admitted.
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.wait_for_room(8, Duration::from_secs(600), 1))
        };
        while budget.num_waiting.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // One waiter at most: the next is refused at once.
        assert!(!budget.wait_for_room(1, Duration::from_secs(600), 1));
        // Room, but not enough for it: still waiting.
        budget.release(4);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        budget.release(6);
        assert!(waiter.join().unwrap());
        assert_eq!(budget.num_waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn cost_counts_strings_and_overhead() {
        let event = InEvent::from(loghound_shared::Event {
            file_id: loghound_shared::FileId::new("f").unwrap(),
            offset: loghound_shared::ByteOffset(0),
            end_offset: loghound_shared::ByteOffset(6),
            host: "h".into(),
            source: "s".into(),
            message: "hello".into(),
            read_at_ms: None,
            tags: Default::default(),
            truncated: false,
            invalid_utf8: false,
            format: None,
            fields: Default::default(),
            severity: None,
            time_ms: None,
        });
        assert_eq!(events_cost_bytes([&event, &event]), 2 * (8 + 160));
    }
}
