//! Silences: mute the alerts that match, until they expire. The API the admin routes call:
//! [`Silences::add`], [`Silences::list`], [`Silences::expire`].

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::ModelId;
use serde::Serialize;
use tokio::time::Instant;

use crate::alert::{
    error::AlertError,
    types::{SilenceId, Subject, Timestamp},
};

/// The longest silence: 90 days.
pub const MAX_SILENCE: Duration = Duration::from_secs(90 * 86_400);

/// Expired silences kept for [`Silences::list`] (the oldest go first).
const EXPIRED_KEPT: usize = 100;

/// What a new silence matches, for how long, and who asked. Every matcher given must match;
/// at least one is needed.
///
/// ```
/// use std::time::Duration;
/// use hive_monitor::alert::SilenceSpec;
///
/// let spec = SilenceSpec::new(Duration::from_secs(3600))
///     .model("gpt-4o")
///     .created_by("ops@example.com")
///     .comment("provider maintenance until 14:00");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct SilenceSpec {
    /// Only alerts of this rule.
    pub rule: Option<String>,
    /// Only alerts about this model.
    pub model: Option<String>,
    /// Only alerts about this route, or about one of its models.
    pub route: Option<String>,
    /// How long it lasts from now (above zero, at most [`MAX_SILENCE`]).
    pub duration: Duration,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

impl SilenceSpec {
    /// A silence of `duration` that matches nothing yet.
    pub fn new(duration: Duration) -> Self {
        Self {
            duration,
            ..Self::default()
        }
    }

    /// Matches only alerts of `rule`.
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Matches only alerts about `model`.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Matches only alerts about `route` or one of its models.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// Who created it.
    pub fn created_by(mut self, who: impl Into<String>) -> Self {
        self.created_by = who.into();
        self
    }

    /// Why.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = comment.into();
        self
    }
}

/// Whether a silence still mutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// It mutes the alerts it matches.
    Active,
    /// It ran out, or was expired.
    Expired,
}

/// A silence, as [`Silences::list`] shows it (serialisable for the admin API).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Silence {
    /// Its id.
    pub id: SilenceId,
    /// Active or expired.
    pub state: SilenceState,
    /// The rule it matches, if it names one.
    pub rule: Option<String>,
    /// The model it matches, if it names one.
    pub model: Option<String>,
    /// The route it matches, if it names one.
    pub route: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was created.
    pub starts_at: Timestamp,
    /// When it ends (or ended).
    pub ends_at: Timestamp,
    /// What is left of it (zero once expired).
    #[serde(rename = "expires_in_seconds", serialize_with = "seconds")]
    pub expires_in: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug)]
struct Entry {
    silence: Silence,
    /// When it ends, in tokio time.
    ends: Instant,
}

impl Entry {
    fn active(&self, now: Instant) -> bool {
        now < self.ends
    }

    fn view(&self, now: Instant) -> Silence {
        let mut silence = self.silence.clone();
        silence.expires_in = self.ends.saturating_duration_since(now);
        silence.state = if self.active(now) {
            SilenceState::Active
        } else {
            SilenceState::Expired
        };
        silence
    }

    /// Whether it matches an alert of `rule` about `subject` (`routes`: the routes' models).
    fn matches(
        &self,
        rule: &str,
        subject: &Subject,
        routes: &BTreeMap<String, Vec<ModelId>>,
    ) -> bool {
        let s = &self.silence;
        if s.rule.as_deref().is_some_and(|r| r != rule) {
            return false;
        }
        if let Some(model) = &s.model
            && subject.model().is_none_or(|m| m.as_str() != model)
        {
            return false;
        }
        if let Some(route) = &s.route {
            let hit = match subject {
                Subject::Route(r) => r == route,
                Subject::Model(m) => routes.get(route).is_some_and(|models| models.contains(m)),
                Subject::Config | Subject::Cluster => false,
            };
            if !hit {
                return false;
            }
        }
        true
    }
}

#[derive(Debug, Default)]
struct Store {
    next: u64,
    entries: Vec<Entry>,
}

