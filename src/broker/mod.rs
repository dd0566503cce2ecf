//! The link between the two contexts when they run as separate processes:
//! NATS JetStream behind the same [`Bus`] and [`EventSink`] traits as the
//! in-process bus.
//!
//! - One stream per publishing context, file storage: `ORDERDOCK_ECOMMERCE`
//!   (subjects `orderdock.ecommerce.>`) and `ORDERDOCK_FULFILLMENT`
//!   (`orderdock.fulfillment.>`); each event on `orderdock.<context>.<type>`
//!   as a CloudEvent ([`cloudevents`]), with `Nats-Msg-Id` = its event id so
//!   the broker drops a re-publish inside its duplicate window.
//! - Publishing (`JetStreamBus`) answers `Ok` only on the broker's PubAck:
//!   the sender's outbox row is deleted after that, never before; while the
//!   broker is away the dispatcher retries with backoff.
//! - Receiving ([`Consumer`]) is a durable pull consumer named after the
//!   receiving context, explicit ack: a message is acked only after the
//!   receiver's inbox commit. A redelivery (crash between commit and ack)
//!   finds the event id in the inbox and changes nothing.
//! - Streams and consumers are created idempotently at start by both sides.

pub mod cloudevents;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::actors::backoff;
use crate::events::bus::{BoxFuture, Bus, Delivery, DeliveryError, EventSink};
use crate::events::{ContextName, EventEnvelope};

/// How long events stay in a stream (7 days); consumers ack long before.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long the broker waits for an ack before redelivering (30 s).
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Messages a consumer may hold unacknowledged.
pub const ACK_PENDING_MAX: i64 = 20_000;
/// Lanes a consumer applies events on: events of one order always share a
/// lane, so they are applied in the order they were published.
pub const CONSUMER_LANES: usize = 64;
/// Messages queued per lane before the consumer stops pulling.
pub const LANE_QUEUE_MAX: usize = 1_024;
/// How long the broker waits before redelivering an event whose predecessor is not applied yet.
pub const NOT_READY_DELAY: Duration = Duration::from_millis(200);
/// Longest wait for a PubAck before the publish counts as failed (and is retried).
pub const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The stream a context publishes to.
pub fn stream_name(context: ContextName) -> &'static str {
    match context {
        ContextName::Ecommerce => "ORDERDOCK_ECOMMERCE",
        ContextName::Fulfillment => "ORDERDOCK_FULFILLMENT",
    }
}

/// The other context.
pub fn other(context: ContextName) -> ContextName {
    match context {
        ContextName::Ecommerce => ContextName::Fulfillment,
        ContextName::Fulfillment => ContextName::Ecommerce,
    }
}

/// How to reach the broker, and the fault hooks of the distributed tests.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `nats://host:port`.
    pub url: String,
    /// Test hook: abort the process right after the receiver's commit of the
    /// n-th event and before its ack, as a crash there would (`None` in
    /// production).
    pub abort_before_ack_after: Option<u64>,
}

/// Why the broker link could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The client could not be configured or connected.
    #[error("cannot connect to NATS at {url}: {cause}")]
    Connect {
        /// The address.
        url: String,
        /// Why.
        cause: String,
    },
    /// A stream or consumer could not be created or read.
    #[error("JetStream setup failed: {0}")]
    Setup(String),
}

/// A JetStream connection with both streams in place.
#[derive(Clone, Debug)]
pub struct Broker {
    context: jetstream::Context,
}

impl Broker {
    /// Connects (retrying while the server is away, for ever) and creates
    /// both streams if they do not exist.
    ///
    /// # Errors
    /// [`BrokerError`] when the address is unusable or the streams cannot be created.
    pub async fn connect(config: &BrokerConfig) -> Result<Broker, BrokerError> {
        let client = async_nats::ConnectOptions::new()
            .name("orderdock")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(config.url.as_str())
            .await
            .map_err(|err| BrokerError::Connect { url: config.url.clone(), cause: err.to_string() })?;
        let mut context = jetstream::new(client);
        context.set_timeout(PUBLISH_ACK_TIMEOUT);
        let broker = Broker { context };
        for publisher in [ContextName::Ecommerce, ContextName::Fulfillment] {
            broker.stream(publisher).await?;
        }
        Ok(broker)
    }

