//! [`AlertManager`] and its builder: the rules, the channels, and the task that evaluates
//! and dispatches.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::ModelId;
use tokio::{
    sync::{broadcast, oneshot},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

use crate::{
    Monitor, TimedEvent,
    alert::{
        delivery::{Channel, ChannelStats, Claims, Counters},
        dispatcher::{Dispatcher, Timing},
        error::AlertError,
        rule::Rule,
        silence::Silences,
        types::Alert,
    },
};

/// The default wait before a new group's first notification (Alertmanager's).
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// The default wait between two notifications of one group (Alertmanager's).
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The default wait before an unchanged incident is notified again (Alertmanager's).
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
/// The default time between two evaluations of the rules.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(5);

/// Builds an [`AlertManager`]; [`start`](Self::start) checks everything and names what is
/// wrong.
#[must_use]
pub struct AlertManagerBuilder {
    channels: Vec<(String, Channel)>,
    rules: Vec<Rule>,
    routes: Vec<(String, Vec<ModelId>)>,
    timing: Timing,
    evaluation_interval: Duration,
    dashboard_url: Option<String>,
    shutdown_grace: Duration,
    silences: Option<Silences>,
    firing: Option<FiringAlerts>,
    on_notify: Option<crate::alert::dispatcher::NotifyHook>,
    claims: Option<Arc<dyn hive_core::ClaimOnce>>,
}

/// The alerts firing now, as the running manager last evaluated them: a handle that reads
/// them (for a dashboard), shared by every manager given it, so that it outlives a restart
/// of the manager on a config reload. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct FiringAlerts(Arc<RwLock<Vec<Alert>>>);

impl FiringAlerts {
    /// The alerts firing now (muted ones included).
    pub fn alerts(&self) -> Vec<Alert> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets them (no manager runs any more).
    pub fn clear(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl AlertManagerBuilder {
    /// Keeps these silences rather than new, empty ones: a gateway that restarts its
    /// manager on a config reload passes the same ones each time, so no silence is lost.
    pub fn silences(mut self, silences: Silences) -> Self {
        self.silences = Some(silences);
        self
    }

    /// Calls `hook` with every notification a channel accepted (on the manager's task: it
    /// must not block), so that a store can note what was sent about what — the gateway's
    /// history records, per incident, the rule that fired and the notifications sent.
    pub fn on_notify(
        mut self,
        hook: impl Fn(&crate::alert::Notification) + Send + Sync + 'static,
    ) -> Self {
        self.on_notify = Some(crate::alert::dispatcher::NotifyHook(Arc::new(hook)));
        self
    }

    /// Publishes the firing alerts to `firing` rather than to a handle of its own (see
    /// [`FiringAlerts`]).
    pub fn firing(mut self, firing: FiringAlerts) -> Self {
        self.firing = Some(firing);
        self
    }

    /// A channel named `name` (the name rules use). `channel` is a notifier
    /// ([`SlackChannel`](crate::alert::SlackChannel), …) or a [`Channel`] with its own
    /// queue, rate limit, retries and breaker.
    pub fn channel(mut self, name: impl Into<String>, channel: impl Into<Channel>) -> Self {
        self.channels.push((name.into(), channel.into()));
        self
    }

    /// Adds a rule. Without any, [`Rule::defaults`] apply.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// A route and its models, for [`Condition::RouteDown`](crate::alert::Condition::RouteDown)
    /// (and for silences by route).
    pub fn route<I, M>(mut self, name: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<ModelId>,
    {
        self.routes
            .push((name.into(), models.into_iter().map(Into::into).collect()));
        self
    }

    /// How long a new group waits for more alerts before its first notification.
    /// Default 30 s ([`DEFAULT_GROUP_WAIT`]); zero sends at once.
    pub fn group_wait(mut self, wait: Duration) -> Self {
        self.timing.group_wait = wait;
        self
    }

    /// How long a group waits between two notifications (new alerts in a group that has
    /// notified wait for it; so do resolutions). Default 5 min
    /// ([`DEFAULT_GROUP_INTERVAL`]).
    pub fn group_interval(mut self, interval: Duration) -> Self {
        self.timing.group_interval = interval;
        self
    }

    /// How long an unchanged, unresolved group waits before it is notified again.
    /// Default 4 h ([`DEFAULT_REPEAT_INTERVAL`]); checked at each group interval.
    pub fn repeat_interval(mut self, interval: Duration) -> Self {
        self.timing.repeat_interval = interval;
        self
    }

    /// How often the rules read a snapshot. Default 5 s
    /// ([`DEFAULT_EVALUATION_INTERVAL`]). A breaker transition, a health change, a
    /// credentials refusal or a config reload triggers an evaluation at once as well.
    pub fn evaluation_interval(mut self, interval: Duration) -> Self {
        self.evaluation_interval = interval;
        self
    }

    /// One replica of a cluster sends each notification: before sending, a channel claims
    /// it through `claims` (the notification's rule, status and alerts, for the group
    /// interval), and the replicas that lose leave it (counted as
    /// [`deduplicated`](ChannelStats::deduplicated)); a claim whose delivery fails is given
    /// back. Alerts about a replica itself (its config, its link) are always its own.
    pub fn cluster(mut self, claims: Arc<dyn hive_core::ClaimOnce>) -> Self {
        self.claims = Some(claims);
        self
    }

    /// The dashboard's URL, linked from every notification.
    pub fn dashboard_url(mut self, url: impl Into<String>) -> Self {
        self.dashboard_url = Some(url.into());
        self
    }

    /// How long [`AlertManager::stop`] lets the channels deliver what they have queued.
    /// Default 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Checks everything, starts the channels and the dispatcher (on the current tokio
    /// runtime), and follows `monitor`'s snapshots and events. The manager keeps a clone of
    /// the monitor.
    pub fn start(self, monitor: &Monitor) -> Result<AlertManager, AlertError> {
        let timing = self.timing;
        for (field, value) in [
            ("group_interval", timing.group_interval),
            ("repeat_interval", timing.repeat_interval),
            ("evaluation_interval", self.evaluation_interval),
        ] {
            if value.is_zero() {
                return Err(AlertError::invalid(field, "must be above zero"));
            }
        }
        for (field, value) in [
            ("group_wait", timing.group_wait),
            ("group_interval", timing.group_interval),
            ("repeat_interval", timing.repeat_interval),
            ("evaluation_interval", self.evaluation_interval),
            ("shutdown_grace", self.shutdown_grace),
        ] {
            hive_core::check_duration(field, value, true)
                .map_err(|e| AlertError::invalid(field, e.problem))?;
        }
        if let Some(url) = &self.dashboard_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(AlertError::invalid(
                "dashboard_url",
                "must start with http:// or https://",
            ));
        }
        let rules = if self.rules.is_empty() {
            Rule::defaults()
        } else {
            self.rules
        };
        let mut names = BTreeSet::new();
        for (name, _) in &self.channels {
            if name.trim().is_empty() {
                return Err(AlertError::invalid("channel", "a channel needs a name"));
            }
            if !names.insert(name.as_str()) {
                return Err(AlertError::Duplicate {
                    what: "channels",
                    name: name.clone(),
                });
            }
        }
        let mut rule_names = BTreeSet::new();
        for rule in &rules {
            rule.validate()?;
            if !rule_names.insert(rule.name.as_str()) {
                return Err(AlertError::Duplicate {
                    what: "rules",
                    name: rule.name.clone(),
                });
            }
            if let Some(channel) = rule.all_channels().find(|c| !names.contains(c.as_str())) {
                return Err(AlertError::UnknownChannel {
                    rule: rule.name.clone(),
                    channel: channel.clone(),
                });
            }
        }
        let mut routes = BTreeMap::new();
        for (name, models) in self.routes {
            if models.is_empty() {
                return Err(AlertError::invalid(
                    "route",
                    format!("route `{name}` has no model"),
                ));
            }
            if routes.insert(name.clone(), models).is_some() {
                return Err(AlertError::Duplicate {
                    what: "routes",
                    name,
                });
            }
        }
        let mut outboxes = BTreeMap::new();
        let mut counters = BTreeMap::new();
        let mut workers = Vec::new();
        let mut shown = Vec::new();
        for (name, channel) in self.channels {
            shown.push((name.clone(), format!("{:?}", channel.notifier())));
            let claims = self.claims.clone().map(|gate| Claims {
                gate,
                ttl: timing.group_interval,
            });
            let started = channel.start(&name, claims);
            let (outbox, worker) = match started {
                Ok(started) => started,
                Err(e) => {
                    workers.iter().for_each(JoinHandle::abort);
                    return Err(e);
                }
            };
            counters.insert(name.clone(), Arc::clone(&outbox.counters));
            outboxes.insert(name, outbox);
            workers.push(worker);
        }
        let silences = self.silences.unwrap_or_default();
        let mut dispatcher = Dispatcher::new(
            rules,
            routes,
            timing,
            self.dashboard_url,
            silences.clone(),
            outboxes,
        );
        dispatcher.on_notify = self.on_notify;
        if let Some(firing) = self.firing {
            // The last manager's alerts stand until this one's first evaluation.
            dispatcher.view = firing.0;
        }
        let view = Arc::clone(&dispatcher.view);
        let (stop, stopped) = oneshot::channel();
        let events = monitor.subscribe();
        let task = tokio::spawn(run(
            dispatcher,
            monitor.clone(),
            events,
            self.evaluation_interval,
            stopped,
        ));
        Ok(AlertManager {
            silences,
            view,
            counters,
            shown,
            stop: Some(stop),
            task: Some(task),
            workers,
            shutdown_grace: self.shutdown_grace,
        })
    }
}

impl fmt::Debug for AlertManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertManagerBuilder")
            .field("channels", &self.channels)
            .field("rules", &self.rules)
            .field("routes", &self.routes)
            .field("timing", &self.timing)
            .field("evaluation_interval", &self.evaluation_interval)
            .field("dashboard_url", &self.dashboard_url)
            .finish()
    }
}

/// A running alert manager: evaluates its rules over a [`Monitor`]'s snapshots and events
/// and notifies channels in the manner of Prometheus Alertmanager (see the
/// [module docs](crate::alert)).
///
/// Its tasks end when it is dropped (at once) or [`stop`](Self::stop)ped (after the
/// channels delivered what they had queued, within the shutdown grace).
pub struct AlertManager {
    silences: Silences,
    view: Arc<RwLock<Vec<Alert>>>,
    counters: BTreeMap<String, Arc<Counters>>,
    /// Each channel's name and notifier, as `Debug` shows them (no secret).
    shown: Vec<(String, String)>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    shutdown_grace: Duration,
}

impl AlertManager {
    /// A builder with Alertmanager's timing (group wait 30 s, group interval 5 min, repeat
    /// interval 4 h), an evaluation every 5 s, and [`Rule::defaults`] unless rules are
    /// given.
    pub fn builder() -> AlertManagerBuilder {
        AlertManagerBuilder {
            channels: Vec::new(),
            rules: Vec::new(),
            routes: Vec::new(),
            timing: Timing {
                group_wait: DEFAULT_GROUP_WAIT,
                group_interval: DEFAULT_GROUP_INTERVAL,
                repeat_interval: DEFAULT_REPEAT_INTERVAL,
            },
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            dashboard_url: None,
            shutdown_grace: Duration::from_secs(5),
            silences: None,
            firing: None,
            on_notify: None,
            claims: None,
        }
    }

    /// The silences (add, list, expire). Cheap to clone: hand it to the admin routes.
    pub fn silences(&self) -> Silences {
        self.silences.clone()
    }

    /// The alerts firing now (muted ones included), as of the last evaluation or flush.
    pub fn alerts(&self) -> Vec<Alert> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A handle on [`alerts`](Self::alerts) that can be kept apart from the manager.
    pub fn firing(&self) -> FiringAlerts {
        FiringAlerts(Arc::clone(&self.view))
    }

    /// What each channel did, by name.
    pub fn channel_stats(&self) -> BTreeMap<String, ChannelStats> {
        crate::alert::delivery::stats(&self.counters)
    }

    /// Stops evaluating, lets the channels deliver what they have queued (within the
    /// shutdown grace), ends every task, and answers what each channel did.
    pub async fn stop(mut self) -> BTreeMap<String, ChannelStats> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let deadline = Instant::now() + self.shutdown_grace;
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
        // The dispatcher has dropped the queues: each worker ends once its queue is empty.
        for worker in &mut self.workers {
            if tokio::time::timeout_at(deadline, &mut *worker)
                .await
                .is_err()
            {
                tracing::warn!("an alert channel did not finish within the shutdown grace");
            }
        }
        self.channel_stats()
    }
}

impl Drop for AlertManager {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        for worker in &self.workers {
            worker.abort();
        }
    }
}

