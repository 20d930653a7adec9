//! The alert pipeline in paused time, against a channel that records what it is sent and
//! when: deduplication, grouping, repeat, resolve, inhibition, escalation, silences, the
//! rate limit, and every rule condition. Exact counts at exact times.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::{CircuitState, FailureClass, ModelId, Outcome, ResilienceEvent};
use hive_monitor::{
    Monitor, MonitorConfig, RequestResult,
    alert::{
        AlertError, AlertManager, AlertManagerBuilder, AlertStatus, Channel, Condition,
        DeliveryFuture, Notification, Notifier, Percentile, RateLimit, Rule, Severity, SilenceSpec,
        SilenceState, Subject, Window,
    },
};
use tokio::time::Instant;

/// A channel that records every notification with the time it arrived.
#[derive(Clone, Debug)]
struct Recorder {
    start: Instant,
    seen: Arc<RwLock<Vec<(Duration, Notification)>>>,
}

impl Recorder {
    fn new(start: Instant) -> Self {
        Self {
            start,
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<(Duration, Notification)> {
        self.seen.read().unwrap().clone()
    }

    /// (seconds since the start, status, firing, resolved) of every notification.
    fn timeline(&self) -> Vec<(u64, AlertStatus, usize, usize)> {
        self.seen()
            .iter()
            .map(|(at, n)| (at.as_secs(), n.status, n.firing, n.resolved))
            .collect()
    }
}

impl Notifier for Recorder {
    fn kind(&self) -> &'static str {
        "recorder"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> DeliveryFuture<'a> {
        self.seen
            .write()
            .unwrap()
            .push((self.start.elapsed(), notification.clone()));
        Box::pin(std::future::ready(Ok(())))
    }
}

fn channel(recorder: &Recorder) -> Channel {
    Channel::new(recorder.clone()).rate_limit(None)
}

fn consecutive(name: &str, at_least: u64) -> Rule {
    Rule::new(name, Condition::ConsecutiveFailures { at_least })
}

fn fail(monitor: &Monitor, model: &str, times: usize) {
    let recorder = monitor.model(ModelId::new(model));
    for _ in 0..times {
        recorder.record(
            &Outcome::failure(FailureClass::Unavailable),
            Duration::from_millis(20),
        );
    }
}

fn succeed(monitor: &Monitor, model: &str) {
    monitor
        .model(ModelId::new(model))
        .record(&Outcome::Success, Duration::from_millis(20));
}

fn transition(model: &str, to: CircuitState, generation: u64) -> ResilienceEvent {
    ResilienceEvent::CircuitTransition {
        model: ModelId::new(model),
        from: CircuitState::Closed,
        to,
        generation,
        failure_rate: None,
        slow_call_rate: None,
    }
}

/// Lets every task run what it can at the current instant.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Moves (paused) time to `secs` after `start`, letting every task run on the way.
async fn at(start: Instant, secs: u64) {
    tokio::time::sleep_until(start + Duration::from_secs(secs)).await;
    settle().await;
}

fn start(builder: AlertManagerBuilder, monitor: &Monitor) -> AlertManager {
    builder.start(monitor).unwrap()
}

#[tokio::test(start_paused = true)]
async fn three_models_down_make_one_message_then_one_more_and_one_resolution() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(t0);
    let manager = start(
        AlertManager::builder()
            .channel("pager", channel(&pager))
            .rule(consecutive("model_unavailable", 3).notify(["pager"])),
        &monitor,
    );
    at(t0, 1).await;
    for model in ["a", "b", "c"] {
        fail(&monitor, model, 3);
    }
    // Evaluated at 5 s; the group waits 30 s.
    at(t0, 34).await;
    assert!(pager.seen().is_empty());
    assert_eq!(manager.alerts().len(), 3);
    at(t0, 35).await;
    assert_eq!(pager.timeline(), [(35, AlertStatus::Firing, 3, 0)]);
    let first = &pager.seen()[0].1;
    assert_eq!(first.title, "[FIRING:3] model_unavailable (warning)");
    let subjects: Vec<_> = first.alerts.iter().map(|a| a.subject.clone()).collect();
    assert_eq!(
        subjects,
        ["a", "b", "c"].map(|m| Subject::Model(ModelId::new(m)))
    );
    assert_eq!(first.alerts[0].summary, "a failed 3 times in a row");
    assert_eq!(first.alerts[0].figures["consecutive_failures"], 3.0);