    async fn stream(&self, publisher: ContextName) -> Result<stream::Stream, BrokerError> {
        let config = stream::Config {
            name: stream_name(publisher).to_owned(),
            subjects: vec![format!("orderdock.{}.>", publisher.as_str())],
            storage: stream::StorageType::File,
            max_age: STREAM_MAX_AGE,
            description: Some(format!("Orderdock integration events published by {}", publisher.as_str())),
            ..stream::Config::default()
        };
        // Retried: right after a broker restart JetStream may not answer yet.
        let mut attempt = 0;
        loop {
            match self.context.get_or_create_stream(config.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(err) if attempt < 50 => {
                    tracing::debug!(cause = %err, stream = config.name, "stream not ready; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(err) => return Err(BrokerError::Setup(format!("stream {}: {err}", config.name))),
            }
        }
    }

    /// The bus a context publishes its events on.
    pub fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(JetStreamBus { context: self.context.clone() })
    }

    /// Starts delivering the other context's events to `receiver`'s inbox
    /// `sink`, through the durable consumer named after `receiver`.
    ///
    /// # Errors
    /// [`BrokerError::Setup`] when the consumer cannot be created.
    pub async fn consume(
        &self,
        receiver: ContextName,
        sink: Arc<dyn EventSink>,
        abort_before_ack_after: Option<u64>,
    ) -> Result<Consumer, BrokerError> {
        let stream = self.stream(other(receiver)).await?;
        let name = receiver.as_str().to_owned();
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("{} applies these events through its inbox", receiver.as_str())),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: ACK_PENDING_MAX,
            ..consumer::pull::Config::default()
        };
        let pull: consumer::PullConsumer = stream
            .get_or_create_consumer(&name, config)
            .await
            .map_err(|err| BrokerError::Setup(format!("consumer {name}: {err}")))?;
        let stats = Arc::new(ConsumerStats::default());
        let task = tokio::spawn(run_consumer(pull, sink, stats.clone(), abort_before_ack_after));
        Ok(Consumer { task, stats })
    }
}

/// Publishes envelopes to JetStream; `Ok` means the broker stored the event.
struct JetStreamBus {
    context: jetstream::Context,
}

impl Bus for JetStreamBus {
    fn publish(&self, envelope: EventEnvelope) -> BoxFuture<'_, Result<Delivery, DeliveryError>> {
        Box::pin(async move {
            let payload = cloudevents::encode(&envelope).map_err(|err| DeliveryError::Rejected(err.to_string()))?;
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(envelope.event_id.to_string());
            let unavailable = |err: &dyn std::fmt::Display| DeliveryError::Unavailable(format!("broker: {err}"));
            let ack = self
                .context
                .send_publish(cloudevents::subject(&envelope), message)
                .await
                .map_err(|err| unavailable(&err))?
                .await
                .map_err(|err| unavailable(&err))?;
            Ok(if ack.duplicate { Delivery::Duplicate } else { Delivery::Applied })
        })
    }
}

/// Counters of a consumer.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events applied by the receiver and acked.
    pub applied: AtomicU64,
    /// Redeliveries the receiver had already applied (acked, no effect).
    pub duplicates: AtomicU64,
    /// Messages that were not Orderdock events or that the receiver refused (terminated).
    pub refused: AtomicU64,
}

/// A running consumer; stops when dropped or stopped.
#[derive(Debug)]
pub struct Consumer {
    task: tokio::task::JoinHandle<()>,
    stats: Arc<ConsumerStats>,
}

impl Consumer {
    /// Its counters.
    pub fn stats(&self) -> &ConsumerStats {
        &self.stats
    }

    /// Stops pulling; messages not yet acked are redelivered to the next consumer.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lane_of(order: crate::events::OrderId) -> usize {
    let mut hasher = DefaultHasher::new();
    order.hash(&mut hasher);
    (hasher.finish() % CONSUMER_LANES as u64) as usize
}

/// A pulled message and what it decoded to (decoded once, by the puller).
type Pulled = (jetstream::Message, Result<EventEnvelope, cloudevents::DecodeError>);

