//! From what a drill recorded to its figures and its verdicts against the scenario's
//! targets.

use std::{collections::BTreeMap, time::Duration};

use hive_core::CircuitState;
use serde::Serialize;

use crate::console::percentile;

use super::{
    scenario::{MODELS, Scenario},
    workload::{End, Sent},
};

/// Requests sent in the first second are left out of the baseline: connections are being
/// opened.
const WARM_UP: Duration = Duration::from_secs(1);
/// The window over which a model's share is judged after a heal, and the step it moves by.
const RECOVERY_WINDOW: Duration = Duration::from_millis(500);
const RECOVERY_STEP: Duration = Duration::from_millis(100);
/// A model is back when it serves this share of its baseline share again.
const NORMAL_SHARE: f64 = 0.9;

/// One attempt that reached (or was refused before) a model, as the gateway's attempt tap
/// told it.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptSeen {
    /// When it started, from the start of the run.
    pub at: Duration,
    /// The model.
    pub model: &'static str,
    /// Whether it reached the model (not refused by its breaker or health gate).
    pub reached: bool,
    /// Whether the model answered it well.
    pub succeeded: bool,
}

/// A breaker's change of state.
#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    /// When the drill heard of it, from the start of the run.
    pub at: Duration,
    /// The model.
    pub model: String,
    /// The new state.
    #[serde(serialize_with = "state_name")]
    pub to: CircuitState,
}

fn state_name<S: serde::Serializer>(state: &CircuitState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(breaker_label(*state))
}

/// A state's name, as the report writes it.
pub(super) fn breaker_label(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
        CircuitState::ForcedOpen => "forced_open",
        CircuitState::Disabled => "disabled",
        CircuitState::MetricsOnly => "metrics_only",
    }
}

/// CPU time per call, through the route's resilience stack and to the model's client
/// alone, in-process against a provider that answers at once.
#[derive(Clone, Debug, Serialize)]
pub struct Cpu {
    /// Calls measured each way.
    pub calls: u64,
    /// Microseconds of CPU per call to the client alone.
    pub bare_us: f64,
    /// Microseconds of CPU per call through the stack (router, health gate, retry,
    /// breaker, timeout, chaos switched off).
    pub stack_us: f64,
}

impl Cpu {
    /// What the stack adds, as a share of the bare call.
    pub fn overhead(&self) -> f64 {
        (self.stack_us - self.bare_us) / self.bare_us
    }
}

/// Everything a run recorded.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Every request.
    pub sent: Vec<Sent>,
    /// Every attempt on a model.
    pub attempts: Vec<AttemptSeen>,
    /// Every breaker transition.
    pub transitions: Vec<Transition>,
    /// The process's resident memory less the drill's own records, sampled each second:
    /// (when, bytes).
    pub memory: Vec<(Duration, u64)>,
    /// CPU per call, when measured.
    pub cpu: Option<Cpu>,
    /// Models not serving at the end of the run although their faults had ended: they
    /// would need an operator.
    pub stuck: Vec<String>,
    /// Faults the chaos layer injected.
    pub injected: u64,
    /// Requests sent that never ended (their client task died).
    pub lost: u64,
    /// Calls each chaos rule was tried on (every call of its model), sampled on the way:
    /// (when, per rule in the order of [`Scenario::chaos`]).
    pub chaos_calls: Vec<(Duration, Vec<u64>)>,
    /// Whether breaker transitions were missed (the drill's event receiver fell behind).
    pub events_lost: bool,
    /// Cut streams the gateway continued from another model.
    pub continued: u64,
    /// The longest a request left after its scheduled time (open loop).
    pub worst_lag: Duration,
}

