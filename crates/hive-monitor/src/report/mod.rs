//! [`Report`]: what a history of per-minute figures says about a period — per model and for the fleet —
//! and the resilience targets checked against it, rendered as one self-contained HTML page
//! ([`Report::to_html`]), JSON ([`Report::to_json`]) or CSV ([`Report::to_csv`]).
//! The gateway's `hive report` prints one from its SQLite history.
//!
//! # The figures
//!
//! Every figure is computed from the minutes that *start* in the period
//! (`from_unix_ms..to_unix_ms`) and from the incidents
//! that overlap it. A figure with nothing to compute it from is `None` ("no data"), never 0.
//!
//! * **Requests** are attempts, as the history counts them: successes, failures, client
//!   errors and rejections (an attempt the caller dropped is not counted). A request that
//!   is retried or falls back to another model counts once per attempt.
//! * **Success rate**: successes / requests.
//! * **Availability of a model**: successes / (requests − client errors). A refused request
//!   (a client error) is not the model's fault; a rejection (its breaker open, the model
//!   unhealthy) counts against it. The minutes in which it answered at least one request
//!   well, out of the minutes it was asked, are given beside it (`minutes_answered` /
//!   `minutes_asked`).
//! * **Availability of the fleet** (overall): successes / (requests − client errors −
//!   rejected). The history holds no route-level figure (did the *request* end well after
//!   its fallbacks?), so this is the attempt-level share: a rejection is left out because
//!   the request moved on at once to the next model, but a failed attempt that a fallback
//!   then saved still counts as a failure — the figure errs on the low side.
//! * **Latency** percentiles (p50, p95, p99) of a model or of the fleet over the period are
//!   read from the merged latency sketches of its minutes (within 6.25%), never averaged
//!   from the minutes' percentiles. Answers only: successes and client errors.
//! * **MTTR** (mean time to recovery): the mean duration, start to end, of the incidents
//!   that have ended (an incident runs from a breaker opening to its closing). Open
//!   incidents are listed but not in the mean. **Downtime** is the incidents' time within
//!   the period (an open one runs to the period's end).
//!
//! # The targets
//!
//! | Target | Goal | Measured as |
//! |---|---|---|
//! | availability | > 99.9% | the fleet's availability (above) |
//! | recovery | < 30 s | the fleet's MTTR |
//! | blast radius | < 5% | failed attempts of the model that failed most / all attempts of the fleet |
//! | fallback latency | < +10% | p50 of the fleet's answers in the minutes with a failover / p50 in the minutes without, minus 1 |
//! | degraded throughput | > 90% | requests served per minute (successes) in the minutes an incident overlaps / in the other minutes |
//!
//! Throughput counts successes, not attempts: during an outage retries and fallbacks add
//! attempts (and rejections are nearly free), so attempts per minute would rise exactly when
//! service gets worse. Only the minutes with traffic (a row in the history) are compared.
//! A target with nothing to measure it by is [`Verdict::NoData`], not a pass.

mod html;

/// The building blocks of the report's page — its style sheet, model colours, escaping and
/// chart axes — for other pages in the same look (the gateway's drill reports).
pub mod page {
    pub use super::html::{PALETTE, STYLE, esc, fmt_tick, nice_axis};
}
mod time;

use std::{collections::BTreeMap, fmt::Write as _};

use hive_core::FailureClass;
use serde::Serialize;

use crate::rollup::{IncidentRecord, LatencySketch, MinuteRollup};

const MINUTE: u64 = 60_000;

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The period ends before it starts, or is empty.
    #[error("the period is empty: it must end after it starts (from {from}, to {to})")]
    Period {
        /// Its start, RFC 3339.
        from: String,
        /// Its end, RFC 3339.
        to: String,
    },
    /// The history holds nothing for the period.
    #[error(
        "the history holds nothing from {from} to {to}: no minute and no incident recorded \
         (was the gateway running with its history on, and is this its file?)"
    )]
    Empty {
        /// The period's start, RFC 3339.
        from: String,
        /// The period's end, RFC 3339.
        to: String,
    },
    /// The report cannot be serialised (not expected).
    #[error("cannot write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Figures of a model, or of the whole fleet, over the report's period. See the