    // A fourth model joins after the first flush: it waits for the group interval. The
    // other three keep failing: deduplicated, no message until then.
    at(t0, 61).await;
    fail(&monitor, "d", 3);
    fail(&monitor, "a", 5);
    at(t0, 334).await;
    assert_eq!(pager.seen().len(), 1);
    at(t0, 335).await;
    assert_eq!(
        pager.timeline(),
        [
            (35, AlertStatus::Firing, 3, 0),
            (335, AlertStatus::Firing, 4, 0)
        ]
    );
    assert_eq!(
        pager.seen()[1].1.alerts[0].summary,
        "a failed 8 times in a row"
    );

    // Every model answers at 400 s: resolved at the evaluation, told at the next flush.
    at(t0, 400).await;
    for model in ["a", "b", "c", "d"] {
        succeed(&monitor, model);
    }
    at(t0, 634).await;
    assert_eq!(pager.seen().len(), 2);
    assert!(manager.alerts().is_empty());
    at(t0, 635).await;
    let resolved = &pager.seen()[2].1;
    assert_eq!(
        (resolved.status, resolved.firing, resolved.resolved),
        (AlertStatus::Resolved, 0, 4)
    );
    assert_eq!(resolved.title, "[RESOLVED] model_unavailable");
    assert!(resolved.alerts.iter().all(|a| a.ended_at.is_some()));
    // The incident is over: nothing more, ever.
    at(t0, 30_000).await;
    assert_eq!(pager.seen().len(), 3);
    assert_eq!(manager.channel_stats()["pager"].sent, 3);
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_long_incident_is_repeated_every_repeat_interval() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(t0);
    let manager = start(
        AlertManager::builder()
            .channel("pager", channel(&pager))
            .rule(consecutive("model_unavailable", 3).notify(["pager"]))
            .repeat_interval(Duration::from_secs(3600)),
        &monitor,
    );
    at(t0, 1).await;
    fail(&monitor, "a", 3);
    at(t0, 8000).await;
    let times: Vec<u64> = pager.timeline().iter().map(|t| t.0).collect();
    // Flushes come every 5 min from 35 s; the repeat goes at the first one an hour on.
    assert_eq!(times, [35, 3635, 7235]);
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unresolved_alert_is_escalated_to_more_channels_at_a_higher_severity() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let (slack, email, pager) = (Recorder::new(t0), Recorder::new(t0), Recorder::new(t0));
    let manager = start(
        AlertManager::builder()
            .channel("slack", channel(&slack))
            .channel("email", channel(&email))
            .channel("pager", channel(&pager))
            .rule(
                consecutive("model_unavailable", 3)
                    .notify(["slack", "email"])
                    .escalate(Duration::from_secs(300), Severity::Critical, ["pager"]),
            ),
        &monitor,
    );
    at(t0, 1).await;
    fail(&monitor, "a", 3);
    // Fires at 5 s, told at 35 s; escalated 300 s after it started: at 305 s, at once.
    at(t0, 304).await;
    assert_eq!(slack.seen().len(), 1);
    assert!(pager.seen().is_empty());
    at(t0, 305).await;
    for recorder in [&slack, &email] {
        let seen = recorder.seen();
        let severities: Vec<_> = seen
            .iter()
            .map(|(at, n)| (at.as_secs(), n.severity, n.alerts[0].escalated))
            .collect();
        assert_eq!(
            severities,
            [
                (35, Severity::Warning, false),
                (305, Severity::Critical, true)
            ]
        );
    }
    assert_eq!(pager.timeline(), [(305, AlertStatus::Firing, 1, 0)]);
    assert_eq!(manager.alerts()[0].severity, Severity::Critical);