/// Pulls for ever (reconnecting with backoff) and hands each message to the
/// lane of its order.
async fn run_consumer(
    pull: consumer::PullConsumer,
    sink: Arc<dyn EventSink>,
    stats: Arc<ConsumerStats>,
    abort_before_ack_after: Option<u64>,
) {
    let applied_total = Arc::new(AtomicU64::new(0));
    let lanes: Vec<tokio::sync::mpsc::Sender<Pulled>> = (0..CONSUMER_LANES)
        .map(|_| {
            let (sender, receiver) = tokio::sync::mpsc::channel(LANE_QUEUE_MAX);
            tokio::spawn(run_lane(
                receiver,
                sink.clone(),
                stats.clone(),
                applied_total.clone(),
                abort_before_ack_after,
            ));
            sender
        })
        .collect();
    let mut attempt = 0;
    loop {
        let mut messages = match pull.messages().await {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(cause = %err, "cannot pull from the broker; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        attempt = 0;
        while let Some(next) = messages.next().await {
            let message = match next {
                Ok(message) => message,
                Err(err) => {
                    tracing::debug!(cause = %err, "pull interrupted; resuming");
                    tokio::time::sleep(backoff(1)).await;
                    continue;
                }
            };
            // The order id is the CloudEvents subject; a message that does not
            // parse goes to lane 0, which terminates it.
            let decoded = cloudevents::decode(&message.payload);
            let lane = decoded.as_ref().map(|e| lane_of(e.order_id)).unwrap_or(0);
            if lanes[lane].send((message, decoded)).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(backoff(1)).await;
    }
}

/// Applies one lane's messages in order: deliver to the inbox (retrying in
/// place while the receiver is unavailable, so later events of the same
/// order wait), then ack.
async fn run_lane(
    mut receiver: tokio::sync::mpsc::Receiver<Pulled>,
    sink: Arc<dyn EventSink>,
    stats: Arc<ConsumerStats>,
    applied_total: Arc<AtomicU64>,
    abort_before_ack_after: Option<u64>,
) {
    while let Some((message, decoded)) = receiver.recv().await {
        let envelope = match decoded {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::error!(cause = %err, subject = %message.subject, "not an Orderdock event; terminated");
                stats.refused.fetch_add(1, Ordering::Relaxed);
                let _ = message.ack_with(jetstream::AckKind::Term).await;
                continue;
            }
        };
        let mut attempt = 0;
        let outcome = loop {
            match sink.deliver(envelope.clone()).await {
                Ok(outcome) => break Ok(Some(outcome)),
                Err(DeliveryError::NotReady(why)) => {
                    // An earlier event of this order is not applied yet (it may be
                    // redelivered behind this one): let the broker bring this one back.
                    tracing::debug!(event = %envelope.event_id, cause = why, "not ready; redelivered later");
                    let _ = message.ack_with(jetstream::AckKind::Nak(Some(NOT_READY_DELAY))).await;
                    break Err(());
                }
                Err(DeliveryError::Rejected(why)) => {
                    tracing::error!(event = %envelope.event_id, cause = why, "event refused by the receiver; terminated");
                    break Ok(None);
                }
                Err(DeliveryError::Unavailable(why)) => {
                    tracing::debug!(event = %envelope.event_id, cause = why, "receiver unavailable; retrying");
                    // Keep the broker from redelivering while we retry in place.
                    let _ = message.ack_with(jetstream::AckKind::Progress).await;
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        };
        let Ok(outcome) = outcome else { continue };
        let Some(outcome) = outcome else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            let _ = message.ack_with(jetstream::AckKind::Term).await;
            continue;
        };
        let counter = if outcome == Delivery::Duplicate { &stats.duplicates } else { &stats.applied };
        counter.fetch_add(1, Ordering::Relaxed);
        let applied = applied_total.fetch_add(1, Ordering::SeqCst) + 1;
        if abort_before_ack_after.is_some_and(|n| applied >= n) {
            tracing::error!(event = %envelope.event_id, "fault hook: aborting after the inbox commit, before the ack");
            std::process::abort();
        }
        // An ack that does not arrive is harmless: the redelivery is a duplicate.
        if let Err(err) = message.ack().await {
            tracing::debug!(cause = %err, event = %envelope.event_id, "ack failed; the broker will redeliver");
        }
    }
}