/// Latency and pace of a set of requests.
#[derive(Clone, Debug, Serialize)]
pub struct Pace {
    /// Requests.
    pub requests: u64,
    /// Answered per second.
    pub answered_per_s: f64,
    /// Median latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

/// The time a model took to serve its share again after its fault ended.
#[derive(Clone, Debug, Serialize)]
pub struct Recovery {
    /// The model.
    pub model: String,
    /// When its fault ended, in seconds from the start.
    pub healed_at_s: f64,
    /// Seconds until it served its share again; `None`: not within the run.
    pub after_s: Option<f64>,
}

/// Attempts that reached a model while its breaker was open or trying it (from each
/// opening to the next closing), against its open periods, while its fault was on.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeCount {
    /// The model.
    pub model: String,
    /// Open periods (transitions to open) while the fault was on.
    pub open_periods: u64,
    /// Live attempts that reached the model while its breaker was not closed (a trial
    /// included), in all.
    pub attempts: u64,
    /// The most live attempts that reached it in one open period (from an opening to the
    /// next opening or closing, its half-open trial included).
    pub most_in_one_period: u64,
    /// Other calls that reached the model while its breaker was open: its health checks,
    /// which go on at their interval to see it heal (at least this many: counted from
    /// samples inside each period).
    pub checks_while_open: u64,
}

/// The figures of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// Requests sent.
    pub requests: u64,
    /// Answered whole and intact by a model.
    pub answered: u64,
    /// Given the route's degraded answer.
    pub degraded: u64,
    /// Failed (error status, broken stream, answer not intact).
    pub failed: u64,
    /// Not finished within `hung_after`.
    pub hung: u64,
    /// Sent, and never ended.
    pub lost: u64,
    /// Answered by model.
    pub answered_by: BTreeMap<String, u64>,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// Answered / requests.
    pub availability: f64,
    /// (Answered + degraded) / requests.
    pub served: f64,
    /// Requests affected by a fault: failed, hung, degraded, made to try more than one
    /// model, answered after more than twice the baseline's p99, or streams cut and
    /// continued by another model.
    pub affected: u64,
    /// Cut streams the gateway continued from another model.
    pub continued: u64,
    /// Requests answered after trying more than one model: what a failover costs them.
    pub failed_over: Option<Pace>,
    /// The longest a request left after its scheduled time, in milliseconds (open loop):
    /// above a few, the load generator fell behind and latencies include its delay.
    pub worst_send_lag_ms: f64,
    /// Affected / requests.
    pub affected_share: f64,
    /// Before any fault (after the first second).
    pub baseline: Option<Pace>,
    /// While a fault was on.
    pub during_faults: Option<Pace>,
    /// After each fault on a model that serves in normal times.
    pub recoveries: Vec<Recovery>,
    /// For each fault on one model whose breaker opened.
    pub probes: Vec<ProbeCount>,
    /// CPU per call with and without the stack.
    pub cpu: Option<Cpu>,
    /// Resident memory less the drill's own records, median of the second quarter of the
    /// run (the first warms up) and of the last, in MiB.
    pub memory_mib: Option<(f64, f64)>,
    /// Models an operator would have to look at.
    pub stuck: Vec<String>,
    /// Faults injected.
    pub injected: u64,
}

/// A target's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Met.
    Pass,
    /// Missed.
    Fail,
    /// Nothing to measure it on (never a pass).
    NoData,
}

impl Verdict {
    fn of(pass: Option<bool>) -> Self {
        match pass {
            Some(true) => Self::Pass,
            Some(false) => Self::Fail,
            None => Self::NoData,
        }
    }

    /// As the table writes it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::NoData => "NO DATA",
        }
    }
}

/// One line of the verdict table.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: &'static str,
    /// The target, as written.
    pub target: String,
    /// What the run measured, as written.
    pub measured: String,
    /// Met or not.
    pub verdict: Verdict,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn pace<'s>(requests: impl Iterator<Item = &'s Sent>, span: Duration) -> Option<Pace> {
    let mut latencies = Vec::new();
    let (mut count, mut answered) = (0u64, 0u64);
    for sent in requests {
        count += 1;
        if matches!(sent.end, End::Answered { .. }) {
            answered += 1;
            latencies.push(sent.latency);
        }
    }
    if latencies.is_empty() || span.is_zero() {
        return None;
    }
    latencies.sort_unstable();
    Some(Pace {
        requests: count,
        answered_per_s: answered as f64 / span.as_secs_f64(),
        p50_ms: ms(percentile(&latencies, 0.5)),
        p99_ms: ms(percentile(&latencies, 0.99)),
    })
}

