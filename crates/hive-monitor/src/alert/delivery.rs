//! Delivery: a [`Channel`] wraps a [`Notifier`] in a bounded queue, a rate limit, an attempt
//! timeout, our own [`RetryLayer`] and a [`CircuitBreakerLayer`], on a task of its own.
//!
//! ```text
//! dispatcher ──try_send──► queue (bounded) ──► worker: Retry ─► CircuitBreaker ─► timeout ─► notifier
//!     │ full, or over the rate limit: dropped and counted (hive_alerts_dropped_total)
//! ```
//!
//! Nothing here can slow a model call: the dispatcher never waits for a channel, and a
//! channel never waits for anything but its own receiver.

use std::{
    collections::BTreeMap,
    fmt,
    future::{Future, poll_fn},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use hive_breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{
    BoxError, Classified, Classify, EventSink, FailureClass, FailureClassSet, ModelId, Outcome,
    Rejected, ResilienceEvent,
};
use hive_retry::{Jitter, Retry, RetryConfig, RetryLayer};
use serde::Serialize;
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};
use tower_layer::Layer;
use tower_service::Service;

use crate::alert::{
    channel::Notifier,
    error::{AlertError, DeliveryError},
    types::{Notification, Subject},
};

/// At most `max` notifications per `per` to one channel (a token bucket that starts full
/// and refills one token every `per / max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Notifications allowed per period (the burst), at least 1.
    pub max: u32,
    /// The period, above zero.
    pub per: Duration,
}

/// A channel: a [`Notifier`] and how notifications reach it. Build one from any notifier
/// (`Channel::from(SlackChannel::new(url)?)`) and change the defaults as needed:
///
/// | setting | default |
/// |---|---|
/// | [`queue`](Self::queue) | 64 notifications; beyond, dropped and counted |
/// | [`rate_limit`](Self::rate_limit) | 20 per minute; beyond, dropped, counted, and sent again at the group's next flush |
/// | [`attempt_timeout`](Self::attempt_timeout) | 10 s per attempt |
/// | [`retry`](Self::retry) | 4 attempts (the first included), backoff from 1 s doubling to 30 s with full jitter; a receiver's `Retry-After` honoured up to 60 s |
/// | [`breaker`](Self::breaker) | opens after 3 failed attempts in a row, for 30 s doubling to 5 min |
///
/// Permanent refusals (HTTP 4xx other than 408/429, SMTP 5xx) are not retried. A
/// notification whose attempts all failed, or that the open breaker refused, is dropped
/// with an error log line and counted in `hive_alerts_failed_total`.
pub struct Channel {
    notifier: Arc<dyn Notifier>,
    queue: usize,
    rate_limit: Option<RateLimit>,
    attempt_timeout: Duration,
    max_attempts: u32,
    backoff: (Duration, Duration),
    jitter: Jitter,
    breaker_failures: u32,
    breaker_open: Duration,
}

impl<N: Notifier> From<N> for Channel {
    fn from(notifier: N) -> Self {
        Self::new(notifier)
    }
}

impl Channel {
    /// A channel to `notifier` with the defaults above.
    pub fn new(notifier: impl Notifier) -> Self {
        Self {
            notifier: Arc::new(notifier),
            queue: 64,
            rate_limit: Some(RateLimit {
                max: 20,
                per: Duration::from_secs(60),
            }),
            attempt_timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff: (Duration::from_secs(1), Duration::from_secs(30)),
            jitter: Jitter::Full,
            breaker_failures: 3,
            breaker_open: Duration::from_secs(30),
        }
    }

    /// Notifications waiting for the channel (at least 1); beyond, new ones are dropped and
    /// counted.
    #[must_use]
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// At most `max` notifications per `per`; `None` for no limit.
    #[must_use]
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// The longest time one attempt may take.
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Attempts per notification, **the first included** (1 never retries), and the
    /// exponential backoff between them, from `base` doubling to `max`.
    #[must_use]
    pub fn retry(mut self, max_attempts: u32, base: Duration, max: Duration) -> Self {
        self.max_attempts = max_attempts;
        self.backoff = (base, max);
        self
    }