impl Store {
    /// Forgets the oldest expired silences beyond [`EXPIRED_KEPT`].
    fn prune(&mut self, now: Instant) {
        let expired = self.entries.iter().filter(|e| !e.active(now)).count();
        let mut excess = expired.saturating_sub(EXPIRED_KEPT);
        if excess > 0 {
            // Entries are in creation order: the first expired ones are the oldest.
            self.entries.retain(|e| {
                if excess > 0 && !e.active(now) {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }
}

/// The silences of an [`AlertManager`](crate::alert::AlertManager): add, list, expire.
/// Cheap to clone (hand one to the admin routes); every clone sees the same silences.
///
/// A silence mutes the alerts it matches at every notification while it is active: a
/// muted alert is not sent, and a channel told of it before is not told again until the
/// silence ends (then, at the group's next flush, it is sent as usual).
#[derive(Clone, Default)]
pub struct Silences {
    store: Arc<RwLock<Store>>,
}

impl Silences {
    /// Adds a silence; answers it with its id.
    pub fn add(&self, spec: SilenceSpec) -> Result<Silence, AlertError> {
        if spec.rule.is_none() && spec.model.is_none() && spec.route.is_none() {
            return Err(AlertError::EmptySilence);
        }
        if spec.duration.is_zero() || spec.duration > MAX_SILENCE {
            return Err(AlertError::invalid(
                "silence.duration",
                format!("{:?} is not above zero and at most 90 days", spec.duration),
            ));
        }
        let now = Instant::now();
        let starts_at = Timestamp::now();
        let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
        store.next += 1;
        let entry = Entry {
            silence: Silence {
                id: SilenceId(store.next),
                state: SilenceState::Active,
                rule: spec.rule,
                model: spec.model,
                route: spec.route,
                created_by: spec.created_by,
                comment: spec.comment,
                starts_at,
                ends_at: Timestamp::from_unix_ms(
                    starts_at.unix_ms() + u64::try_from(spec.duration.as_millis()).unwrap_or(0),
                ),
                expires_in: spec.duration,
            },
            ends: now + spec.duration,
        };
        let view = entry.view(now);
        tracing::info!(
            silence = %view.id,
            rule = view.rule.as_deref().unwrap_or("*"),
            model = view.model.as_deref().unwrap_or("*"),
            route = view.route.as_deref().unwrap_or("*"),
            created_by = %view.created_by,
            for_ = ?spec.duration,
            "alert silence added"
        );
        store.entries.push(entry);
        store.prune(now);
        Ok(view)
    }

    /// Every silence, active ones first, newest first within each state.
    pub fn list(&self) -> Vec<Silence> {
        let now = Instant::now();
        let store = self.store.read().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<Silence> = store.entries.iter().rev().map(|e| e.view(now)).collect();
        list.sort_by_key(|s| s.state != SilenceState::Active);
        list
    }

    /// The silence of `id`.
    pub fn get(&self, id: SilenceId) -> Result<Silence, AlertError> {
        let now = Instant::now();
        let store = self.store.read().unwrap_or_else(|p| p.into_inner());
        store
            .entries
            .iter()
            .find(|e| e.silence.id == id)
            .map(|e| e.view(now))
            .ok_or(AlertError::UnknownSilence(id))
    }

    /// Ends the silence of `id` now (an expired one stays as it was); answers it.
    pub fn expire(&self, id: SilenceId) -> Result<Silence, AlertError> {
        let now = Instant::now();
        let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
        let entry = store
            .entries
            .iter_mut()
            .find(|e| e.silence.id == id)
            .ok_or(AlertError::UnknownSilence(id))?;
        if entry.active(now) {
            entry.ends = now;
            entry.silence.ends_at = Timestamp::now();
            tracing::info!(silence = %id, "alert silence expired");
        }
        Ok(entry.view(now))
    }

    /// Whether an active silence mutes an alert of `rule` about `subject`.
    pub(crate) fn mutes(
        &self,
        rule: &str,
        subject: &Subject,
        routes: &BTreeMap<String, Vec<ModelId>>,
        now: Instant,
    ) -> bool {
        let store = self.store.read().unwrap_or_else(|p| p.into_inner());
        store
            .entries
            .iter()
            .any(|e| e.active(now) && e.matches(rule, subject, routes))
    }
}

impl fmt::Debug for Silences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        let store = self.store.read().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("Silences")
            .field(
                "active",
                &store.entries.iter().filter(|e| e.active(now)).count(),
            )
            .field("kept", &store.entries.len())
            .finish()
    }
}