/// [module docs](self) for how each is computed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Attempts counted (successes, failures, client errors, rejections).
    pub requests: u64,
    /// Attempts answered well.
    pub successes: u64,
    /// Failed attempts, every class together.
    pub failed: u64,
    /// Failed attempts by class (`rate_limited`, `timeout`, …).
    pub failures: BTreeMap<String, u64>,
    /// Attempts answered with a refusal of the request.
    pub client_errors: u64,
    /// Attempts refused before the model (open breaker, unhealthy).
    pub rejected: u64,
    /// successes / requests.
    pub success_rate: Option<f64>,
    /// A model's: successes / (requests − client errors); the fleet's: successes /
    /// (requests − client errors − rejected).
    pub availability: Option<f64>,
    /// Minutes with at least one request.
    pub minutes_asked: u64,
    /// Minutes with at least one success.
    pub minutes_answered: u64,
    /// Median latency of the answers over the period, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Requests that moved away from the model (for the fleet: failovers).
    pub failovers_from: u64,
    /// Requests that moved to the model.
    pub failovers_to: u64,
    /// Incidents overlapping the period.
    pub incidents: u64,
    /// Of those, the ones that have ended.
    pub incidents_ended: u64,
    /// Mean time to recovery of the ended incidents, in milliseconds.
    pub mttr_ms: Option<f64>,
    /// Incident time within the period, in milliseconds (summed over models for the
    /// fleet).
    pub downtime_ms: u64,
}

/// One model's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelReport {
    /// The model.
    pub model: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// Whether a target was met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Met.
    Pass,
    /// Missed.
    Fail,
    /// Nothing in the period to measure it by.
    NoData,
}

impl Verdict {
    /// `PASS`, `FAIL`, `NO DATA`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::NoData => "NO DATA",
        }
    }
}

/// A resilience target and how the period measured against it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// A stable name: `availability`, `recovery`, `blast_radius`, `fallback_latency`,
    /// `degraded_throughput`.
    pub id: &'static str,
    /// For people.
    pub name: &'static str,
    /// The goal, for people (`> 99.9%`).
    pub goal: &'static str,
    /// The threshold, in the unit of `value`.
    pub threshold: f64,
    /// What was measured: a ratio (0.999 is 99.9%), or seconds for `recovery`; `None` when
    /// nothing could be.
    pub value: Option<f64>,
    /// `value` for people (`99.95%`, `12.4 s`, `no data`).
    pub measured: String,
    /// Met, missed, or no data.
    pub verdict: Verdict,
    /// How it was measured, with the counts behind it.
    pub detail: String,
}

/// What the history says about a period: the fleet, each model, the targets, the incidents
/// and the minutes. Build it with [`checked`](Self::checked) (or
/// [`from_parts`](Self::from_parts)); render it with [`to_html`](Self::to_html),
/// [`to_json`](Self::to_json) or [`to_csv`](Self::to_csv).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The period's start, in milliseconds since the Unix epoch.
    pub from_unix_ms: u64,
    /// The period's end (excluded).
    pub to_unix_ms: u64,
    /// The period's start, RFC 3339.
    pub from: String,
    /// The period's end, RFC 3339.
    pub to: String,
    /// The whole fleet.
    pub overall: Figures,
    /// Each model, the busiest (most requests) first, then by name.
    pub models: Vec<ModelReport>,
    /// The targets, in the order of the module docs.
    pub targets: Vec<Target>,
    /// The incidents overlapping the period, by start.
    pub incidents: Vec<IncidentRecord>,
    /// The minutes, by minute then model (the series of the charts and of the CSV).
    pub minutes: Vec<MinuteRollup>,
}

/// a / b, or `None` when b is 0.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Sums figures and latencies.
#[derive(Default)]
struct Tally {
    sum: Option<MinuteRollup>,
    minutes_asked: u64,
    minutes_answered: u64,
}

impl Tally {
    fn add(&mut self, minute: &MinuteRollup) {
        match &mut self.sum {
            Some(sum) => sum.merge(minute),
            None => {
                let mut sum = MinuteRollup::new(0, "");
                sum.merge(minute);
                self.sum = Some(sum);
            }
        }
    }