    /// How the backoff is randomised. Default [`Jitter::Full`]; [`Jitter::None`] gives
    /// exact delays (tests).
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The channel's breaker opens after `consecutive_failures` failed attempts in a row,
    /// for `open_for` at first, doubling on each reopening up to 5 minutes (or `open_for`,
    /// if longer).
    #[must_use]
    pub fn breaker(mut self, consecutive_failures: u32, open_for: Duration) -> Self {
        self.breaker_failures = consecutive_failures;
        self.breaker_open = open_for;
        self
    }

    /// The notifier.
    pub fn notifier(&self) -> &dyn Notifier {
        &*self.notifier
    }

    /// Checks the settings and starts the channel's worker.
    pub(crate) fn start(
        self,
        name: &str,
        claims: Option<Claims>,
    ) -> Result<(Outbox, JoinHandle<()>), AlertError> {
        if self.queue == 0 {
            return Err(AlertError::invalid("channel.queue", "must be 1 or more"));
        }
        if let Some(limit) = self.rate_limit
            && (limit.max == 0 || limit.per.is_zero())
        {
            return Err(AlertError::invalid(
                "channel.rate_limit",
                "max and per must be above zero",
            ));
        }
        if self.attempt_timeout.is_zero() {
            return Err(AlertError::invalid(
                "channel.attempt_timeout",
                "must be above zero",
            ));
        }
        if self.breaker_failures == 0 {
            return Err(AlertError::invalid(
                "channel.breaker",
                "consecutive_failures must be 1 or more",
            ));
        }
        let id = ModelId::new(format!("alert-channel:{name}"));
        let breaker = CircuitBreakerConfig::builder()
            .model(id)
            .consecutive_failures(Some(self.breaker_failures))
            .growing_open_duration(
                self.breaker_open,
                2.0,
                self.breaker_open.max(Duration::from_secs(300)),
            )
            .events(breaker_log(name))
            .build()
            .map_err(|e| AlertError::invalid("channel.breaker", e.to_string()))?;
        let (breaker_layer, handle) = CircuitBreakerLayer::shared(breaker);
        let retry = RetryConfig::builder()
            .model(id)
            .max_attempts(self.max_attempts)
            .backoff(self.backoff.0, self.backoff.1)
            .jitter(self.jitter)
            .retry_after(true, Duration::from_secs(60))
            .retry_on(FailureClassSet::ALL)
            .retry_only_while(handle)
            .build()
            .map_err(|e| AlertError::invalid("channel.retry", e.to_string()))?;
        let counters = Arc::new(Counters::default());
        let attempt = Attempt {
            notifier: Arc::clone(&self.notifier),
            timeout: self.attempt_timeout,
            counters: Arc::clone(&counters),
            channel: name.to_owned(),
        };
        let stack = RetryLayer::new(retry)
            .with_classifier(Classifier)
            .layer(breaker_layer.with_classifier(Classifier).layer(attempt));
        let (sender, receiver) = mpsc::channel(self.queue);
        let worker = tokio::spawn(work(
            name.to_owned(),
            receiver,
            stack,
            Arc::clone(&counters),
            claims,
        ));
        Ok((
            Outbox {
                name: name.to_owned(),
                sender,
                bucket: self.rate_limit.map(Bucket::new),
                counters,
            },
            worker,
        ))
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("notifier", &self.notifier)
            .field("queue", &self.queue)
            .field("rate_limit", &self.rate_limit)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_open", &self.breaker_open)
            .finish()
    }
}

/// Logs the channel breaker's transitions (the only events it emits that matter here).
fn breaker_log(name: &str) -> EventSink {
    let name = name.to_owned();
    EventSink::from_fn(move |event| {
        if let ResilienceEvent::CircuitTransition { from, to, .. } = event {
            tracing::warn!(channel = %name, %from, %to, "alert channel circuit breaker changed state");
        }
    })
}

/// Classifies deliveries for the channel's retry layer and breaker.
#[derive(Clone, Copy, Debug)]
struct Classifier;

