//! `alerts` of the config → hive-monitor's alerting: the channels, the rules, the timing and
//! the gateway's routes handed to an [`AlertManagerBuilder`], ready to
//! [`start`](AlertManagerBuilder::start) on the gateway's [`Monitor`](hive_monitor::Monitor).
//!
//! ```
//! use std::time::Duration;
//! use hive_gateway::alerts::alert_manager;
//!
//! let resilience = "alerts: { channels: { log: { kind: log } }, rules: [] }";
//! let config = hive_config::Loader::new().load_str(".", Some(resilience), None)?;
//! // `rules: []`: no alert manager at all (hive-monitor would fall back to its defaults).
//! assert!(alert_manager(&config.alerts, &[], Duration::from_secs(30))?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The mapping
//!
//! | config | hive-monitor |
//! |---|---|
//! | `channels.<name>: { kind: slack, webhook }` | [`SlackChannel::new`] |
//! | `kind: email`: `host`, `port`, `security`, `username` + `password`, `from`, `to`, `timeout` | [`EmailChannel::builder`] and its methods of those names (`credentials` for the login); the port defaults to 465 / 587 / 25 by `security` in the builder; the channel's attempt timeout is raised to the channel's own bound on a delivery ([`EmailChannel::delivery_timeout`], three times `timeout`) when that is longer than the default 10 s, so that the channel's bound decides |
//! | `kind: webhook`: `url`, `signing_key` | [`WebhookChannel::new`], [`WebhookChannel::signing_key`] |
//! | `kind: log` | [`LogChannel`] |
//! | `rules[]`: `name`, `condition`, `severity`, `notify`, `escalate: { after, severity, notify }` | [`Rule::new`], [`Rule::severity`], [`Rule::notify`], [`Rule::escalate`] |
//! | `condition` | [`alert::Condition`], variant for variant, field for field; windows `1m` / `5m` / `1h` → [`Window`]; `p50` / `p95` / `p99` → [`Percentile`] |
//! | `group_wait`, `group_interval`, `repeat_interval`, `evaluation_interval`, `dashboard_url` | the builder's methods of those names |
//! | the gateway's routes | [`AlertManagerBuilder::route`], for `route_down` and silences by route |
//! | `server.shutdown_grace` (or any) | [`AlertManagerBuilder::shutdown_grace`] |
//!
//! An email channel's `timeout` bounds the connection, and three times it a whole delivery
//! (hive-monitor's [`EmailChannel::delivery_timeout`]): a server that connects and then
//! stalls is given up on within it.
//!
//! Every channel keeps hive-monitor's delivery defaults (queue, rate limit, retries,
//! breaker): the config has no setting for them. `availability` reads the routes as the
//! monitor records them ([`Monitor::route`](hive_monitor::Monitor::route)), so the gateway
//! must record each request of a route there.
//!
//! Secrets ([`Secret::expose`](hive_config::Secret::expose)) are handed to hive-monitor's
//! channels, whose `Debug` output, errors and logs never show them; neither does
//! [`AlertSetupError`].

use std::{collections::BTreeSet, time::Duration};

use hive_config::{
    AlertWindow, AlertsConfig, ChannelConfig, EmailConfig, LatencyPercentile, RuleConfig,
};
use hive_monitor::alert::{
    self, AlertError, AlertManager, AlertManagerBuilder, Channel, EmailChannel, LogChannel,
    Percentile, Rule, Severity, SlackChannel, SmtpSecurity, WebhookChannel, Window,
};