fn within(at: Duration, windows: &[(Duration, Duration)]) -> bool {
    windows.iter().any(|&(from, to)| from <= at && at < to)
}

/// The figures of a run of `scenario`.
pub(super) fn figures(scenario: &Scenario, recorded: &Recorded) -> Figures {
    let sent = &recorded.sent;
    let windows = scenario.fault_windows();
    let baseline_end = windows.first().map_or(scenario.duration, |w| w.0);
    let in_baseline = |s: &&Sent| s.at >= WARM_UP && s.at < baseline_end;
    let baseline = pace(
        sent.iter().filter(in_baseline),
        baseline_end.saturating_sub(WARM_UP),
    );
    let fault_span: Duration = windows.iter().map(|(from, to)| *to - *from).sum();
    let during_faults = pace(sent.iter().filter(|s| within(s.at, &windows)), fault_span);

    let (mut answered, mut degraded, mut failed, mut hung) = (0, 0, 0, 0);
    let mut answered_by = BTreeMap::new();
    let mut failures = BTreeMap::new();
    let slow = baseline
        .as_ref()
        .map(|b| Duration::from_secs_f64(b.p99_ms * 2.0 / 1000.0));
    let mut affected = 0;
    for s in sent {
        let hit = match &s.end {
            End::Answered { model, attempts } => {
                answered += 1;
                *answered_by.entry((*model).to_owned()).or_insert(0) += 1;
                *attempts > 1 || slow.is_some_and(|slow| s.latency > slow)
            }
            End::Degraded => {
                degraded += 1;
                true
            }
            End::Failed { why } => {
                failed += 1;
                *failures.entry(why.clone()).or_insert(0) += 1;
                true
            }
            End::Hung => {
                hung += 1;
                *failures.entry("hung".to_owned()).or_insert(0) += 1;
                true
            }
        };
        if hit {
            affected += 1;
        }
    }
    // A continued stream kept the headers of the model that started it: it is counted
    // here, from the gateway's own count.
    affected += recorded.continued;
    let requests = sent.len() as u64;
    let memory_mib = memory_quarters(&recorded.memory);
    let failed_over = pace(
        sent.iter()
            .filter(|s| matches!(s.end, End::Answered { attempts, .. } if attempts > 1)),
        fault_span.max(Duration::from_secs(1)),
    );
    Figures {
        requests,
        answered,
        degraded,
        failed,
        hung,
        lost: recorded.lost,
        answered_by,
        failures,
        availability: share(answered, requests),
        served: share(answered + degraded, requests),
        affected,
        affected_share: share(affected.min(requests), requests),
        continued: recorded.continued,
        failed_over,
        worst_send_lag_ms: ms(recorded.worst_lag),
        baseline,
        during_faults,
        recoveries: recoveries(scenario, sent, baseline_end),
        probes: probes(scenario, recorded),
        cpu: recorded.cpu.clone(),
        memory_mib,
        stuck: recorded.stuck.clone(),
        injected: recorded.injected,
    }
}

/// The models a fault is on.
fn models_of(model: Option<&String>) -> Vec<String> {
    match model {
        Some(model) => vec![model.clone()],
        None => MODELS.iter().map(|m| (*m).to_owned()).collect(),
    }
}