impl Classify<(), BoxError> for Classifier {
    fn classify(&self, result: &Result<(), BoxError>) -> Classified {
        Classified::Now(classify(result))
    }
}

/// A delivery's outcome: permanent refusals are client errors (not retried, and the
/// receiver is up), the rest failures of the matching class.
fn classify(result: &Result<(), BoxError>) -> Outcome {
    let Err(error) = result else {
        return Outcome::Success;
    };
    if let Some(rejected) = error.downcast_ref::<Rejected>() {
        return Outcome::Rejected(rejected.reason);
    }
    let Some(error) = error.downcast_ref::<DeliveryError>() else {
        return Outcome::failure(FailureClass::Unavailable);
    };
    if error.is_permanent() {
        return Outcome::ClientError(hive_core::ClientErrorClass::BadRequest);
    }
    let class = match error {
        DeliveryError::Timeout(_) => FailureClass::Timeout,
        DeliveryError::Connect { .. } => FailureClass::Connect,
        DeliveryError::Status { status: 429, .. } => FailureClass::RateLimited,
        _ => FailureClass::Unavailable,
    };
    Outcome::Failure {
        class,
        retry_after: error.retry_after(),
    }
}

/// What one channel did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChannelStats {
    /// Notifications delivered.
    pub sent: u64,
    /// Notifications given up on after their attempts (or refused by the open breaker).
    pub failed: u64,
    /// Notifications never handed to the channel: its queue was full, or it was over its
    /// rate limit.
    pub dropped: u64,
    /// Attempts that reached the notifier.
    pub attempts: u64,
    /// Notifications not sent here because another replica of the cluster sent them.
    pub deduplicated: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    attempts: AtomicU64,
    deduplicated: AtomicU64,
}

impl Counters {
    pub(crate) fn stats(&self) -> ChannelStats {
        ChannelStats {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            deduplicated: self.deduplicated.load(Ordering::Relaxed),
        }
    }
}

/// A token bucket: `credit` is time saved up, each notification costs `cost`.
#[derive(Debug)]
struct Bucket {
    cost: Duration,
    capacity: Duration,
    credit: Duration,
    at: Option<Instant>,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            cost: limit.per / limit.max,
            capacity: limit.per,
            credit: limit.per,
            at: None,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            self.credit = (self.credit + now.saturating_duration_since(at)).min(self.capacity);
        }
        self.at = Some(now);
        if self.credit >= self.cost {
            self.credit -= self.cost;
            true
        } else {
            false
        }
    }
}

/// The dispatcher's end of a channel: a bounded queue and the rate limit.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) name: String,
    sender: mpsc::Sender<Arc<Notification>>,
    bucket: Option<Bucket>,
    pub(crate) counters: Arc<Counters>,
}

impl Outbox {
    /// Hands `notification` to the channel without waiting; `false` when it was dropped
    /// (over the rate limit, or the queue full), counted and logged.
    pub(crate) fn offer(&mut self, notification: Notification, now: Instant) -> bool {
        let notification = Arc::new(notification);
        let why = if self.bucket.as_mut().is_some_and(|b| !b.take(now)) {
            "over the channel's rate limit; sent again at the group's next flush"
        } else {
            match self.sender.try_send(Arc::clone(&notification)) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(_)) => "the channel's queue is full",
                Err(mpsc::error::TrySendError::Closed(_)) => "the channel has stopped",
            }
        };
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("hive_alerts_dropped_total", "channel" => self.name.clone()).increment(1);
        tracing::warn!(
            channel = %self.name,
            rule = %notification.group,
            notification = %notification.id,
            "alert notification dropped: {why}"
        );
        false
    }
}

/// One attempt: the notifier under the attempt timeout.
#[derive(Clone)]
struct Attempt {
    notifier: Arc<dyn Notifier>,
    timeout: Duration,
    counters: Arc<Counters>,
    channel: String,
}

