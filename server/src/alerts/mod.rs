//! Saved searches and alert rules: the store in `meta.sqlite`, the engine
//! that evaluates rules over what the index has committed, and the outbox
//! that delivers notifications by email and webhook.
//!
//! - [`model`]: rules and channels, and the validation of rules and saved
//!   searches (whose shapes are `loghound_shared::api`'s);
//! - [`store`]: the tables, with one transaction per decision;
//! - [`engine`]: evaluation by arrival, with watermarks;
//! - [`notify`]: what a notification says in each format;
//! - [`deliver`]: the outbox worker, retries and attempt history.

pub mod deliver;
pub mod engine;
pub mod model;
pub mod notify;
pub mod store;

use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::config::AlertsConfig;
use crate::index::search::Searcher;

/// The alerting parts a server runs, shared with the API.
pub struct Alerts {
    /// Searches, rules, outbox.
    pub store: Arc<Store>,
    /// Evaluates rules.
    pub engine: Arc<engine::Engine>,
    /// Delivers notifications.
    pub outbox: Arc<deliver::Outbox>,
    /// Wakes the outbox when deliveries are queued.
    pub outbox_wake: Arc<Notify>,
    /// Whether email channels can be used.
    pub email_enabled: bool,
    /// Where notification links point.
    pub public_url: PublicUrl,
}

/// The URL notifications link to; known for sure only once the socket is
/// bound (the configured port may be 0), so it can be set after start.
#[derive(Debug, Clone, Default)]
pub struct PublicUrl(Arc<std::sync::RwLock<String>>);

impl PublicUrl {
    /// A URL that may change later.
    pub fn new(url: String) -> Self {
        PublicUrl(Arc::new(std::sync::RwLock::new(url)))
    }

    /// The current URL.
    pub fn get(&self) -> String {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the URL.
    pub fn set(&self, url: String) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = url;
    }
}

pub use store::Store;

impl Alerts {
    /// Opens the store and builds the engine and outbox (not started).
    pub fn new(
        data_dir: &std::path::Path,
        config: &AlertsConfig,
        public_url: PublicUrl,
        searcher: Arc<Searcher>,
        committed: watch::Receiver<u64>,
    ) -> rusqlite::Result<Alerts> {
        let store = Arc::new(Store::open(data_dir)?);
        let outbox_wake = Arc::new(Notify::new());
        let engine = engine::Engine::new(
            Arc::clone(&store),
            searcher,
            committed,
            Arc::clone(&outbox_wake),
            public_url.clone(),
        );
        let outbox =
            deliver::Outbox::new(Arc::clone(&store), config.clone(), Arc::clone(&outbox_wake));
        Ok(Alerts {
            store,
            engine,
            outbox,
            outbox_wake,
            email_enabled: config.smtp.is_some(),
            public_url,
        })
    }

    /// Starts evaluation and delivery on the current runtime; both stop when
    /// `shutdown` turns true.
    pub fn start(&self, shutdown: watch::Receiver<bool>) {
        tokio::spawn(Arc::clone(&self.engine).run(shutdown.clone()));
        tokio::spawn(Arc::clone(&self.outbox).run(shutdown));
    }
}
