//! The outbox worker: sends pending deliveries, each in its own task so a
//! slow receiver holds only its own slot, records every attempt, and
//! retries with exponential backoff up to a limit.
//!
//! An attempt is recorded as `sending` before any byte leaves; if the
//! server dies before the outcome is written, the attempt is marked
//! `unknown` at the next start and the delivery is sent again with the same
//! delivery id, the only case in which a receiver sees it twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use tokio::sync::{watch, Notify, Semaphore};
use tracing::{info, warn};

use super::model::Channel;
use super::notify::{signature, Notification};
use super::store::{AttemptResult, PendingDelivery, Store};
use crate::config::{AlertsConfig, SmtpConfig, SmtpSecurity};
use crate::timeparse::now_ms;

/// Sends what the outbox holds.
pub struct Outbox {
    store: Arc<Store>,
    config: AlertsConfig,
    wake: Arc<Notify>,
    http: ureq::Agent,
    busy: Mutex<HashSet<i64>>,
}

/// What one attempt learned.
struct Sent {
    result: AttemptResult,
    /// Trying again cannot help (a 4xx other than 408/429, an SMTP 5xx).
    permanent: bool,
    /// The receiver asked for this wait (`Retry-After`).
    retry_after_ms: Option<u64>,
}

impl Outbox {
    /// A worker over `store`; `wake` is notified when deliveries are queued.
    pub fn new(store: Arc<Store>, config: AlertsConfig, wake: Arc<Notify>) -> Arc<Outbox> {
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_millis(config.delivery_timeout_ms)))
            .user_agent(concat!("loghound/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Arc::new(Outbox {
            store,
            config,
            wake,
            http,
            busy: Mutex::default(),
        })
    }

    /// Runs until `shutdown` turns true. Attempts in flight then are left
    /// to finish on their own threads; one cut short is `unknown` at the
    /// next start and retried.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.recover_in_flight(now_ms())).await {
            Ok(Ok(n)) if n > 0 => {
                warn!(
                    attempts = n,
                    "deliveries interrupted by a stop will be sent again"
                );
            }
            Ok(Err(error)) => warn!(%error, "cannot recover the outbox"),
            _ => {}
        }
        let slots = Arc::new(Semaphore::new(self.config.max_concurrent_deliveries));
        loop {
            if *shutdown.borrow() {
                return;
            }
            let free = slots.available_permits();
            let due = if free == 0 {
                Vec::new()
            } else {
                let this = Arc::clone(&self);
                let due = tokio::task::spawn_blocking(move || {
                    let busy = this.busy.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    this.store.due_deliveries(now_ms(), free, &busy)
                })
                .await;
                match due {
                    Ok(Ok(due)) => due,
                    Ok(Err(error)) => {
                        warn!(%error, "cannot read the outbox");
                        Vec::new()
                    }
                    Err(error) => {
                        warn!(%error, "outbox read panicked");
                        Vec::new()
                    }
                }
            };
            for delivery in due {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    break;
                };
                self.busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(delivery.row);
                let this = Arc::clone(&self);
                tokio::task::spawn_blocking(move || {
                    let row = delivery.row;
                    this.attempt(delivery);
                    this.busy
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&row);
                    drop(permit);
                    this.wake.notify_one();
                });
            }
            let store = Arc::clone(&self.store);
            let next_due = tokio::task::spawn_blocking(move || store.next_due_ms())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let wait = next_due.map_or(Duration::from_secs(1), |at| {
                Duration::from_millis(at.saturating_sub(now_ms()).clamp(10, 1000) as u64)
            });
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One attempt, recorded before and after. Blocking.
    fn attempt(&self, delivery: PendingDelivery) {
        let attempt = match self.store.begin_attempt(delivery.row, now_ms()) {
            Ok(attempt) => attempt,
            Err(error) => {
                warn!(%error, delivery = %delivery.delivery_id, "cannot record a delivery attempt");
                return;
            }
        };
        let sent = match &delivery.channel {
            Channel::Webhook {
                url,
                format,
                secret,
            } => self.send_webhook(
                url,
                *format,
                secret.as_deref(),
                &delivery.notification,
                &delivery.delivery_id,
            ),
            Channel::Email { to } => {
                self.send_email(to, &delivery.notification, &delivery.delivery_id)
            }
        };
        let attempts = delivery.attempts + 1;
        let retry_at =
            (!sent.result.delivered && !sent.permanent && attempts < self.config.max_attempts)
                .then(|| {
                    let backoff = self
                        .config
                        .retry_base_ms
                        .saturating_mul(1u64 << (attempts - 1).min(30))
                        .min(self.config.retry_max_ms);
                    let wait = sent.retry_after_ms.map_or(backoff, |asked| {
                        asked.clamp(backoff, self.config.retry_max_ms)
                    });
                    now_ms().saturating_add(wait as i64)
                });
        if sent.result.delivered {
            info!(delivery = %delivery.delivery_id, rule = delivery.notification.rule_id,
                channel = %delivery.channel.describe_for_log(), "notification delivered");
        } else {
            warn!(delivery = %delivery.delivery_id, rule = delivery.notification.rule_id,
                attempt = attempts, error = sent.result.error.as_deref().unwrap_or(""),
                retrying = retry_at.is_some(), "notification not delivered");
        }
        if let Err(error) = self
            .store
            .finish_attempt(delivery.row, attempt, &sent.result, retry_at)
        {
            warn!(%error, delivery = %delivery.delivery_id, "cannot record a delivery outcome");
        }
    }

    fn send_webhook(
        &self,
        url: &str,
        format: super::model::WebhookFormat,
        secret: Option<&str>,
        notification: &Notification,
        delivery_id: &str,
    ) -> Sent {
        let (body, content_type) = notification.webhook_body(format, delivery_id);
        let mut request = self
            .http
            .post(url)
            .header("Content-Type", content_type)
            .header("X-Loghound-Delivery", delivery_id)
            .header("X-Loghound-Event", notification.event.name());
        if let Some(secret) = secret {
            request = request.header("X-Loghound-Signature", &signature(secret, &body));
        }
        match request.send(&body[..]) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after_ms = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|secs| secs.saturating_mul(1000));
                let delivered = (200..300).contains(&status);
                let error = (!delivered).then(|| {
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(4096)
                        .read_to_string()
                        .unwrap_or_default();
                    let text: String = text.chars().take(200).collect();
                    format!("receiver answered {status}: {}", text.trim())
                });
                Sent {
                    result: AttemptResult {
                        delivered,
                        status_code: Some(status),
                        error,
                    },
                    permanent: (400..500).contains(&status) && status != 408 && status != 429,
                    retry_after_ms,
                }
            }
            Err(error) => Sent {
                result: AttemptResult {
                    delivered: false,
                    status_code: None,
                    error: Some(format!("cannot reach {url}: {error}")),
                },
                permanent: false,
                retry_after_ms: None,
            },
        }
    }

    fn send_email(&self, to: &[String], notification: &Notification, delivery_id: &str) -> Sent {
        let failed = |error: String, permanent: bool, code: Option<u16>| Sent {
            result: AttemptResult {
                delivered: false,
                status_code: code,
                error: Some(error),
            },
            permanent,
            retry_after_ms: None,
        };
        let Some(smtp) = &self.config.smtp else {
            return failed(
                "no SMTP relay is configured ([alerts.smtp] in server.toml)".into(),
                true,
                None,
            );
        };
        let message = match build_email(smtp, to, notification, delivery_id) {
            Ok(message) => message,
            Err(error) => return failed(error, true, None),
        };
        let transport = match smtp_transport(smtp, self.config.delivery_timeout_ms) {
            Ok(transport) => transport,
            Err(error) => return failed(error, false, None),
        };
        match transport.send(&message) {
            Ok(response) => Sent {
                result: AttemptResult {
                    delivered: true,
                    status_code: response.code().to_string().parse().ok(),
                    error: None,
                },
                permanent: false,
                retry_after_ms: None,
            },
            Err(error) => {
                let code = error.status().and_then(|c| c.to_string().parse().ok());
                failed(
                    format!("SMTP relay {}:{}: {error}", smtp.host, smtp.port()),
                    error.is_permanent(),
                    code,
                )
            }
        }
    }
}