fn recoveries(scenario: &Scenario, sent: &[Sent], baseline_end: Duration) -> Vec<Recovery> {
    let answered_by = |model: &str, from: Duration, to: Duration| {
        let (mut of_model, mut all) = (0u64, 0u64);
        for s in sent.iter().filter(|s| s.at >= from && s.at < to) {
            if let End::Answered { model: m, .. } = &s.end {
                all += 1;
                if *m == model {
                    of_model += 1;
                }
            }
        }
        (of_model, all)
    };
    let mut out = Vec::new();
    for fault in &scenario.faults {
        let Some(healed) = fault.healed_at(scenario.duration) else {
            continue;
        };
        if healed + 2 * RECOVERY_WINDOW > scenario.duration {
            continue; // not healed within the run
        }
        for model in models_of(fault.model.as_ref()) {
            let (of_model, all) = answered_by(&model, WARM_UP, baseline_end);
            let normal = share(of_model, all);
            if normal < 0.05 {
                continue; // a model that serves no share in normal times has none to regain
            }
            // Back at the end of the first half-second in which it serves its share, if
            // the half-second after holds too (one lucky window is not a recovery).
            let holds = |from: Duration| {
                let (of_model, all) = answered_by(&model, from, from + RECOVERY_WINDOW);
                all > 0 && share(of_model, all) >= NORMAL_SHARE * normal
            };
            let mut at = healed;
            let mut after = None;
            while at + 2 * RECOVERY_WINDOW <= scenario.duration {
                if holds(at) && holds(at + RECOVERY_WINDOW) {
                    after = Some((at + RECOVERY_WINDOW - healed).as_secs_f64());
                    break;
                }
                at += RECOVERY_STEP;
            }
            out.push(Recovery {
                model,
                healed_at_s: healed.as_secs_f64(),
                after_s: after,
            });
        }
    }
    out
}

fn probes(scenario: &Scenario, recorded: &Recorded) -> Vec<ProbeCount> {
    let mut out = Vec::new();
    if recorded.events_lost {
        return out; // transitions were missed: nothing to judge on
    }
    for (index, fault) in scenario.faults.iter().enumerate() {
        let Some(model) = &fault.model else { continue };
        let Some(healed) = fault.healed_at(scenario.duration) else {
            continue;
        };
        // Each open period of the model's breaker while the fault was on: from a
        // transition to open until the next to open or closed (the half-open trial that
        // ends it included).
        let mine: Vec<&Transition> = recorded
            .transitions
            .iter()
            .filter(|t| t.model == *model)
            .collect();
        let periods: Vec<(Duration, Duration)> = mine
            .iter()
            .enumerate()
            .filter(|(_, t)| t.to == CircuitState::Open && t.at >= fault.from && t.at < healed)
            .map(|(i, t)| {
                let end = mine[i + 1..]
                    .iter()
                    .find(|n| matches!(n.to, CircuitState::Open | CircuitState::Closed))
                    .map_or(healed, |n| n.at.min(healed));
                (t.at, end)
            })
            .collect();
        if periods.is_empty() {
            continue;
        }
        // A trial that succeeds closes the breaker: the attempts after it, which the drill
        // may see before it hears of the closing, are the model's normal traffic again.
        let per_period: Vec<u64> =
            periods
                .iter()
                .map(|&(from, to)| {
                    let mut seen = 0;
                    for a in recorded.attempts.iter().filter(|a| {
                        a.model == model.as_str() && a.reached && a.at > from && a.at < to
                    }) {
                        seen += 1;
                        if a.succeeded {
                            break;
                        }
                    }
                    seen
                })
                .collect();
        // Every call of the model reaches the fault's first rule: the difference of its
        // count over each open period, less the live attempts, is what else reached the
        // model then (its health checks). Samples inside each period only: a few checks at
        // its edges may be missed, live traffic outside it never counted.
        let first_rule = rules_before(scenario, index);
        let calls_at = |at: Duration, inside_after: bool| {
            let sample = if inside_after {
                recorded.chaos_calls.iter().find(|(t, _)| *t >= at)
            } else {
                recorded.chaos_calls.iter().rev().find(|(t, _)| *t <= at)
            };
            sample.and_then(|(t, calls)| Some((*t, *calls.get(first_rule)?)))
        };
        let checks = periods
            .iter()
            .zip(&per_period)
            .map(
                |(&(from, to), &live)| match (calls_at(from, true), calls_at(to, false)) {
                    (Some((t0, before)), Some((t1, after))) if t0 < t1 => {
                        after.saturating_sub(before).saturating_sub(live)
                    }
                    _ => 0,
                },
            )
            .sum::<u64>();
        out.push(ProbeCount {
            model: model.clone(),
            open_periods: periods.len() as u64,
            attempts: per_period.iter().sum(),
            most_in_one_period: per_period.iter().copied().max().unwrap_or(0),
            checks_while_open: checks,
        });
    }
    out
}

