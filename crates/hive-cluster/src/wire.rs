//! What replicas say to each other: one small JSON object per change, on one channel, and
//! the same object kept under a key (expiring with the hold) for replicas that join later.

use std::{
    borrow::Cow,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hive_core::{ApplyShared, ControlAction, MAX_RETRY_AFTER, SharedChange};
use serde::{Deserialize, Serialize};

/// The version of the format; a message of another is ignored.
const VERSION: u8 = 1;

/// A message larger than this is not read (a change is ~150 bytes).
pub(crate) const MAX_MESSAGE: usize = 4096;

/// The longest hold a message may ask for: longer breaks and waits are held this long, then
/// the replica's own breaker and checks decide (a buggy `Retry-After: 86400` cannot take a
/// model from the cluster for a day).
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(10 * 60);

/// The most time in transit subtracted from a hold: the sender already took off its own
/// queueing, delivery takes milliseconds, and the two hosts' clocks may disagree by more.
const MAX_TRANSIT: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, Deserialize)]
struct Message<'a> {
    v: u8,
    #[serde(borrow)]
    replica: Cow<'a, str>,
    /// When it was sent, in milliseconds since the Unix epoch (to subtract the time it
    /// took to arrive, when clocks allow).
    sent_ms: u64,
    #[serde(flatten, borrow)]
    change: Change<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Change<'a> {
    BreakerOpened {
        #[serde(borrow)]
        model: Cow<'a, str>,
        for_ms: u64,
    },
    BreakerClosed {
        #[serde(borrow)]
        model: Cow<'a, str>,
    },
    CoolDown {
        #[serde(borrow)]
        model: Cow<'a, str>,
        for_ms: u64,
    },
    Checked {
        #[serde(borrow)]
        model: Cow<'a, str>,
        ok: bool,
        latency_ms: u64,
        #[serde(default)]
        next_ms: u64,
    },
    Control {
        #[serde(borrow)]
        model: Cow<'a, str>,
        #[serde(borrow)]
        action: Cow<'a, str>,
    },
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `change` as `replica` sends it now.
pub(crate) fn encode(replica: &str, change: SharedChange) -> String {
    let change = match change {
        SharedChange::BreakerOpened { model, open_for } => Change::BreakerOpened {
            model: Cow::Borrowed(model.as_str()),
            for_ms: millis(open_for),
        },
        SharedChange::BreakerClosed { model } => Change::BreakerClosed {
            model: Cow::Borrowed(model.as_str()),
        },
        SharedChange::CoolDown { model, wait } => Change::CoolDown {
            model: Cow::Borrowed(model.as_str()),
            for_ms: millis(wait),
        },
        SharedChange::Checked {
            model,
            ok,
            latency,
            next,
        } => Change::Checked {
            model: Cow::Borrowed(model.as_str()),
            ok,
            latency_ms: millis(latency),
            next_ms: millis(next),
        },
        SharedChange::Control { model, action } => Change::Control {
            model: Cow::Borrowed(model.as_str()),
            action: Cow::Borrowed(action.as_str()),
        },
    };
    let message = Message {
        v: VERSION,
        replica: Cow::Borrowed(replica),
        sent_ms: now_ms(),
        change,
    };
    // A struct of strings and numbers always serialises.
    serde_json::to_string(&message).unwrap_or_default()
}

/// Why a message was not applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// This replica's own.
    Own,
    /// Not a message of this format (too large, not JSON, another version).
    Malformed,
    /// About a model this replica does not serve.
    UnknownModel,
    /// Its hold ended on the way.
    Expired,
}