    // It recovers at 400 s: every channel told, escalation's included, at the next flush.
    at(t0, 400).await;
    succeed(&monitor, "a");
    at(t0, 605).await;
    for recorder in [&slack, &email, &pager] {
        let last = recorder.seen().last().cloned().unwrap();
        assert_eq!(
            (last.0.as_secs(), last.1.status),
            (605, AlertStatus::Resolved)
        );
        assert_eq!(last.1.alerts[0].severity, Severity::Critical);
    }
    assert_eq!(
        (slack.seen().len(), email.seen().len(), pager.seen().len()),
        (3, 3, 2)
    );
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_route_down_alert_inhibits_the_alerts_about_its_models() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(t0);
    let manager = start(
        AlertManager::builder()
            .channel("pager", channel(&pager))
            .route("chat", ["a", "b", "c"])
            .rule(consecutive("model_unavailable", 3).notify(["pager"]))
            .rule(
                Rule::new("route_down", Condition::RouteDown)
                    .severity(Severity::Critical)
                    .notify(["pager"]),
            ),
        &monitor,
    );
    at(t0, 1).await;
    let sink = monitor.event_sink();
    for model in ["a", "b", "c"] {
        fail(&monitor, model, 3);
        sink.emit(|| transition(model, CircuitState::Open, 1));
    }
    // The breaker events are evaluated at once (1 s): both groups flush at 31 s, and the
    // per-model alerts are inhibited: one message, the route's.
    at(t0, 31).await;
    assert_eq!(pager.timeline(), [(31, AlertStatus::Firing, 1, 0)]);
    let message = &pager.seen()[0].1;
    assert_eq!(message.group, "route_down");
    assert_eq!(
        message.alerts[0].summary,
        "every model of route chat is down: a (breaker open), b (breaker open), c (breaker open)"
    );
    assert_eq!(manager.alerts().len(), 4, "inhibited alerts still fire");

