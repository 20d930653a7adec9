//! A drill's report as one self-contained page, in the look of `hive report`'s: the verdict
//! table, the figures, and timelines drawn as SVG — who served each second, failures,
//! latency, each breaker's state — with the faults' windows shaded across them.

use std::{collections::BTreeMap, fmt::Write as _};

use hive_core::CircuitState;
use hive_monitor::report::page::{PALETTE, STYLE, esc, fmt_tick, nice_axis};

use super::{DrillReport, MODELS, Verdict, measure::breaker_label};

const WIDTH: f64 = 1180.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 18.0;
const FAILED: &str = "#dc2626";
const DEGRADED: &str = "#94a3b8";
const FAULT_BAND: &str = "#fee2e2";

const EXTRA_STYLE: &str = r#"
.cards { grid-template-columns:repeat(5,1fr); }
.measured { white-space:normal; }
.fault { fill:#fee2e2; }
code { background:#f1f5f9; border-radius:4px; padding:1px 5px; font-size:12.5px; }
"#;

fn color(model: &str) -> &'static str {
    MODELS
        .iter()
        .position(|m| *m == model)
        .map_or(PALETTE[7], |i| PALETTE[i % PALETTE.len()])
}

fn state_color(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed | CircuitState::Disabled | CircuitState::MetricsOnly => "#86efac",
        CircuitState::Open | CircuitState::ForcedOpen => "#dc2626",
        CircuitState::HalfOpen => "#f59e0b",
    }
}

fn badge(verdict: Verdict) -> String {
    let class = match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::NoData => "nodata",
    };
    format!("<span class=\"badge {class}\">{}</span>", verdict.label())
}

/// The page.
pub(super) fn page(report: &DrillReport) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let scenario = &report.scenario;
    let figures = &report.figures;
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hive chaos run {name}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}{EXTRA_STYLE}</style></head><body><main>",
        name = esc(&scenario.name)
    );
    let passed = report.passed();
    let _ = write!(
        page,
        "<header><div class=\"eyebrow\">hive chaos run</div><h1>{name} {verdict}</h1><p class=\"period\">{description}</p><div class=\"cards\">",
        name = esc(&scenario.name),
        verdict = badge(if passed { Verdict::Pass } else { Verdict::Fail }),
        description = esc(scenario.description.trim()),
    );
    let card = |page: &mut String, k: &str, v: String, s: String| {
        let _ = write!(
            page,
            "<div class=\"card\"><div class=\"k\">{k}</div><div class=\"v\">{}</div><div class=\"s\">{}</div></div>",
            esc(&v),
            esc(&s)
        );
    };
    card(
        &mut page,
        "requests",
        figures.requests.to_string(),
        format!(
            "in {}{}",
            hive_config::format_duration(std::time::Duration::from_secs(
                scenario.duration.as_secs()
            )),
            if (report.scale - 1.0).abs() > f64::EPSILON {
                format!(" (scaled ×{})", report.scale)
            } else {
                String::new()
            }
        ),
    );
    card(
        &mut page,
        "availability",
        format!("{:.3}%", figures.availability * 100.0),
        format!("{} answered", figures.answered),
    );
    card(
        &mut page,
        "affected",
        format!("{:.3}%", figures.affected_share * 100.0),
        format!("{} requests", figures.affected),
    );
    card(
        &mut page,
        "faults injected",
        figures.injected.to_string(),
        match report.faults.len() {
            1 => "in 1 window".to_owned(),
            n => format!("in {n} windows"),
        },
    );
    card(
        &mut page,
        "not answered",
        (figures.failed + figures.degraded + figures.hung).to_string(),
        format!(
            "{} failed · {} degraded · {} hung",
            figures.failed, figures.degraded, figures.hung
        ),
    );
    page.push_str("</div></header>");

    page.push_str("<section><h2>Targets</h2><p class=\"note\">Each target the scenario sets, and the two every drill is held to. NO DATA is never a pass.</p><table><tr><th>target</th><th>goal</th><th>verdict</th><th>measured</th></tr>");
    for check in &report.checks {
        let _ = write!(
            page,
            "<tr><td class=\"name\">{}</td><td class=\"goal\">{}</td><td>{}</td><td class=\"measured\">{}</td></tr>",
            esc(check.name),
            esc(&check.target),
            badge(check.verdict),
            esc(&check.measured)
        );
    }
    page.push_str("</table></section>");

    page.push_str("<section><h2>Who served, each second</h2><p class=\"note\">Requests by the second they were sent, by the model that answered; degraded answers in grey, failures in red. Shaded: a fault is on.</p>");
    legend(&mut page);
    served_chart(&mut page, report);
    page.push_str("</section>");

    page.push_str("<section><h2>Latency, each second</h2><p class=\"note\">As the clients saw it, from the time each request was due (open loop: waiting to leave counts). p50 solid, p99 dashed.</p>");
    latency_chart(&mut page, report);
    page.push_str("</section>");

    page.push_str("<section><h2>Breakers</h2><p class=\"note\">Each model's breaker: closed green, half-open amber, open red.</p>");
    breaker_chart(&mut page, report);
    page.push_str("</section>");

    page.push_str("<section><h2>Faults</h2><table><tr><th class=\"n\">from</th><th class=\"n\">to</th><th>model</th><th>fault</th></tr>");
    for (from, to, what, model) in &report.faults {
        let _ = write!(
            page,
            "<tr><td class=\"n\">{from:.1} s</td><td class=\"n\">{to:.1} s</td><td>{}</td><td>{}</td></tr>",
            esc(model),
            esc(what)
        );
    }
    page.push_str("</table></section>");

    let _ = write!(
        page,
        "<footer>Reproduce: <code>hive chaos run scenarios/{}.yml{}</code>. Recovery: from a fault's end to the end of the first half-second in which its model serves {}% of its normal share, the next half-second too (in 0.1 s steps). Affected: failed, hung, degraded, made to try a second model, slower than twice the baseline's p99, or a stream cut and continued by another model. Probe discipline counts live attempts; health checks go on at their interval and are counted apart.</footer></main></body></html>",
        esc(&scenario.name),
        if (report.scale - 1.0).abs() > f64::EPSILON {
            format!(" --scale {}", report.scale)
        } else {
            String::new()
        },
        90
    );
    page
}