    fn figures(&self, incidents: &[&IncidentRecord], from: u64, to: u64, fleet: bool) -> Figures {
        let empty = MinuteRollup::new(0, "");
        let sum = self.sum.as_ref().unwrap_or(&empty);
        let failed = sum.failed();
        let answerable = if fleet {
            sum.requests
                .saturating_sub(sum.client_errors)
                .saturating_sub(sum.rejected)
        } else {
            sum.requests.saturating_sub(sum.client_errors)
        };
        let ended: Vec<u64> = incidents
            .iter()
            .filter_map(|i| {
                i.ended_unix_ms
                    .map(|end| end.saturating_sub(i.started_unix_ms))
            })
            .collect();
        let mttr_ms = (!ended.is_empty())
            .then(|| ended.iter().map(|d| *d as f64).sum::<f64>() / ended.len() as f64);
        let downtime_ms = incidents
            .iter()
            .map(|i| {
                let end = i.ended_unix_ms.unwrap_or(to).min(to);
                end.saturating_sub(i.started_unix_ms.max(from))
            })
            .sum();
        Figures {
            requests: sum.requests,
            successes: sum.successes,
            failed,
            failures: sum.failures.clone(),
            client_errors: sum.client_errors,
            rejected: sum.rejected,
            success_rate: ratio(sum.successes, sum.requests),
            availability: ratio(sum.successes, answerable),
            minutes_asked: self.minutes_asked,
            minutes_answered: self.minutes_answered,
            p50_ms: sum.latency.quantile_ms(0.50),
            p95_ms: sum.latency.quantile_ms(0.95),
            p99_ms: sum.latency.quantile_ms(0.99),
            failovers_from: sum.failovers_from,
            failovers_to: sum.failovers_to,
            incidents: incidents.len() as u64,
            incidents_ended: ended.len() as u64,
            mttr_ms,
            downtime_ms,
        }
    }
}

impl Report {
    /// Computes the report of `from_unix_ms..to_unix_ms` from its minutes and incidents, or
    /// says why there is none: [`ReportError::Period`] when `to` is not after `from`,
    /// [`ReportError::Empty`] when there is neither a minute nor an incident.
    pub fn checked(
        from_unix_ms: u64,
        to_unix_ms: u64,
        minutes: Vec<MinuteRollup>,
        incidents: Vec<IncidentRecord>,
    ) -> Result<Report, ReportError> {
        Self::check_period(from_unix_ms, to_unix_ms)?;
        if minutes.is_empty() && incidents.is_empty() {
            return Err(ReportError::Empty {
                from: time::rfc3339(from_unix_ms),
                to: time::rfc3339(to_unix_ms),
            });
        }
        Ok(Self::from_parts(
            from_unix_ms,
            to_unix_ms,
            minutes,
            incidents,
        ))
    }

    /// [`ReportError::Period`] unless `to` is after `from`.
    pub fn check_period(from_unix_ms: u64, to_unix_ms: u64) -> Result<(), ReportError> {
        if to_unix_ms <= from_unix_ms {
            return Err(ReportError::Period {
                from: time::rfc3339(from_unix_ms),
                to: time::rfc3339(to_unix_ms),
            });
        }
        Ok(())
    }

    /// Computes the report of a period from its minutes and incidents (as the history
    /// answers them; minutes outside the period are left out).
    pub fn from_parts(
        from_unix_ms: u64,
        to_unix_ms: u64,
        mut minutes: Vec<MinuteRollup>,
        mut incidents: Vec<IncidentRecord>,
    ) -> Report {
        minutes.retain(|m| (from_unix_ms..to_unix_ms).contains(&m.minute_unix_ms));
        minutes.sort_by(|a, b| (a.minute_unix_ms, &a.model).cmp(&(b.minute_unix_ms, &b.model)));
        incidents.sort_by(|a, b| (a.started_unix_ms, &a.model).cmp(&(b.started_unix_ms, &b.model)));

        let mut fleet = Tally::default();
        let mut per_model: BTreeMap<&str, Tally> = BTreeMap::new();
        let mut by_minute: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for minute in &minutes {
            fleet.add(minute);
            let tally = per_model.entry(&minute.model).or_default();
            tally.add(minute);
            tally.minutes_asked += u64::from(minute.requests > 0);
            tally.minutes_answered += u64::from(minute.successes > 0);
            let fleet_minute = by_minute.entry(minute.minute_unix_ms).or_default();
            fleet_minute.0 += minute.requests;
            fleet_minute.1 += minute.successes;
        }
        fleet.minutes_asked = by_minute.values().filter(|(r, _)| *r > 0).count() as u64;
        fleet.minutes_answered = by_minute.values().filter(|(_, s)| *s > 0).count() as u64;
        for incident in &incidents {
            per_model.entry(&incident.model).or_default();
        }

        let all_incidents: Vec<&IncidentRecord> = incidents.iter().collect();
        let overall = fleet.figures(&all_incidents, from_unix_ms, to_unix_ms, true);
        let mut models: Vec<ModelReport> = per_model
            .iter()
            .map(|(model, tally)| {
                let own: Vec<&IncidentRecord> =
                    incidents.iter().filter(|i| i.model == *model).collect();
                ModelReport {
                    model: (*model).to_owned(),
                    figures: tally.figures(&own, from_unix_ms, to_unix_ms, false),
                }
            })
            .collect();
        // The busiest first.
        models.sort_by(|a, b| {
            b.figures
                .requests
                .cmp(&a.figures.requests)
                .then_with(|| a.model.cmp(&b.model))
        });
        let targets = targets(&overall, &models, &minutes, &incidents, to_unix_ms);
        Report {
            from_unix_ms,
            to_unix_ms,
            from: time::rfc3339(from_unix_ms),
            to: time::rfc3339(to_unix_ms),
            overall,
            models,
            targets,
            incidents,
            minutes,
        }
    }