    // c's breaker closes at 100 s: the route is up, the per-model alerts are no longer
    // inhibited and go out at their next flush, with the route's resolution.
    at(t0, 100).await;
    sink.emit(|| transition("c", CircuitState::Closed, 2));
    at(t0, 330).await;
    assert_eq!(pager.seen().len(), 1);
    at(t0, 331).await;
    let mut last: Vec<(String, AlertStatus, usize)> = pager.seen()[1..]
        .iter()
        .map(|(at, n)| {
            assert_eq!(at.as_secs(), 331);
            (n.group.clone(), n.status, n.alerts.len())
        })
        .collect();
    last.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        last,
        [
            ("model_unavailable".into(), AlertStatus::Firing, 3),
            ("route_down".into(), AlertStatus::Resolved, 1)
        ]
    );
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_silence_mutes_until_it_expires_and_the_api_lists_and_expires() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(t0);
    let manager = start(
        AlertManager::builder()
            .channel("pager", channel(&pager))
            .route("chat", ["a", "b"])
            .rule(consecutive("model_unavailable", 3).notify(["pager"])),
        &monitor,
    );
    let silences = manager.silences();
    let quiet_a = silences
        .add(
            SilenceSpec::new(Duration::from_secs(600))
                .model("a")
                .created_by("ops")
                .comment("provider maintenance"),
        )
        .unwrap();
    assert_eq!(quiet_a.state, SilenceState::Active);
    assert_eq!(quiet_a.expires_in, Duration::from_secs(600));
    at(t0, 1).await;
    fail(&monitor, "a", 3);
    fail(&monitor, "b", 3);
    at(t0, 35).await;
    let first = &pager.seen()[0].1;
    assert_eq!(first.alerts.len(), 1, "a is silenced");
    assert_eq!(first.alerts[0].subject, Subject::Model(ModelId::new("b")));
    // The silence ends at 600 s: a goes out at the next flush, 635 s.
    at(t0, 600).await;
    assert_eq!(
        silences.get(quiet_a.id).unwrap().state,
        SilenceState::Expired
    );
    assert_eq!(pager.seen().len(), 1);
    at(t0, 635).await;
    assert_eq!(pager.timeline()[1], (635, AlertStatus::Firing, 2, 0));

    // The API: add by route (mutes its models), list, expire early; errors name the problem.
    let by_route = silences
        .add(SilenceSpec::new(Duration::from_secs(60)).route("chat"))
        .unwrap();
    let listed = silences.list();
    assert_eq!(
        listed.iter().map(|s| (s.id, s.state)).collect::<Vec<_>>(),
        [
            (by_route.id, SilenceState::Active),
            (quiet_a.id, SilenceState::Expired)
        ]
    );
    let expired = silences.expire(by_route.id).unwrap();
    assert_eq!(
        (expired.state, expired.expires_in),
        (SilenceState::Expired, Duration::ZERO)
    );
    assert_eq!(
        silences.add(SilenceSpec::new(Duration::from_secs(60))),
        Err(AlertError::EmptySilence)
    );
    assert!(matches!(
        silences.add(SilenceSpec::new(Duration::ZERO).rule("x")),
        Err(AlertError::Invalid {
            field: "silence.duration",
            ..
        })
    ));
    let unknown = hive_monitor::alert::SilenceId(999);
    assert_eq!(
        silences.expire(unknown),
        Err(AlertError::UnknownSilence(unknown))
    );
    let json = serde_json::to_value(&silences.list()[0]).unwrap();
    assert_eq!(json["state"], "expired");
    assert_eq!(json["route"], "chat");
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_channel_over_its_rate_limit_drops_counts_and_sends_at_a_later_flush() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(t0);
    let manager = start(
        AlertManager::builder()
            .channel(
                "pager",
                Channel::new(pager.clone()).rate_limit(Some(RateLimit {
                    max: 2,
                    per: Duration::from_secs(3600),
                })),
            )
            .rule(consecutive("one", 1).notify(["pager"]))
            .rule(consecutive("two", 2).notify(["pager"]))
            .rule(consecutive("three", 3).notify(["pager"])),
        &monitor,
    );
    at(t0, 1).await;
    fail(&monitor, "a", 3);
    at(t0, 35).await;
    let groups = |r: &Recorder| {
        r.seen()
            .iter()
            .map(|(at, n)| (at.as_secs(), n.group.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(groups(&pager), [(35, "one".into()), (35, "two".into())]);
    assert_eq!(manager.channel_stats()["pager"].dropped, 1);
    // A token every 30 min: `three` is dropped again at 335, 635, 935, 1235 and 1535 s,
    // and goes out at 1835 s.
    at(t0, 1834).await;
    assert_eq!(pager.seen().len(), 2);
    assert_eq!(manager.channel_stats()["pager"].dropped, 6);
    at(t0, 1835).await;
    assert_eq!(groups(&pager)[2], (1835, "three".into()));
    assert_eq!(manager.channel_stats()["pager"].sent, 3);
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn every_condition_fires_on_its_figures_and_resolves() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let log = Recorder::new(t0);
    let minute = Duration::from_secs(60);
    let manager = start(
        AlertManager::builder()
            .channel("log", channel(&log))
            .group_wait(Duration::ZERO)
            .rule(
                Rule::new(
                    "failure_rate",
                    Condition::FailureRate {
                        above: 0.2,
                        window: Window::Last5Minutes,
                        min_calls: 10,
                    },
                )
                .notify(["log"]),
            )
            .rule(Rule::new("breaker_open", Condition::BreakerOpen).notify(["log"]))
            .rule(
                Rule::new(
                    "breaker_stuck",
                    Condition::BreakerStuckOpen {
                        longer_than: 2 * minute,
                    },
                )
                .notify(["log"]),
            )
            .rule(
                Rule::new(
                    "identity",
                    Condition::IdentityMismatch {
                        window: Window::LastMinute,
                    },
                )
                .notify(["log"]),
            )
            .rule(
                Rule::new(
                    "credentials",
                    Condition::CredentialsRejected { quiet_for: minute },
                )
                .severity(Severity::Critical)
                .notify(["log"]),
            )
            .rule(
                Rule::new(
                    "slow",
                    Condition::Latency {
                        percentile: Percentile::P95,
                        above: Duration::from_secs(2),
                        window: Window::LastMinute,
                        min_calls: 10,
                    },
                )
                .notify(["log"]),
            )
            .rule(
                Rule::new(
                    "availability",
                    Condition::Availability {
                        below: 0.9,
                        window: Window::LastMinute,
                        min_requests: 10,
                    },
                )
                .notify(["log"]),
            ),
        &monitor,
    );
    at(t0, 1).await;
    // f: 4 failures in 12 calls (33%); s: 20 answers at 3 s; i: one identity mismatch.
    let f = monitor.model(ModelId::new("f"));
    for n in 0..12 {
        let outcome = if n % 3 == 0 {
            Outcome::failure(FailureClass::Timeout)
        } else {
            Outcome::Success
        };
        f.record(&outcome, Duration::from_millis(100));
    }
    let s = monitor.model(ModelId::new("s"));
    for _ in 0..20 {
        s.record(&Outcome::Success, Duration::from_secs(3));
    }
    monitor.model(ModelId::new("i")).record(
        &Outcome::failure(FailureClass::IdentityMismatch),
        Duration::from_millis(5),
    );
    monitor.model(ModelId::new("o"));
    monitor.model(ModelId::new("k"));
    let chat = monitor.route("chat");
    for n in 0..10 {
        chat.record(if n < 8 {
            RequestResult::Answered
        } else {
            RequestResult::Failed
        });
    }
    let sink = monitor.event_sink();
    sink.emit(|| transition("o", CircuitState::Open, 1));
    sink.emit(|| ResilienceEvent::CredentialsRejected {
        model: ModelId::new("k"),
    });
    at(t0, 5).await;
    let firing = |m: &AlertManager| {
        let mut list: Vec<(String, String)> = m
            .alerts()
            .iter()
            .map(|a| (a.rule.clone(), a.summary.clone()))
            .collect();
        list.sort();
        list
    };
    let expected = [
        (
            "availability",
            "route chat answered 80.0% of 10 requests over the last minute (target 90.0%)",
        ),
        ("breaker_open", "o's circuit breaker is open (out for 4s)"),
        (
            "credentials",
            "k's provider rejected the credentials (HTTP 401/403) 1 time: an operator must act",
        ),
        (
            "failure_rate",
            "f failed 4 of 12 calls over the last 5 minutes (33.3%, threshold 20.0%)",
        ),
        (
            "identity",
            "i answered as another model 1 time over the last minute",
        ),
    ];
    let now = firing(&manager);
    assert_eq!(now.len(), 6, "{now:#?}");
    for (rule, summary) in expected {
        assert!(
            now.contains(&(rule.to_owned(), summary.to_owned())),
            "{rule}: {now:#?}"
        );
    }
    let slow = now.iter().find(|(rule, _)| rule == "slow").unwrap();
    assert!(slow.1.starts_with("s's p95 latency is "), "{}", slow.1);
    // The breaker stays open past 2 minutes; the credentials stay quiet for a minute; the
    // one-minute windows roll over: by 125 s the breaker alerts and the 5-minute failure
    // rate fire.
    at(t0, 125).await;
    let rules =
        |m: &AlertManager| -> Vec<String> { firing(m).into_iter().map(|(r, _)| r).collect() };
    assert_eq!(
        rules(&manager),
        ["breaker_open", "breaker_stuck", "failure_rate"]
    );
    // The breaker closes at once; the failure rate leaves its window after 5 minutes.
    sink.emit(|| transition("o", CircuitState::Closed, 2));
    at(t0, 126).await;
    assert_eq!(rules(&manager), ["failure_rate"]);
    at(t0, 400).await;
    assert!(manager.alerts().is_empty());
    // Every rule told the log once firing, once resolved: 7 rules, 14 messages.
    at(t0, 1000).await;
    assert_eq!(log.seen().len(), 14, "{:#?}", log.timeline());
    manager.stop().await;
}

/// The hash of a config as the gateway shows it: `sha256:` and 64 hex digits from `seed`.
fn config_hash(seed: &str) -> String {
    format!("sha256:{}", seed.repeat(64 / seed.len()))
}

fn reload(accepted: bool, problems: u32, config_hash: &str) -> ResilienceEvent {
    ResilienceEvent::ConfigReload {
        accepted,
        problems,
        config_hash: config_hash.to_owned(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_config_reload_fires_once_and_an_accepted_one_resolves_it() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(t0);
    let manager = start(
        AlertManager::builder()
            .channel("pager", channel(&pager))
            .rule(Rule::config_rejected().notify(["pager"])),
        &monitor,
    );
    let old = config_hash("0123456789abcdef");
    let new = config_hash("fedcba9876543210");
    let sink = monitor.event_sink();
    at(t0, 1).await;
    // Accepted at start-up: nothing to say.
    sink.emit(|| reload(true, 0, &old));
    at(t0, 10).await;
    assert!(manager.alerts().is_empty());
    assert_eq!(monitor.snapshot().config.unwrap().config_hash, old);

    // Refused at 10 s: evaluated at once, sent after the group wait.
    sink.emit(|| reload(false, 3, &old));
    at(t0, 11).await;
    let firing = manager.alerts();
    assert_eq!(firing.len(), 1);
    assert_eq!(
        (firing[0].rule.as_str(), &firing[0].subject),
        ("config_rejected", &Subject::Config)
    );
    at(t0, 39).await;
    assert!(pager.seen().is_empty());
    at(t0, 40).await;
    assert_eq!(pager.timeline(), [(40, AlertStatus::Firing, 1, 0)]);
    let first = &pager.seen()[0].1;
    assert_eq!(first.title, "[FIRING:1] config_rejected (warning)");
    assert_eq!(first.severity, Severity::Warning);
    let alert = &first.alerts[0];
    assert_eq!(alert.subject, Subject::Config);
    assert_eq!(alert.subject.to_string(), "config");
    assert_eq!(
        serde_json::to_value(&alert.subject).unwrap(),
        serde_json::json!({"kind": "config"})
    );
    assert_eq!(
        alert.summary,
        "a config reload was refused (3 problems): the old config 0123456789ab keeps serving"
    );
    assert_eq!(alert.figures["problems"], 3.0);
    assert_eq!(alert.figures["refused_in_a_row"], 1.0);

    // Refused again at 100 s: the same alert, updated; the channel was told, so nothing
    // goes out at the group's next flush (340 s).
    sink.emit(|| reload(false, 1, &old));
    at(t0, 101).await;
    let firing = manager.alerts();
    assert_eq!(firing.len(), 1);
    assert_eq!(
        firing[0].summary,
        "a config reload was refused (1 problem; 2 refusals in a row): the old config \
         0123456789ab keeps serving"
    );
    at(t0, 400).await;
    assert_eq!(pager.seen().len(), 1, "{:?}", pager.timeline());
    let config = monitor.snapshot().config.unwrap();
    assert_eq!(
        (
            config.accepted,
            config.problems,
            config.refused_in_a_row,
            config.short_hash()
        ),
        (false, 1, 2, "0123456789ab")
    );

    // Accepted at 400 s: resolved at once, told at the group's next flush (640 s).
    sink.emit(|| reload(true, 0, &new));
    at(t0, 401).await;
    assert!(manager.alerts().is_empty());
    let config = monitor.snapshot().config.unwrap();
    assert_eq!(
        (
            config.accepted,
            config.problems,
            config.refused_in_a_row,
            config.config_hash.as_str()
        ),
        (true, 0, 0, new.as_str())
    );
    at(t0, 639).await;
    assert_eq!(pager.seen().len(), 1);
    at(t0, 640).await;
    assert_eq!(
        pager.timeline(),
        [
            (40, AlertStatus::Firing, 1, 0),
            (640, AlertStatus::Resolved, 0, 1)
        ]
    );
    let resolved = &pager.seen()[1].1;
    assert_eq!(resolved.title, "[RESOLVED] config_rejected");
    assert_eq!(resolved.alerts[0].subject, Subject::Config);
    assert!(resolved.alerts[0].ended_at.is_some());
    // Over: nothing more.
    at(t0, 30_000).await;
    assert_eq!(pager.seen().len(), 2);
    assert!(
        monitor.snapshot().models.is_empty(),
        "a reload is about no model"
    );
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_config_alert_is_silenced_by_its_rule_not_by_a_model_or_a_route() {
    let t0 = Instant::now();
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(t0);
    let manager = start(
        AlertManager::builder()
            .channel("pager", channel(&pager))
            .route("chat", ["a"])
            .group_wait(Duration::ZERO)
            .rule(Rule::config_rejected().notify(["pager"])),
        &monitor,
    );
    let hour = Duration::from_secs(3600);
    let silences = manager.silences();
    let by_rule = silences
        .add(SilenceSpec::new(hour).rule("config_rejected"))
        .unwrap();
    silences.add(SilenceSpec::new(hour).model("a")).unwrap();
    silences.add(SilenceSpec::new(hour).route("chat")).unwrap();
    at(t0, 1).await;
    monitor
        .event_sink()
        .emit(|| reload(false, 2, &config_hash("ab")));
    at(t0, 2).await;
    assert_eq!(manager.alerts().len(), 1, "muted, still firing");
    assert!(pager.seen().is_empty());
    // The rule's silence ends: the model's and the route's do not match the config.
    silences.expire(by_rule.id).unwrap();
    at(t0, 300).await;
    assert!(pager.seen().is_empty());
    at(t0, 301).await;
    assert_eq!(pager.timeline(), [(301, AlertStatus::Firing, 1, 0)]);
    assert_eq!(
        pager.seen()[0].1.alerts[0].summary,
        "a config reload was refused (2 problems): the old config abababababab keeps serving"
    );
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_defaults_are_the_governance_systems_and_bad_settings_are_named() {
    let defaults = Rule::defaults();
    assert_eq!(defaults.len(), 2);
    assert_eq!(defaults[0].name, "model_unavailable");
    assert_eq!(
        defaults[0].condition,
        Condition::ConsecutiveFailures { at_least: 3 }
    );
    assert_eq!(defaults[0].channels, ["slack", "email"]);
    let escalation = defaults[0].escalation.clone().unwrap();
    assert_eq!(
        (escalation.after, escalation.severity),
        (Duration::from_secs(300), Severity::Critical)
    );
    assert_eq!(defaults[1].name, "high_failure_rate");
    assert_eq!(
        defaults[1].condition,
        Condition::FailureRate {
            above: 0.2,
            window: Window::Last5Minutes,
            min_calls: 10
        }
    );
    assert_eq!(defaults[1].channels, ["slack"]);

    let monitor = Monitor::start(MonitorConfig::default());
    let recorder = Recorder::new(Instant::now());
    let err = |builder: AlertManagerBuilder| builder.start(&monitor).unwrap_err();
    assert_eq!(
        err(AlertManager::builder().channel("slack", recorder.clone())),
        AlertError::UnknownChannel {
            rule: "model_unavailable".into(),
            channel: "email".into()
        }
    );
    assert_eq!(
        err(AlertManager::builder()
            .channel("x", recorder.clone())
            .rule(consecutive("r", 3).notify(["x"]))
            .rule(consecutive("r", 4).notify(["x"])))
        .to_string(),
        "two rules are named `r`"
    );
    assert_eq!(
        err(AlertManager::builder()
            .channel("x", recorder.clone())
            .rule(consecutive("r", 0).notify(["x"])))
        .to_string(),
        "rule `r`: at_least must be 1 or more"
    );
    assert!(matches!(
        err(AlertManager::builder()
            .channel("x", recorder.clone())
            .rule(consecutive("r", 1).notify(["x"]))
            .group_interval(Duration::ZERO)),
        AlertError::Invalid {
            field: "group_interval",
            ..
        }
    ));
    assert!(matches!(
        err(AlertManager::builder()
            .channel("x", Channel::new(recorder.clone()).queue(0))
            .rule(consecutive("r", 1).notify(["x"]))),
        AlertError::Invalid {
            field: "channel.queue",
            ..
        }
    ));
    // Both default channels configured: it starts.
    let manager = AlertManager::builder()
        .channel("slack", recorder.clone())
        .channel("email", recorder)
        .start(&monitor)
        .unwrap();
    manager.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_or_stopping_the_manager_ends_its_tasks() {
    let monitor = Monitor::start(MonitorConfig::default());
    let pager = Recorder::new(Instant::now());
    let build = || {
        AlertManager::builder()
            .channel("pager", channel(&pager))
            .rule(consecutive("model_unavailable", 3).notify(["pager"]))
            .start(&monitor)
            .unwrap()
    };
    // The channel's task holds the notifier (and with it the recorder's log).
    let manager = build();
    settle().await;
    assert_eq!(Arc::strong_count(&pager.seen), 2);
    drop(manager);
    settle().await;
    assert_eq!(
        Arc::strong_count(&pager.seen),
        1,
        "dropped: the tasks ended"
    );
    let manager = build();
    settle().await;
    assert_eq!(Arc::strong_count(&pager.seen), 2);
    let stats = manager.stop().await;
    assert_eq!(stats["pager"], Default::default());
    assert_eq!(
        Arc::strong_count(&pager.seen),
        1,
        "stopped: the tasks ended"
    );
}