fn build_email(
    smtp: &SmtpConfig,
    to: &[String],
    notification: &Notification,
    delivery_id: &str,
) -> Result<Message, String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("invalid sender {:?}: {e}", smtp.from))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(notification.email_subject())
        .message_id(Some(format!("<{delivery_id}@loghound>")))
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        let mailbox: Mailbox = address
            .parse()
            .map_err(|e| format!("invalid recipient {address:?}: {e}"))?;
        builder = builder.to(mailbox);
    }
    builder
        .body(notification.email_body())
        .map_err(|e| format!("cannot build the email: {e}"))
}

fn smtp_transport(smtp: &SmtpConfig, timeout_ms: u64) -> Result<SmtpTransport, String> {
    let builder = match smtp.security {
        SmtpSecurity::None => SmtpTransport::builder_dangerous(&smtp.host),
        SmtpSecurity::Starttls => SmtpTransport::starttls_relay(&smtp.host)
            .map_err(|e| format!("SMTP relay {}: {e}", smtp.host))?,
        SmtpSecurity::Tls => SmtpTransport::relay(&smtp.host)
            .map_err(|e| format!("SMTP relay {}: {e}", smtp.host))?,
    };
    let mut builder = builder
        .port(smtp.port())
        .timeout(Some(Duration::from_millis(timeout_ms)));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}