impl fmt::Debug for AlertManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertManager")
            .field("channels", &self.shown)
            .field("silences", &self.silences)
            .field("firing", &self.view.read().map_or(0, |v| v.len()))
            .finish()
    }
}

/// The dispatcher's task: evaluates at every tick and at every event that matters,
/// flushes groups when due, until stopped.
async fn run(
    mut dispatcher: Dispatcher,
    monitor: Monitor,
    mut events: broadcast::Receiver<TimedEvent>,
    evaluation_interval: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(evaluation_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let far = Duration::from_secs(86_400);
    let flush = tokio::time::sleep(far);
    tokio::pin!(flush);
    let mut following = true;
    loop {
        let deadline = dispatcher.next_deadline();
        flush
            .as_mut()
            .reset(deadline.unwrap_or_else(|| Instant::now() + far));
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = tick.tick() => dispatcher.evaluate(&monitor.snapshot(), Instant::now()),
            event = events.recv(), if following => match event {
                Ok(TimedEvent { event, .. }) => {
                    // Take every event already queued, then evaluate once for all of them.
                    let now = Instant::now();
                    let mut matters = dispatcher.note(&event, now);
                    while let Ok(TimedEvent { event, .. }) = events.try_recv() {
                        matters |= dispatcher.note(&event, now);
                    }
                    if matters {
                        dispatcher.evaluate(&monitor.snapshot(), now);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "alerting fell behind the monitor's events; evaluating now");
                    dispatcher.evaluate(&monitor.snapshot(), Instant::now());
                }
                Err(broadcast::error::RecvError::Closed) => following = false,
            },
            () = &mut flush, if deadline.is_some() => dispatcher.flush_due(Instant::now()),
        }
    }
}