    /// The target with this [`id`](Target::id).
    pub fn target(&self, id: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.id == id)
    }

    /// The figures of `model`.
    pub fn model(&self, model: &str) -> Option<&ModelReport> {
        self.models.iter().find(|m| m.model == model)
    }

    /// The report as pretty-printed JSON (the minutes without their latency sketches).
    pub fn to_json(&self) -> Result<String, ReportError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The minutes as CSV: a header, then one row per model per minute, by minute then model.
    /// Times in RFC 3339 and in milliseconds; latencies in milliseconds with three decimals,
    /// empty when the minute had no answer; one column per failure class.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from(
            "minute,minute_unix_ms,model,requests,successes,failed,client_errors,rejected,\
             p50_ms,p95_ms,p99_ms,failovers_from,failovers_to",
        );
        for class in FailureClass::ALL {
            csv.push(',');
            csv.push_str(class.as_str());
        }
        csv.push('\n');
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        for m in &self.minutes {
            let _ = write!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                time::rfc3339(m.minute_unix_ms),
                m.minute_unix_ms,
                csv_field(&m.model),
                m.requests,
                m.successes,
                m.failed(),
                m.client_errors,
                m.rejected,
                ms(m.p50_ms),
                ms(m.p95_ms),
                ms(m.p99_ms),
                m.failovers_from,
                m.failovers_to,
            );
            for class in FailureClass::ALL {
                let n = m.failures.get(class.as_str()).copied().unwrap_or(0);
                let _ = write!(csv, ",{n}");
            }
            csv.push('\n');
        }
        csv
    }

    /// The report as one self-contained HTML page: inline style, SVG charts, no script and
    /// nothing loaded from elsewhere.
    pub fn to_html(&self) -> String {
        html::render(self)
    }
}

/// A CSV field, quoted when it must be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `0.99952` → `99.952%` (three decimals above 99%, else one).
pub(crate) fn percent(value: f64) -> String {
    let pct = value * 100.0;
    if (99.0..100.0).contains(&pct) {
        format!("{:.3}%", (pct * 1000.0).floor() / 1000.0)
    } else {
        format!("{pct:.1}%")
    }
}