/// The median of the second quarter of the samples (the first is the warm-up: pools,
/// connections and the allocator's arenas fill) and of the last.
/// The index, in [`Scenario::chaos`]'s rules, of the first rule of fault `index`.
fn rules_before(scenario: &Scenario, index: usize) -> usize {
    scenario.faults[..index]
        .iter()
        .map(|f| f.windows(scenario.duration).len())
        .sum()
}

fn memory_quarters(samples: &[(Duration, u64)]) -> Option<(f64, f64)> {
    if samples.len() < 8 {
        return None;
    }
    let quarter = samples.len() / 4;
    let median = |part: &[(Duration, u64)]| {
        let mut values: Vec<u64> = part.iter().map(|s| s.1).collect();
        values.sort_unstable();
        values[values.len() / 2] as f64 / (1024.0 * 1024.0)
    };
    Some((
        median(&samples[quarter..2 * quarter]),
        median(&samples[samples.len() - quarter..]),
    ))
}

fn pct(value: f64) -> String {
    let text = format!("{:.3}", value * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// The verdict of every target the scenario sets, and of the two every drill holds to
/// (no request lost or hung; nothing left for an operator to do).
pub(super) fn checks(scenario: &Scenario, figures: &Figures) -> Vec<Check> {
    let targets = &scenario.targets;
    let mut checks = Vec::new();
    let mut check = |name, target: String, measured: String, pass: Option<bool>| {
        checks.push(Check {
            name,
            target,
            measured,
            verdict: Verdict::of(pass),
        });
    };
    let some = |requests: u64| (requests > 0).then_some(());
    if let Some(least) = targets.availability {
        check(
            "availability",
            format!("≥ {}", pct(least)),
            format!(
                "{} ({} of {})",
                pct(figures.availability),
                figures.answered,
                figures.requests
            ),
            some(figures.requests).map(|()| figures.availability >= least),
        );
    }
    if let Some(least) = targets.served {
        check(
            "served (answered or degraded)",
            format!("≥ {}", pct(least)),
            format!(
                "{} ({} answered, {} degraded)",
                pct(figures.served),
                figures.answered,
                figures.degraded
            ),
            some(figures.requests).map(|()| figures.served >= least),
        );
    }
    if let Some(most) = targets.recovery {
        let worst = figures
            .recoveries
            .iter()
            .map(|r| r.after_s.unwrap_or(f64::INFINITY))
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        let measured = match worst {
            None => "no fault healed on a serving model".to_owned(),
            Some(w) if w.is_finite() => format!("{w:.1} s (worst of {})", figures.recoveries.len()),
            Some(_) => "not within the run".to_owned(),
        };
        check(
            "recovery after a heal",
            format!("≤ {}", hive_config::format_duration(most)),
            measured,
            worst.map(|w| w <= most.as_secs_f64()),
        );
    }
    if let Some(most) = targets.affected {
        check(
            "operations affected",
            format!("< {}", pct(most)),
            format!(
                "{} ({} of {})",
                pct(figures.affected_share),
                figures.affected,
                figures.requests
            ),
            some(figures.requests).map(|()| figures.affected_share < most),
        );
    }
    let change = |during: f64, base: f64| (during - base) / base;
    let usable = |b: &Pace| b.p50_ms > 0.0 && b.answered_per_s > 0.0;
    let latency = |p: fn(&Pace) -> f64| {
        figures
            .baseline
            .as_ref()
            .filter(|b| usable(b))
            .zip(figures.during_faults.as_ref())
            .map(|(b, d)| (p(b), p(d), change(p(d), p(b))))
    };
    for (name, most, p) in [
        (
            "fallback latency p50",
            targets.fallback_p50,
            (|p: &Pace| p.p50_ms) as fn(&Pace) -> f64,
        ),
        ("fallback latency p99", targets.fallback_p99, |p: &Pace| {
            p.p99_ms
        }),
    ] {
        if let Some(most) = most {
            let seen = latency(p);
            check(
                name,
                format!("≤ +{}", pct(most)),
                seen.map_or("no baseline or no fault".to_owned(), |(b, d, c)| {
                    format!(
                        "{d:.1} ms vs {b:.1} ms ({}{})",
                        if c >= 0.0 { "+" } else { "" },
                        pct(c)
                    )
                }),
                seen.map(|(_, _, c)| c <= most),
            );
        }
    }
    if let Some(least) = targets.degraded_throughput {
        let kept = figures
            .baseline
            .as_ref()
            .filter(|b| usable(b))
            .zip(figures.during_faults.as_ref())
            .map(|(b, d)| {
                (
                    b.answered_per_s,
                    d.answered_per_s,
                    d.answered_per_s / b.answered_per_s,
                )
            });
        check(
            "throughput kept while degraded",
            format!("≥ {}", pct(least)),
            kept.map_or("no baseline or no fault".to_owned(), |(b, d, k)| {
                format!("{} ({d:.1}/s vs {b:.1}/s)", pct(k))
            }),
            kept.map(|(_, _, k)| k >= least),
        );
    }
    if let Some(most) = targets.cpu_overhead {
        check(
            "CPU overhead of the stack",
            format!("< {}", pct(most)),
            figures.cpu.as_ref().map_or("not measured".to_owned(), |c| {
                format!(
                    "{} ({:.1} µs vs {:.1} µs per call)",
                    pct(c.overhead()),
                    c.stack_us,
                    c.bare_us
                )
            }),
            figures
                .cpu
                .as_ref()
                .filter(|c| c.bare_us > 0.0)
                .map(|c| c.overhead() < most),
        );
    }
    if targets.probe_discipline {
        let measured = figures
            .probes
            .iter()
            .map(|p| {
                format!(
                    "{}: at most {} in each of {} open periods (and {} health checks, one per interval)",
                    p.model, p.most_in_one_period, p.open_periods, p.checks_while_open
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        check(
            "probe discipline",
            "≤ 1 live attempt per open period".to_owned(),
            if figures.probes.is_empty() {
                "no breaker opened (or its transitions were missed)".to_owned()
            } else {
                measured
            },
            (!figures.probes.is_empty())
                .then(|| figures.probes.iter().all(|p| p.most_in_one_period <= 1)),
        );
    }
    if let Some(most) = targets.memory_growth {
        let growth = figures
            .memory_mib
            .map(|(first, last)| (first, last, (last - first) / first));
        check(
            "memory flat",
            format!("≤ +{}", pct(most)),
            growth.map_or("too short to tell".to_owned(), |(f, l, g)| {
                format!(
                    "{f:.1} → {l:.1} MiB ({}{})",
                    if g >= 0.0 { "+" } else { "" },
                    pct(g)
                )
            }),
            growth.map(|(_, _, g)| g <= most),
        );
    }
    check(
        "no request lost or hung",
        "0".to_owned(),
        format!(
            "{} lost, {} hung of {}",
            figures.lost, figures.hung, figures.requests
        ),
        some(figures.requests).map(|()| figures.hung == 0 && figures.lost == 0),
    );
    check(
        "no manual action needed",
        "0".to_owned(),
        if figures.stuck.is_empty() {
            "0".to_owned()
        } else {
            format!(
                "{} not serving at the end: {}",
                figures.stuck.len(),
                figures.stuck.join(", ")
            )
        },
        Some(figures.stuck.is_empty()),
    );
    checks
}
