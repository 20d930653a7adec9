//! The dispatcher: Alertmanager's pipeline on one task, without a lock on anything a model
//! call touches.
//!
//! * **Alerts** live in one **group per rule**, keyed by subject (a model or a route): a
//!   condition that still holds at the next evaluation updates its alert's figures, never
//!   makes a second one (deduplication by rule and subject).
//! * A new group waits `group_wait` before its first flush, so that alerts that start
//!   together go out together; later flushes come every `group_interval`.
//! * At each flush, per channel: alerts muted by a silence or inhibited by a route-down
//!   alert are left out; then the notification log decides (Alertmanager's `DedupStage`):
//!   send when a firing alert is new to the channel, when every alert it was told of has
//!   resolved, when an alert resolved, or when `repeat_interval` passed since the last
//!   notification; otherwise send nothing.
//! * An alert unresolved for its rule's escalation time is **escalated** (a higher
//!   severity, more channels): its group flushes at that moment.
//! * Resolved alerts leave the group once every channel was told (or did not need to be);
//!   an empty group is forgotten.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::{ModelId, ResilienceEvent};
use tokio::time::Instant;

use crate::{
    alert::{
        delivery::Outbox,
        rule::{Facts, Refusals, Rule},
        silence::Silences,
        types::{Alert, AlertStatus, Figures, Notification, Severity, Subject, Timestamp},
    },
    snapshot::ResilienceMetrics,
};

/// Group wait, group interval and repeat interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) group_wait: Duration,
    pub(crate) group_interval: Duration,
    pub(crate) repeat_interval: Duration,
}

/// One alert in its group.
#[derive(Debug)]
struct Entry {
    summary: String,
    figures: Figures,
    started: Instant,
    started_at: Timestamp,
    /// When the condition stopped holding, while the resolution is not yet notified.
    resolved: Option<(Instant, Timestamp)>,
    escalated: bool,
}

/// An alert as the notification log records it: its subject, and whether it was escalated
/// (an escalated alert is new to a channel that was told of it before).
type Key = (Subject, bool);

/// What a channel was last told about a group.
#[derive(Debug)]
struct Logged {
    firing: BTreeSet<Key>,
    resolved: BTreeSet<Key>,
    at: Instant,
}

/// The alerts of one rule.
#[derive(Debug)]
struct Group {
    alerts: BTreeMap<Subject, Entry>,
    next_flush: Instant,
    log: BTreeMap<String, Logged>,
}

/// Alertmanager's `needsUpdate`: whether a channel must be told.
fn needs_update(
    logged: Option<&Logged>,
    firing: &BTreeSet<Key>,
    resolved: &BTreeSet<Key>,
    repeat: Duration,
    now: Instant,
) -> bool {
    let Some(logged) = logged else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&logged.firing) {
        return true;
    }
    if firing.is_empty() {
        // Every alert it was told of resolved (or it was told of none: nothing to say).
        return !logged.firing.is_empty();
    }
    if !resolved.is_subset(&logged.resolved) {
        return true;
    }
    now >= logged.at + repeat
}

/// A hook told of every notification a channel accepted.
#[derive(Clone)]
pub(crate) struct NotifyHook(pub(crate) Arc<dyn Fn(&Notification) + Send + Sync>);

impl std::fmt::Debug for NotifyHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotifyHook")
    }
}

/// The dispatcher's state: the rules, the groups, the channels.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    pub(crate) rules: Vec<Rule>,
    pub(crate) routes: BTreeMap<String, Vec<ModelId>>,
    pub(crate) timing: Timing,
    pub(crate) dashboard_url: Option<String>,
    pub(crate) silences: Silences,
    pub(crate) outboxes: BTreeMap<String, Outbox>,
    /// The firing alerts, for [`AlertManager::alerts`](crate::alert::AlertManager::alerts).
    pub(crate) view: Arc<RwLock<Vec<Alert>>>,
    /// Told of every notification a channel accepted (a history noting what was sent).
    pub(crate) on_notify: Option<NotifyHook>,
    groups: BTreeMap<usize, Group>,
    credentials: BTreeMap<ModelId, Refusals>,
    sequence: u64,
}

impl Dispatcher {
    pub(crate) fn new(
        rules: Vec<Rule>,
        routes: BTreeMap<String, Vec<ModelId>>,
        timing: Timing,
        dashboard_url: Option<String>,
        silences: Silences,
        outboxes: BTreeMap<String, Outbox>,
    ) -> Self {
        Self {
            rules,
            routes,
            timing,
            dashboard_url,
            silences,
            outboxes,
            view: Arc::default(),
            on_notify: None,
            groups: BTreeMap::new(),
            credentials: BTreeMap::new(),
            sequence: 0,
        }
    }