/// The change `text` asks of this replica, with the hold left: `left` when the caller
/// knows it (a key's own expiry), else the hold less the time since it was sent.
pub(crate) fn decode(
    text: &[u8],
    own: &str,
    local: &dyn ApplyShared,
    left: Option<Duration>,
) -> Result<SharedChange, Skip> {
    if text.len() > MAX_MESSAGE {
        return Err(Skip::Malformed);
    }
    let message: Message<'_> = serde_json::from_slice(text).map_err(|_| Skip::Malformed)?;
    if message.v != VERSION {
        return Err(Skip::Malformed);
    }
    if message.replica == own {
        return Err(Skip::Own);
    }
    let elapsed = Duration::from_millis(now_ms().saturating_sub(message.sent_ms)).min(MAX_TRANSIT);
    let hold = |for_ms: u64| {
        let hold = Duration::from_millis(for_ms).min(MAX_HOLD);
        let rest = left.map_or_else(|| hold.saturating_sub(elapsed), |l| l.min(hold));
        if rest.is_zero() {
            Err(Skip::Expired)
        } else {
            Ok(rest)
        }
    };
    let known = |name: &str| local.model(name).ok_or(Skip::UnknownModel);
    Ok(match message.change {
        Change::BreakerOpened { model, for_ms } => SharedChange::BreakerOpened {
            model: known(&model)?,
            open_for: hold(for_ms)?,
        },
        Change::BreakerClosed { model } => SharedChange::BreakerClosed {
            model: known(&model)?,
        },
        Change::CoolDown { model, for_ms } => SharedChange::CoolDown {
            model: known(&model)?,
            wait: hold(for_ms)?,
        },
        Change::Checked {
            model,
            ok,
            latency_ms,
            next_ms,
        } => SharedChange::Checked {
            model: known(&model)?,
            ok,
            latency: Duration::from_millis(latency_ms).min(MAX_RETRY_AFTER),
            next: Duration::from_millis(next_ms).min(MAX_HOLD),
        },
        Change::Control { model, action } => SharedChange::Control {
            model: known(&model)?,
            action: ControlAction::by_operator_named(&action).ok_or(Skip::Malformed)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use hive_core::ModelId;

    use super::*;

    struct One;

    impl ApplyShared for One {
        fn apply(&self, _: SharedChange) -> Option<u64> {
            None
        }
        fn model(&self, name: &str) -> Option<ModelId> {
            (name == "gpt-4o").then(|| ModelId::new("gpt-4o"))
        }
        fn holding(&self) -> Vec<SharedChange> {
            Vec::new()
        }
        fn models(&self) -> Vec<ModelId> {
            vec![ModelId::new("gpt-4o")]
        }
    }

    #[test]
    fn a_change_round_trips_and_its_senders_own_and_strangers_are_skipped() {
        let model = ModelId::new("gpt-4o");
        let opened = SharedChange::BreakerOpened {
            model,
            open_for: Duration::from_secs(30),
        };
        let text = encode("a", opened);
        let SharedChange::BreakerOpened { open_for, .. } =
            decode(text.as_bytes(), "b", &One, None).unwrap()
        else {
            panic!("{text}")
        };
        assert!(open_for <= Duration::from_secs(30) && open_for > Duration::from_secs(29));
        assert_eq!(decode(text.as_bytes(), "a", &One, None), Err(Skip::Own));
        let closed = encode("a", SharedChange::BreakerClosed { model });
        assert_eq!(
            decode(closed.as_bytes(), "b", &One, None),
            Ok(SharedChange::BreakerClosed { model })
        );
        for change in [
            SharedChange::Control {
                model,
                action: hive_core::ControlAction::Drain,
            },
            SharedChange::Checked {
                model,
                ok: false,
                latency: Duration::from_millis(120),
                next: Duration::from_secs(30),
            },
        ] {
            let text = encode("a", change);
            assert_eq!(
                decode(text.as_bytes(), "b", &One, None),
                Ok(change),
                "{text}"
            );
        }
        let stranger = closed.replace("gpt-4o", "not-served");
        assert_eq!(
            decode(stranger.as_bytes(), "b", &One, None),
            Err(Skip::UnknownModel)
        );
    }

    #[test]
    fn hostile_or_stale_messages_are_refused_not_applied() {
        for text in [
            "not json",
            r#"{"v":2,"replica":"a","sent_ms":0,"kind":"breaker_closed","model":"gpt-4o"}"#,
            r#"{"v":1,"replica":"a","sent_ms":0,"kind":"explode","model":"gpt-4o"}"#,
            r#"{"v":1,"replica":"a","kind":"breaker_closed","model":"gpt-4o"}"#,
            r#"{"v":1,"replica":"a","sent_ms":0,"kind":"control","model":"gpt-4o","action":"explode"}"#,
            r#"{"v":1,"replica":"a","sent_ms":0,"kind":"control","model":"gpt-4o","action":"slow_start"}"#,
        ] {
            assert_eq!(
                decode(text.as_bytes(), "b", &One, None),
                Err(Skip::Malformed),
                "{text}"
            );
        }
        let huge = format!(
            r#"{{"v":1,"replica":"{}","sent_ms":0,"kind":"breaker_closed","model":"gpt-4o"}}"#,
            "a".repeat(MAX_MESSAGE)
        );
        assert_eq!(
            decode(huge.as_bytes(), "b", &One, None),
            Err(Skip::Malformed)
        );
        // Sent long ago by the sender's clock (or by a clock far behind): a second of transit
        // is taken off, no more.
        let stale = r#"{"v":1,"replica":"a","sent_ms":1000,"kind":"cool_down","model":"gpt-4o","for_ms":500}"#;
        assert_eq!(
            decode(stale.as_bytes(), "b", &One, None),
            Err(Skip::Expired)
        );
        // A key's own expiry wins over the sender's clock; a hold is capped.
        let long = r#"{"v":1,"replica":"a","sent_ms":1000,"kind":"cool_down","model":"gpt-4o","for_ms":999999999999}"#;
        assert_eq!(
            decode(long.as_bytes(), "b", &One, Some(Duration::from_secs(7))),
            Ok(SharedChange::CoolDown {
                model: ModelId::new("gpt-4o"),
                wait: Duration::from_secs(7)
            })
        );
        let recent = format!(
            r#"{{"v":1,"replica":"a","sent_ms":{},"kind":"cool_down","model":"gpt-4o","for_ms":86400000}}"#,
            now_ms()
        );
        assert_eq!(
            decode(recent.as_bytes(), "b", &One, None),
            Ok(SharedChange::CoolDown {
                model: ModelId::new("gpt-4o"),
                wait: MAX_HOLD
            }),
            "a day's wait is held ten minutes"
        );
    }
}