/// hive-monitor's default attempt timeout of a channel ([`Channel::attempt_timeout`]).
const CHANNEL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the alerting a config asks for cannot be set up. Names the channel, rule or route at
/// fault and what is wrong with it, never a secret's value (a webhook URL, a password, a
/// signing key).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertSetupError {
    /// hive-monitor refused a channel's settings (a URL that is not one, an address that
    /// is not a mailbox, a signing key too short, a login half given).
    #[error("alert channel `{channel}` ({kind}): {reason}")]
    Channel {
        /// The channel's name under `alerts.channels`.
        channel: String,
        /// Its kind: `slack`, `email`, `webhook` or `log`.
        kind: &'static str,
        /// What hive-monitor found wrong (it never carries a secret).
        reason: AlertError,
    },
    /// A rule notifies (itself, or once escalated) a channel that is not configured.
    #[error("alert rule `{rule}` notifies channel `{channel}`, which is not configured")]
    UnknownChannel {
        /// The rule.
        rule: String,
        /// The channel it names.
        channel: String,
    },
    /// A route given for the route-level conditions cannot be used.
    #[error("route `{route}` {problem}")]
    Route {
        /// The route's name.
        route: String,
        /// What is wrong: `has no model`, `is given twice`.
        problem: &'static str,
    },
}

/// Builds the alert manager a config asks for, or None when it has no rules (an empty
/// `rules:` means no alerting: hive-monitor would otherwise fall back to its own default
/// rules).
///
/// `routes` are the gateway's routes (name, model names), for `route_down` and silences by
/// route; `shutdown_grace` is how long [`AlertManager::stop`] lets the channels deliver what
/// they have queued. Every channel is built here, so a bad channel setting is an
/// [`AlertSetupError`] now; the rules' thresholds and the timing are checked by
/// [`AlertManagerBuilder::start`] (the config loader has checked them already), whose
/// [`AlertError`] names the rule or setting at fault.
pub fn alert_manager(
    config: &AlertsConfig,
    routes: &[(String, Vec<String>)],
    shutdown_grace: Duration,
) -> Result<Option<AlertManagerBuilder>, AlertSetupError> {
    if config.rules.is_empty() {
        return Ok(None);
    }
    let mut builder = AlertManager::builder()
        .group_wait(config.group_wait)
        .group_interval(config.group_interval)
        .repeat_interval(config.repeat_interval)
        .evaluation_interval(config.evaluation_interval)
        .shutdown_grace(shutdown_grace);
    if let Some(url) = &config.dashboard_url {
        builder = builder.dashboard_url(url.clone());
    }
    for (name, settings) in &config.channels {
        builder = builder.channel(name.clone(), channel(name, settings)?);
    }
    for settings in &config.rules {
        let escalated = settings.escalate.iter().flat_map(|e| e.notify.iter());
        if let Some(missing) = settings
            .notify
            .iter()
            .chain(escalated)
            .find(|name| !config.channels.contains_key(*name))
        {
            return Err(AlertSetupError::UnknownChannel {
                rule: settings.name.clone(),
                channel: missing.clone(),
            });
        }
        builder = builder.rule(rule(settings));
    }
    let mut seen = BTreeSet::new();
    for (route, models) in routes {
        let problem = if models.is_empty() {
            Some("has no model")
        } else if !seen.insert(route.as_str()) {
            Some("is given twice")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(AlertSetupError::Route {
                route: route.clone(),
                problem,
            });
        }
        builder = builder.route(route.clone(), models.iter().map(String::as_str));
    }
    Ok(Some(builder))
}

/// The channel `alerts.channels.<name>` describes, with hive-monitor's delivery defaults.
pub fn channel(name: &str, config: &ChannelConfig) -> Result<Channel, AlertSetupError> {
    let refused = |reason: AlertError| AlertSetupError::Channel {
        channel: name.to_owned(),
        kind: config.kind(),
        reason,
    };
    let channel = match config {
        ChannelConfig::Slack { webhook } => {
            Channel::from(SlackChannel::new(webhook.expose()).map_err(refused)?)
        }
        ChannelConfig::Email(email) => {
            let email = email_channel(email).map_err(refused)?;
            let bound = email.delivery_timeout().max(CHANNEL_ATTEMPT_TIMEOUT);
            Channel::from(email).attempt_timeout(bound)
        }
        ChannelConfig::Webhook { url, signing_key } => {
            let mut webhook = WebhookChannel::new(url.expose()).map_err(refused)?;
            if let Some(key) = signing_key {
                webhook = webhook.signing_key(key.expose()).map_err(refused)?;
            }
            Channel::from(webhook)
        }
        ChannelConfig::Log => Channel::from(LogChannel::new()),
    };
    Ok(channel)
}