    /// Takes note of an event; whether the rules should be evaluated now.
    pub(crate) fn note(&mut self, event: &ResilienceEvent, now: Instant) -> bool {
        match event {
            ResilienceEvent::CredentialsRejected { model } => {
                let seen = self.credentials.entry(*model).or_insert(Refusals {
                    last: now,
                    count: 0,
                });
                seen.last = now;
                seen.count += 1;
                true
            }
            // A config reload is read from the snapshot (the monitor applied it before
            // passing it on): evaluate at once.
            ResilienceEvent::CircuitTransition { .. }
            | ResilienceEvent::HealthChanged { .. }
            | ResilienceEvent::ConfigReload { .. }
            | ResilienceEvent::ClusterLink { .. } => true,
            _ => false,
        }
    }

    /// Evaluates every rule over `snapshot`: starts, updates and resolves alerts.
    pub(crate) fn evaluate(&mut self, snapshot: &ResilienceMetrics, now: Instant) {
        let facts = Facts {
            snapshot,
            routes: &self.routes,
            credentials: &self.credentials,
            now,
        };
        for (index, rule) in self.rules.iter().enumerate() {
            let findings = rule.evaluate(&facts);
            if findings.is_empty() && !self.groups.contains_key(&index) {
                continue;
            }
            let group_wait = self.timing.group_wait;
            let group = self.groups.entry(index).or_insert_with(|| Group {
                alerts: BTreeMap::new(),
                next_flush: now + group_wait,
                log: BTreeMap::new(),
            });
            let holding: BTreeSet<&Subject> = findings.iter().map(|f| &f.subject).collect();
            for alert in group.alerts.iter_mut() {
                if alert.1.resolved.is_none() && !holding.contains(alert.0) {
                    alert.1.resolved = Some((now, Timestamp::now()));
                }
            }
            for finding in findings {
                match group.alerts.get_mut(&finding.subject) {
                    Some(alert) => {
                        alert.summary = finding.summary;
                        alert.figures = finding.figures;
                        // Back before its resolution went out: the same incident goes on.
                        alert.resolved = None;
                    }
                    None => {
                        tracing::info!(
                            rule = %rule.name,
                            subject = %finding.subject,
                            summary = %finding.summary,
                            "alert started"
                        );
                        group.alerts.insert(
                            finding.subject,
                            Entry {
                                summary: finding.summary,
                                figures: finding.figures,
                                started: now,
                                started_at: Timestamp::now(),
                                resolved: None,
                                escalated: false,
                            },
                        );
                    }
                }
            }
        }
        self.publish(now);
    }

