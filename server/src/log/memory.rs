//! A log in memory, durable as soon as appended: for tests of what sits
//! on top of the [`Log`] trait.

use std::sync::Mutex;

use super::{BodyFormat, DurableFuture, Log, LogError, LogPosition, LogRecord, ReadReport};

/// Records in a vector; every position counts as durable.
#[derive(Debug, Default)]
pub struct MemoryLog {
    records: Mutex<Vec<LogRecord>>,
}

impl MemoryLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LogRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Log for MemoryLog {
    fn append(
        &self,
        received_at_ms: i64,
        origin: &str,
        body: &[u8],
    ) -> Result<LogPosition, LogError> {
        let mut records = self.lock();
        let position = LogPosition(records.len() as u64 + 1);
        records.push(LogRecord {
            position,
            received_at_ms,
            origin: origin.to_string(),
            format: BodyFormat::Ingest,
            body: body.to_vec(),
        });
        Ok(position)
    }

    fn last_appended(&self) -> LogPosition {
        LogPosition(self.lock().len() as u64)
    }

    fn wait_durable(&self, _position: LogPosition) -> DurableFuture<'_> {
        Box::pin(std::future::ready(()))
    }

    fn wait_durable_blocking(&self, _position: LogPosition) {}

    fn read_from(
        &self,
        from: LogPosition,
        each: &mut dyn FnMut(LogRecord),
    ) -> Result<ReadReport, LogError> {
        let records: Vec<LogRecord> = self
            .lock()
            .iter()
            .filter(|r| r.position >= from)
            .cloned()
            .collect();
        let mut report = ReadReport::default();
        for record in records {
            report.records += 1;
            each(record);
        }
        Ok(report)
    }

    fn release_through(&self, _through: LogPosition) -> Result<usize, LogError> {
        Ok(0)
    }
}