fn email_channel(config: &EmailConfig) -> Result<EmailChannel, AlertError> {
    let mut builder = EmailChannel::builder(config.host.clone())
        .security(match config.security {
            hive_config::SmtpSecurity::ImplicitTls => SmtpSecurity::ImplicitTls,
            hive_config::SmtpSecurity::StartTls => SmtpSecurity::StartTls,
            hive_config::SmtpSecurity::Plain => SmtpSecurity::Plain,
        })
        .from(config.from.clone())
        .timeout(config.timeout);
    // Without a port, the builder's default for the security: 465, 587 or 25.
    if let Some(port) = config.port {
        builder = builder.port(port);
    }
    for to in &config.to {
        builder = builder.to(to.clone());
    }
    builder = match (&config.username, &config.password) {
        (Some(username), Some(password)) => {
            builder.credentials(username.clone(), password.expose())
        }
        (None, None) => builder,
        (Some(_), None) => return Err(half_login("email.password", "a username")),
        (None, Some(_)) => return Err(half_login("email.username", "a password")),
    };
    builder.build()
}

fn half_login(field: &'static str, given: &str) -> AlertError {
    AlertError::Invalid {
        field,
        problem: format!("{given} is given without it: give both, or neither"),
    }
}

/// The rule a `rules[]` entry describes.
pub fn rule(config: &RuleConfig) -> Rule {
    let rule = Rule::new(config.name.clone(), condition(&config.condition))
        .severity(severity(config.severity))
        .notify(config.notify.iter().map(String::as_str));
    match &config.escalate {
        Some(escalation) => rule.escalate(
            escalation.after,
            severity(escalation.severity),
            escalation.notify.iter().map(String::as_str),
        ),
        None => rule,
    }
}

/// hive-monitor's condition for a config's, variant for variant and field for field.
pub fn condition(config: &hive_config::Condition) -> alert::Condition {
    use hive_config::Condition as C;
    match *config {
        C::ConsecutiveFailures { at_least } => alert::Condition::ConsecutiveFailures { at_least },
        C::FailureRate {
            above,
            window: w,
            min_calls,
        } => alert::Condition::FailureRate {
            above,
            window: window(w),
            min_calls,
        },
        C::BreakerOpen => alert::Condition::BreakerOpen,
        C::BreakerStuckOpen { longer_than } => alert::Condition::BreakerStuckOpen { longer_than },
        C::RouteDown => alert::Condition::RouteDown,
        C::ConfigRejected => alert::Condition::ConfigRejected,
        C::ClusterLinkDown => alert::Condition::ClusterLinkDown,
        C::IdentityMismatch { window: w } => {
            alert::Condition::IdentityMismatch { window: window(w) }
        }
        C::CredentialsRejected { quiet_for } => alert::Condition::CredentialsRejected { quiet_for },
        C::Latency {
            percentile: p,
            above,
            window: w,
            min_calls,
        } => alert::Condition::Latency {
            percentile: percentile(p),
            above,
            window: window(w),
            min_calls,
        },
        C::Availability {
            below,
            window: w,
            min_requests,
        } => alert::Condition::Availability {
            below,
            window: window(w),
            min_requests,
        },
    }
}

fn severity(severity: hive_config::Severity) -> Severity {
    match severity {
        hive_config::Severity::Info => Severity::Info,
        hive_config::Severity::Warning => Severity::Warning,
        hive_config::Severity::Critical => Severity::Critical,
    }
}

fn window(window: AlertWindow) -> Window {
    match window {
        AlertWindow::LastMinute => Window::LastMinute,
        AlertWindow::Last5Minutes => Window::Last5Minutes,
        AlertWindow::LastHour => Window::LastHour,
    }
}

fn percentile(percentile: LatencyPercentile) -> Percentile {
    match percentile {
        LatencyPercentile::P50 => Percentile::P50,
        LatencyPercentile::P95 => Percentile::P95,
        LatencyPercentile::P99 => Percentile::P99,
    }
}