    /// When the next group flushes (or the next escalation falls due), if any group waits.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.groups
            .iter()
            .map(|(index, group)| {
                let escalation = self.rules[*index].escalation.as_ref().and_then(|e| {
                    group
                        .alerts
                        .values()
                        .filter(|a| a.resolved.is_none() && !a.escalated)
                        .map(|a| a.started + e.after)
                        .min()
                });
                escalation.map_or(group.next_flush, |due| due.min(group.next_flush))
            })
            .min()
    }

    /// Flushes every group whose time has come.
    pub(crate) fn flush_due(&mut self, now: Instant) {
        let due: Vec<usize> = self
            .groups
            .iter()
            .filter(|(index, group)| {
                group.next_flush <= now
                    || self.rules[**index].escalation.as_ref().is_some_and(|e| {
                        group.alerts.values().any(|a| {
                            a.resolved.is_none() && !a.escalated && a.started + e.after <= now
                        })
                    })
            })
            .map(|(index, _)| *index)
            .collect();
        for index in due {
            self.flush(index, now);
        }
        self.publish(now);
    }

    /// Whether an alert of rule `index` about `subject` is muted: silenced, or inhibited
    /// by a firing route-down alert of a route the subject belongs to.
    fn muted(&self, index: usize, subject: &Subject, now: Instant) -> bool {
        let rule = &self.rules[index];
        if self.silences.mutes(&rule.name, subject, &self.routes, now) {
            return true;
        }
        let Subject::Model(model) = subject else {
            return false;
        };
        !rule.inhibits()
            && self.groups.iter().any(|(source, group)| {
                self.rules[*source].inhibits()
                    && group.alerts.iter().any(|(route, alert)| {
                        alert.resolved.is_none()
                            && route
                                .route()
                                .and_then(|r| self.routes.get(r))
                                .is_some_and(|models| models.contains(model))
                    })
            })
    }

    fn flush(&mut self, index: usize, now: Instant) {
        let rule = self.rules[index].clone();
        let escalation = rule.escalation.clone();
        let Some(mut group) = self.groups.remove(&index) else {
            return;
        };
        if let Some(escalation) = &escalation {
            for (subject, alert) in group.alerts.iter_mut() {
                if alert.resolved.is_none()
                    && !alert.escalated
                    && alert.started + escalation.after <= now
                {
                    alert.escalated = true;
                    tracing::warn!(
                        rule = %rule.name,
                        %subject,
                        after = ?escalation.after,
                        severity = %escalation.severity,
                        "alert escalated"
                    );
                }
            }
        }
        let visible: Vec<(&Subject, &Entry)> = group
            .alerts
            .iter()
            .filter(|(subject, _)| !self.muted(index, subject, now))
            .collect();
        let mut channels: Vec<(&String, bool)> = rule.channels.iter().map(|c| (c, false)).collect();
        for channel in escalation.iter().flat_map(|e| e.channels.iter()) {
            if !channels.iter().any(|(c, _)| *c == channel) {
                channels.push((channel, true));
            }
        }
        let mut everyone_told = true;
        let mut outgoing: Vec<(String, Notification, BTreeSet<Key>, BTreeSet<Key>)> = Vec::new();
        for (channel, escalation_only) in channels {
            let alerts: Vec<(&Subject, &Entry)> = visible
                .iter()
                .filter(|(_, alert)| !escalation_only || alert.escalated)
                .copied()
                .collect();
            let key = |(subject, alert): &(&Subject, &Entry)| ((*subject).clone(), alert.escalated);
            let firing: BTreeSet<Key> = alerts
                .iter()
                .filter(|(_, a)| a.resolved.is_none())
                .map(key)
                .collect();
            let resolved: BTreeSet<Key> = alerts
                .iter()
                .filter(|(_, a)| a.resolved.is_some())
                .map(key)
                .collect();
            if alerts.is_empty()
                || !needs_update(
                    group.log.get(channel),
                    &firing,
                    &resolved,
                    self.timing.repeat_interval,
                    now,
                )
            {
                continue;
            }
            self.sequence += 1;
            let notification = self.notification(&rule, channel, &alerts, now);
            outgoing.push((channel.clone(), notification, firing, resolved));
        }
        for (channel, notification, firing, resolved) in outgoing {
            let told = self.on_notify.as_ref().map(|_| notification.clone());
            let offered = self
                .outboxes
                .get_mut(&channel)
                .is_some_and(|outbox| outbox.offer(notification, now));
            if offered {
                if let (Some(hook), Some(told)) = (&self.on_notify, &told) {
                    (hook.0)(told);
                }
                group.log.insert(
                    channel,
                    Logged {
                        firing,
                        resolved,
                        at: now,
                    },
                );
            } else {
                everyone_told = false;
            }
        }
        if everyone_told {
            group.alerts.retain(|_, alert| alert.resolved.is_none());
        }
        group.next_flush = now + self.timing.group_interval;
        if !group.alerts.is_empty() {
            self.groups.insert(index, group);
        }
    }

    fn notification(
        &self,
        rule: &Rule,
        channel: &str,
        alerts: &[(&Subject, &Entry)],
        now: Instant,
    ) -> Notification {
        let severity_of = |alert: &Entry| match (&rule.escalation, alert.escalated) {
            (Some(escalation), true) => escalation.severity,
            _ => rule.severity,
        };
        let mut list: Vec<Alert> = alerts
            .iter()
            .map(|(subject, alert)| Alert {
                rule: rule.name.clone(),
                subject: (*subject).clone(),
                status: if alert.resolved.is_some() {
                    AlertStatus::Resolved
                } else {
                    AlertStatus::Firing
                },
                severity: severity_of(alert),
                escalated: alert.escalated,
                summary: alert.summary.clone(),
                figures: alert.figures.clone(),
                started_at: alert.started_at,
                ended_at: alert.resolved.map(|(_, at)| at),
                duration: alert
                    .resolved
                    .map_or(now, |(at, _)| at)
                    .saturating_duration_since(alert.started),
            })
            .collect();
        list.sort_by_key(|a| a.status == AlertStatus::Resolved);
        let firing = list
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .count();
        let resolved = list.len() - firing;
        let status = if firing > 0 {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        let severity = list
            .iter()
            .filter(|a| status == AlertStatus::Resolved || a.status == AlertStatus::Firing)
            .map(|a| a.severity)
            .max()
            .unwrap_or(Severity::Info);
        let title = match status {
            AlertStatus::Firing => format!("[FIRING:{firing}] {} ({severity})", rule.name),
            AlertStatus::Resolved => format!("[RESOLVED] {}", rule.name),
        };
        Notification {
            version: 1,
            id: format!("{}/{}", rule.name, self.sequence),
            channel: channel.to_owned(),
            group: rule.name.clone(),
            status,
            severity,
            title,
            firing,
            resolved,
            alerts: list,
            dashboard_url: self.dashboard_url.clone(),
            created_at: Timestamp::now(),
        }
    }

    /// Publishes the firing alerts for [`AlertManager::alerts`](crate::alert::AlertManager::alerts).
    fn publish(&self, now: Instant) {
        let mut firing = Vec::new();
        for (index, group) in &self.groups {
            let rule = &self.rules[*index];
            for (subject, alert) in &group.alerts {
                if alert.resolved.is_some() {
                    continue;
                }
                firing.push(Alert {
                    rule: rule.name.clone(),
                    subject: subject.clone(),
                    status: AlertStatus::Firing,
                    severity: match (&rule.escalation, alert.escalated) {
                        (Some(escalation), true) => escalation.severity,
                        _ => rule.severity,
                    },
                    escalated: alert.escalated,
                    summary: alert.summary.clone(),
                    figures: alert.figures.clone(),
                    started_at: alert.started_at,
                    ended_at: None,
                    duration: now.saturating_duration_since(alert.started),
                });
            }
        }
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = firing;
    }
}
