//! The agent protocol's side of ingest: a zstd NDJSON batch from an agent
//! becomes a [`Submission`] whose events are keyed by the agent id, the
//! file id and their byte range.

use loghound_shared::api::IngestResponse;
use loghound_shared::{decode_batch, AgentId};

use super::{InEvent, Ingest, IngestError, Origin, Submission};

impl Ingest {
    /// Takes a compressed batch from `agent`: refused before decoding when
    /// the indexer queue is full, decoded under the protocol's limits and
    /// submitted; the batch is logged exactly as received. Returns the
    /// answer for the agent and the log position to wait for
    /// ([`Ingest::wait_durable`]) before giving it. Blocking.
    pub fn ingest(
        &self,
        agent: &AgentId,
        received_at_ms: i64,
        body: &[u8],
    ) -> Result<(IngestResponse, u64), IngestError> {
        self.admit()?;
        let events = decode_batch(body, self.limits())?;
        let receipt = self.submit(Submission {
            origin: Origin::Agent(agent.clone()),
            received_at_ms,
            events: events.into_iter().map(InEvent::from).collect(),
            agent_body: Some(body.to_vec()),
        })?;
        let response = IngestResponse {
            accepted: receipt.accepted,
            duplicates: receipt.duplicates,
        };
        Ok((response, receipt.durable_at.get()))
    }
}