/// A duration in milliseconds for people: `850 ms`, `12.4 s`, `4 min 05 s`, `2 h 03 min`.
pub(crate) fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        let s = (ms / 1000.0).round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (ms / 60_000.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

fn verdict(value: Option<f64>, pass: impl Fn(f64) -> bool) -> Verdict {
    match value {
        None => Verdict::NoData,
        Some(v) if pass(v) => Verdict::Pass,
        Some(_) => Verdict::Fail,
    }
}

/// Whether an incident overlaps the minute starting at `minute`.
fn overlaps(incident: &IncidentRecord, minute: u64, to: u64) -> bool {
    let end = incident.ended_unix_ms.unwrap_or(to);
    incident.started_unix_ms < minute + MINUTE && end > minute
}

fn targets(
    overall: &Figures,
    models: &[ModelReport],
    minutes: &[MinuteRollup],
    incidents: &[IncidentRecord],
    to: u64,
) -> Vec<Target> {
    let no_data = || "no data".to_owned();

    // Availability of the fleet.
    let answerable = overall
        .requests
        .saturating_sub(overall.client_errors)
        .saturating_sub(overall.rejected);
    let availability = Target {
        id: "availability",
        name: "Availability",
        goal: "> 99.9%",
        threshold: 0.999,
        value: overall.availability,
        measured: overall.availability.map_or_else(no_data, percent),
        verdict: verdict(overall.availability, |v| v > 0.999),
        detail: format!(
            "fleet attempts answered well: {} of {} (requests − client errors − rejected; \
             no route-level figure in the history, so a failed attempt a fallback saved counts \
             as failed)",
            overall.successes, answerable
        ),
    };

    // Recovery.
    let mttr_s = overall.mttr_ms.map(|ms| ms / 1000.0);
    let recovery = Target {
        id: "recovery",
        name: "Recovery (MTTR)",
        goal: "< 30 s",
        threshold: 30.0,
        value: mttr_s,
        measured: overall.mttr_ms.map_or_else(no_data, duration),
        verdict: verdict(mttr_s, |v| v < 30.0),
        detail: format!(
            "mean duration of the {} ended incident(s), breaker open to closed ({} still open)",
            overall.incidents_ended,
            overall.incidents - overall.incidents_ended
        ),
    };

    // Blast radius: the model that failed most.
    let worst = models
        .iter()
        .max_by(|a, b| {
            a.figures
                .failed
                .cmp(&b.figures.failed)
                .then_with(|| b.model.cmp(&a.model))
        })
        .filter(|_| overall.requests > 0);
    let blast = worst.and_then(|w| ratio(w.figures.failed, overall.requests));
    let blast_radius = Target {
        id: "blast_radius",
        name: "Operations affected by one model's failure",
        goal: "< 5%",
        threshold: 0.05,
        value: blast,
        measured: blast.map_or_else(no_data, percent),
        verdict: verdict(blast, |v| v < 0.05),
        detail: match worst {
            Some(w) => format!(
                "failed attempts of the model that failed most ({}: {}) / all attempts ({})",
                w.model, w.figures.failed, overall.requests
            ),
            None => "no attempts in the period".to_owned(),
        },
    };

    // Latency in fallback: the fleet's minutes with and without a failover.
    let mut by_minute: BTreeMap<u64, (bool, LatencySketch)> = BTreeMap::new();
    for m in minutes {
        let entry = by_minute.entry(m.minute_unix_ms).or_default();
        entry.0 |= m.failovers_from > 0;
        entry.1.merge(&m.latency);
    }
    let (mut with, mut without) = (LatencySketch::default(), LatencySketch::default());
    let (mut n_with, mut n_without) = (0, 0);
    for (failover, sketch) in by_minute.values() {
        if *failover {
            with.merge(sketch);
            n_with += 1;
        } else {
            without.merge(sketch);
            n_without += 1;
        }
    }
    let (p50_with, p50_without) = (with.quantile_ms(0.5), without.quantile_ms(0.5));
    let increase = match (p50_with, p50_without) {
        (Some(w), Some(wo)) if wo > 0.0 => Some(w / wo - 1.0),
        _ => None,
    };
    let fallback_latency = Target {
        id: "fallback_latency",
        name: "Latency increase in fallback",
        goal: "< +10%",
        threshold: 0.10,
        value: increase,
        measured: increase.map_or_else(no_data, |v| {
            format!("{}{}", if v >= 0.0 { "+" } else { "−" }, percent(v.abs()))
        }),
        verdict: verdict(increase, |v| v < 0.10),
        detail: format!(
            "p50 of the answers in the {n_with} minute(s) with a failover ({}) vs the {n_without} \
             without ({}); percentiles within 6.25%",
            p50_with.map_or_else(no_data, duration),
            p50_without.map_or_else(no_data, duration)
        ),
    };

    // Throughput in degraded mode: served per minute, minutes with and without an incident.
    let fleet_minutes: BTreeMap<u64, u64> = minutes.iter().fold(BTreeMap::new(), |mut acc, m| {
        *acc.entry(m.minute_unix_ms).or_default() += m.successes;
        acc
    });
    let (mut in_sum, mut in_n, mut out_sum, mut out_n) = (0, 0_u64, 0, 0_u64);
    for (minute, served) in &fleet_minutes {
        if incidents.iter().any(|i| overlaps(i, *minute, to)) {
            in_sum += served;
            in_n += 1;
        } else {
            out_sum += served;
            out_n += 1;
        }
    }
    let rate_in = ratio(in_sum, in_n);
    let rate_out = ratio(out_sum, out_n);
    let throughput = match (rate_in, rate_out) {
        (Some(i), Some(o)) if o > 0.0 => Some(i / o),
        _ => None,
    };
    let per_minute = |v: Option<f64>| v.map_or_else(no_data, |v| format!("{v:.1}/min"));
    let degraded_throughput = Target {
        id: "degraded_throughput",
        name: "Throughput in degraded mode",
        goal: "> 90%",
        threshold: 0.90,
        value: throughput,
        measured: throughput.map_or_else(no_data, percent),
        verdict: verdict(throughput, |v| v > 0.90),
        detail: format!(
            "requests served (successes) per minute in the {in_n} minute(s) during an incident \
             ({}) vs the {out_n} outside ({})",
            per_minute(rate_in),
            per_minute(rate_out)
        ),
    };

    vec![
        availability,
        recovery,
        blast_radius,
        fallback_latency,
        degraded_throughput,
    ]
}