impl Service<Arc<Notification>> for Attempt {
    type Response = ();
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, notification: Arc<Notification>) -> Self::Future {
        let attempt = self.counters.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let notifier = Arc::clone(&self.notifier);
        let timeout = self.timeout;
        let channel = self.channel.clone();
        Box::pin(async move {
            let result = match tokio::time::timeout(timeout, notifier.deliver(&notification)).await
            {
                Ok(result) => result,
                Err(_) => Err(DeliveryError::Timeout(timeout)),
            };
            result.map_err(|error| {
                tracing::warn!(
                    %channel,
                    kind = notifier.kind(),
                    notification = %notification.id,
                    attempt,
                    %error,
                    "alert delivery attempt failed"
                );
                Box::new(error) as BoxError
            })
        })
    }
}

type Stack = Retry<CircuitBreaker<Attempt, Classifier>, Classifier>;

/// The channel's task: delivers queued notifications one at a time, until the queue closes.
async fn work(
    name: String,
    mut queue: mpsc::Receiver<Arc<Notification>>,
    stack: Stack,
    counters: Arc<Counters>,
    claims: Option<Claims>,
) {
    while let Some(notification) = queue.recv().await {
        // Alerts about this replica itself (its config, its link to the cluster) are its own
        // to send; the others are claimed, and only the replica that wins sends them.
        let claim = claims
            .as_ref()
            .filter(|_| {
                notification
                    .alerts
                    .iter()
                    .any(|a| !matches!(a.subject, Subject::Config | Subject::Cluster))
            })
            .map(|claims| (claims, claim_key(&notification)));
        if let Some((claims, key)) = &claim
            && !claims.gate.claim(key.clone(), claims.ttl).await
        {
            counters.deduplicated.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                channel = %name,
                rule = %notification.group,
                "alert notification sent by another replica of the cluster"
            );
            continue;
        }
        let before = counters.attempts.load(Ordering::Relaxed);
        let mut service = stack.clone();
        let result = match poll_fn(|cx| service.poll_ready(cx)).await {
            Ok(()) => service.call(Arc::clone(&notification)).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(
                    "hive_alerts_sent_total",
                    "channel" => name.clone(),
                    "rule" => notification.group.clone()
                )
                .increment(1);
            }
            Err(error) => {
                // Not delivered here: another replica may try.
                if let Some((claims, key)) = claim {
                    claims.gate.release(key).await;
                }
                counters.failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(
                    "hive_alerts_failed_total",
                    "channel" => name.clone(),
                    "rule" => notification.group.clone()
                )
                .increment(1);
                tracing::error!(
                    channel = %name,
                    rule = %notification.group,
                    notification = %notification.id,
                    attempts = counters.attempts.load(Ordering::Relaxed) - before,
                    %error,
                    "alert notification dropped: delivery failed"
                );
            }
        }
    }
}

/// A cluster's "first one wins", and how long a claim holds (the group interval: the
/// replicas that see the same incident flush within it; a later notification of the same
/// alerts — a repeat, the incident firing again — is claimed anew).
#[derive(Clone)]
pub(crate) struct Claims {
    pub(crate) gate: Arc<dyn hive_core::ClaimOnce>,
    pub(crate) ttl: Duration,
}

/// What makes two replicas' notifications the same: the channel, the rule, whether it fires
/// or resolved, and each alert's subject, state, severity and escalation (not their
/// figures, ids or times, which differ between replicas). A stable 64-bit FNV-1a, in hex.
fn claim_key(notification: &Notification) -> String {
    let mut text = format!(
        "{}|{}|{}",
        notification.channel,
        notification.group,
        notification.status.as_str()
    );
    let mut alerts: Vec<String> = notification
        .alerts
        .iter()
        .map(|a| {
            format!(
                "{}/{}/{}/{}",
                a.subject,
                a.status.as_str(),
                a.severity.as_str(),
                a.escalated
            )
        })
        .collect();
    alerts.sort();
    for alert in alerts {
        text.push('|');
        text.push_str(&alert);
    }
    let hash = hive_core::fnv1a64(text.as_bytes());
    format!("alert:{hash:016x}")
}

/// The stats of every channel.
pub(crate) fn stats(outboxes: &BTreeMap<String, Arc<Counters>>) -> BTreeMap<String, ChannelStats> {
    outboxes
        .iter()
        .map(|(name, counters)| (name.clone(), counters.stats()))
        .collect()
}