fn legend(page: &mut String) {
    page.push_str("<div class=\"legend\">");
    for model in MODELS {
        let _ = write!(
            page,
            "<span><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
            color(model),
            esc(model)
        );
    }
    let _ = write!(
        page,
        "<span><span class=\"sw\" style=\"background:{DEGRADED}\"></span>degraded</span><span><span class=\"sw\" style=\"background:{FAILED}\"></span>failed</span><span><span class=\"sw\" style=\"background:{FAULT_BAND}\"></span>fault on</span></div>"
    );
}

/// Plot geometry: x of a second, and the frame with fault bands and a y axis.
struct Frame {
    seconds: f64,
    top: f64,
    height: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (t / self.seconds)
    }

    fn open(&self, page: &mut String, total_height: f64, label: &str, report: &DrillReport) {
        let _ = write!(
            page,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {total_height}\" role=\"img\" aria-label=\"{}\">",
            esc(label)
        );
        for (from, to, what, model) in &report.faults {
            let (x0, x1) = (self.x(*from), self.x(*to));
            let width = (x1 - x0).max(1.0);
            // The band under the plot, and a strip above it that bars cannot hide.
            let _ = write!(
                page,
                "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\"/><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"4\" fill=\"{FAILED}\"><title>{}: {} from {from:.1} s to {to:.1} s</title></rect>",
                self.top,
                self.height,
                self.top - 6.0,
                esc(model),
                esc(what)
            );
        }
        // Time axis: about ten ticks.
        let (step, _) = nice_axis(self.seconds, 10.0);
        let bottom = self.top + self.height;
        let mut t = 0.0;
        while t <= self.seconds + 1e-9 {
            let x = self.x(t);
            let _ = write!(
                page,
                "<line x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#94a3b8\"/><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#64748b\">{} s</text>",
                bottom + 4.0,
                bottom + 16.0,
                fmt_tick(t, step)
            );
            t += step;
        }
    }

    fn y_axis(&self, page: &mut String, max: f64, unit: &str) -> f64 {
        let (step, top) = nice_axis(max, 4.0);
        let mut v = 0.0;
        while v <= top + 1e-9 {
            let y = self.top + self.height - self.height * v / top;
            let _ = write!(
                page,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e2e8f0\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#64748b\">{}{unit}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(v, step)
            );
            v += step;
        }
        top
    }
}

fn served_chart(page: &mut String, report: &DrillReport) {
    let frame = Frame {
        seconds: report.timeline.len().max(1) as f64,
        top: 10.0,
        height: 200.0,
    };
    frame.open(
        page,
        240.0,
        "requests per second by the model that answered",
        report,
    );
    let max = report
        .timeline
        .iter()
        .map(|s| (s.answered.values().sum::<u64>() + s.degraded + s.failed) as f64)
        .fold(1.0, f64::max);
    let top = frame.y_axis(page, max, "");
    let width = (frame.x(1.0) - frame.x(0.0)).max(1.0);
    for second in &report.timeline {
        let x = frame.x(second.t as f64);
        let mut y = frame.top + frame.height;
        let mut stack = |count: u64, fill: &str| {
            if count == 0 {
                return;
            }
            let h = frame.height * count as f64 / top;
            y -= h;
            let _ = write!(
                page,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{fill}\"/>",
                (width - 0.6).max(0.6)
            );
        };
        for model in MODELS {
            stack(
                second.answered.get(model).copied().unwrap_or(0),
                color(model),
            );
        }
        stack(second.degraded, DEGRADED);
        stack(second.failed, FAILED);
    }
    page.push_str("</svg>");
}

fn latency_chart(page: &mut String, report: &DrillReport) {
    let frame = Frame {
        seconds: report.timeline.len().max(1) as f64,
        top: 10.0,
        height: 180.0,
    };
    frame.open(page, 220.0, "latency per second, p50 and p99", report);
    let max = report
        .timeline
        .iter()
        .filter_map(|s| s.p99_ms)
        .fold(1.0, f64::max);
    let top = frame.y_axis(page, max, " ms");
    for (pick, dash) in [
        (
            (|s: &super::Second| s.p50_ms) as fn(&super::Second) -> Option<f64>,
            "",
        ),
        (|s: &super::Second| s.p99_ms, " stroke-dasharray=\"5 4\""),
    ] {
        let mut path = String::new();
        let mut pen_up = true;
        for second in &report.timeline {
            match pick(second) {
                Some(ms) => {
                    let x = frame.x(second.t as f64 + 0.5);
                    let y = frame.top + frame.height - frame.height * ms / top;
                    let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_up { "M" } else { "L" });
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let _ = write!(
            page,
            "<path d=\"{path}\" fill=\"none\" stroke=\"#0f172a\" stroke-width=\"1.6\"{dash}/>"
        );
    }
    page.push_str("</svg>");
}

fn breaker_chart(page: &mut String, report: &DrillReport) {
    let row = 26.0;
    let frame = Frame {
        seconds: report.timeline.len().max(1) as f64,
        top: 6.0,
        height: row * MODELS.len() as f64,
    };
    frame.open(
        page,
        frame.height + 34.0,
        "each breaker's state over the run",
        report,
    );
    let mut by_model: BTreeMap<&str, Vec<(f64, CircuitState)>> = BTreeMap::new();
    for t in &report.transitions {
        by_model
            .entry(t.model.as_str())
            .or_default()
            .push((t.at.as_secs_f64(), t.to));
    }
    for (i, model) in MODELS.iter().enumerate() {
        let y = frame.top + row * i as f64 + 4.0;
        let mut changes = vec![(0.0, CircuitState::Closed)];
        changes.extend(by_model.get(model).cloned().unwrap_or_default());
        for (j, (from, state)) in changes.iter().enumerate() {
            let to = changes.get(j + 1).map_or(frame.seconds, |c| c.0);
            let (x0, x1) = (frame.x(*from), frame.x(to.min(frame.seconds)));
            let _ = write!(
                page,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} from {from:.1} s</title></rect>",
                (x1 - x0).max(0.8),
                row - 8.0,
                state_color(*state),
                esc(model),
                breaker_label(*state)
            );
        }
        let _ = write!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#0f172a\">{}</text>",
            LEFT - 6.0,
            y + row / 2.0,
            esc(model.split('-').next().unwrap_or(model))
        );
    }
    page.push_str("</svg>");
}
