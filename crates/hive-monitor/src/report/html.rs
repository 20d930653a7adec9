//! The report as one self-contained HTML page: an inline style sheet, tables, and SVG charts
//! drawn here (no script, nothing loaded from elsewhere).

use std::{collections::BTreeMap, fmt::Write as _};

use super::{
    Figures, MINUTE, Report, Verdict, duration, percent,
    time::{clock, day_clock, human},
};
use crate::rollup::MinuteRollup;

/// Model colours, in model order (red is kept for incidents).
pub const PALETTE: [&str; 8] = [
    "#2563eb", "#d97706", "#059669", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569",
];
/// At most this many points (buckets) across a chart: longer periods merge minutes.
const MAX_POINTS: u64 = 360;

/// The pages' style sheet (cards, sections, tables, verdict badges, charts).
pub const STYLE: &str = r#"
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --soft:#f8fafc; --pass:#15803d; --fail:#b91c1c; }
* { box-sizing: border-box; }
body { margin:0; background:#f1f5f9; color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1240px; margin:0 auto; padding:28px 28px 40px; }
header { background:#0f172a; color:#f8fafc; border-radius:12px; padding:22px 26px 24px; }
.eyebrow { font-size:12px; letter-spacing:.08em; text-transform:uppercase; color:#94a3b8; }
h1 { margin:4px 0 2px; font-size:26px; font-weight:650; }
.period { margin:0 0 18px; color:#cbd5e1; }
.cards { display:grid; grid-template-columns:repeat(6,1fr); gap:12px; }
.card { background:#1e293b; border-radius:9px; padding:11px 14px; }
.card .k { font-size:12px; color:#94a3b8; }
.card .v { font-size:22px; font-weight:650; font-variant-numeric:tabular-nums; margin-top:2px; }
.card .s { font-size:12px; color:#cbd5e1; }
section { background:#fff; border:1px solid var(--line); border-radius:12px; padding:18px 22px; margin-top:18px; }
h2 { font-size:17px; margin:0 0 4px; }
.note { color:var(--muted); font-size:12.5px; margin:0 0 12px; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th { text-align:left; font-size:12px; font-weight:600; color:var(--muted); border-bottom:1px solid var(--line); padding:6px 8px; white-space:nowrap; }
td { border-bottom:1px solid var(--line); padding:7px 8px; vertical-align:top; }
td.n, th.n { text-align:right; white-space:nowrap; }
tr.total td { font-weight:650; background:var(--soft); }
.badge { display:inline-block; white-space:nowrap; min-width:84px; text-align:center; border-radius:999px; padding:2px 10px; font-weight:700; font-size:12px; letter-spacing:.04em; }
.badge.pass { background:#dcfce7; color:var(--pass); border:1px solid #86efac; }
.badge.fail { background:#fee2e2; color:var(--fail); border:1px solid #fca5a5; }
.badge.nodata { background:#f1f5f9; color:#475569; border:1px dashed #94a3b8; }
.detail { color:var(--muted); font-size:12.5px; }
.measured { font-weight:650; white-space:nowrap; }
.sw { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:7px; vertical-align:0; }
.classes { font-size:12px; color:var(--muted); }
td.name, td.goal { white-space:nowrap; }
.legend { display:flex; flex-wrap:wrap; gap:16px; font-size:12.5px; margin:2px 0 6px; align-items:center; }
.legend svg { vertical-align:middle; margin-right:4px; }
svg.chart { width:100%; height:auto; display:block; }
svg text { font-family:inherit; }
footer { color:var(--muted); font-size:12.5px; margin-top:18px; padding:0 4px; }
footer dt { font-weight:650; color:var(--ink); margin-top:6px; }
footer dd { margin:0 0 0 0; }
.open { color:var(--fail); font-weight:650; }
"#;

/// Escapes text for HTML and SVG.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn opt_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), duration)
}

fn opt_pct(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), percent)
}

/// `12 345`-style thousands (thin spaces).
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

pub(super) fn render(report: &Report) -> String {
    let colors: BTreeMap<&str, &str> = report
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.model.as_str(), PALETTE[i % PALETTE.len()]))
        .collect();
    let mut page = String::with_capacity(64 * 1024);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>hive report · {} → {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&human(report.from_unix_ms)),
        esc(&human(report.to_unix_ms)),
    );
    header(&mut page, report);
    targets(&mut page, report);
    models(&mut page, report, &colors);
    charts(&mut page, report, &colors);
    incidents(&mut page, report, &colors);
    footer(&mut page);
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

fn header(page: &mut String, report: &Report) {
    let o = &report.overall;
    let met = report
        .targets
        .iter()
        .filter(|t| t.verdict == Verdict::Pass)
        .count();
    let measured = report
        .targets
        .iter()
        .filter(|t| t.verdict != Verdict::NoData)
        .count();
    let _ = write!(
        page,
        "<header>\n<div class=\"eyebrow\">hive-resilience · gateway report</div>\n\
         <h1>Resilience report</h1>\n\
         <p class=\"period\">{} → {} · {} · {} model(s) · {} minute(s) with traffic</p>\n\
         <div class=\"cards\">\n",
        esc(&human(report.from_unix_ms)),
        esc(&human(report.to_unix_ms)),
        esc(&duration((report.to_unix_ms - report.from_unix_ms) as f64)),
        report.models.len(),
        o.minutes_asked,
    );
    let cards = [
        (
            "Requests (attempts)".to_owned(),
            count(o.requests),
            format!(
                "{} failed · {} rejected",
                count(o.failed),
                count(o.rejected)
            ),
        ),
        (
            "Success rate".to_owned(),
            opt_pct(o.success_rate),
            format!("{} answered well", count(o.successes)),
        ),
        (
            "Fleet availability".to_owned(),
            opt_pct(o.availability),
            "excl. client errors, rejections".to_owned(),
        ),
        (
            "Latency p50".to_owned(),
            opt_ms(o.p50_ms),
            format!("p95 {} · p99 {}", opt_ms(o.p95_ms), opt_ms(o.p99_ms)),
        ),
        (
            "Incidents".to_owned(),
            o.incidents.to_string(),
            format!(
                "MTTR {} · {} failovers",
                opt_ms(o.mttr_ms),
                count(o.failovers_from)
            ),
        ),
        (
            "Targets met".to_owned(),
            format!("{met} / {}", report.targets.len()),
            format!("{} with no data", report.targets.len() - measured),
        ),
    ];
    for (key, value, sub) in cards {
        let _ = writeln!(
            page,
            "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div>\
             <div class=\"s\">{}</div></div>",
            esc(&key),
            esc(&value),
            esc(&sub)
        );
    }
    page.push_str("</div>\n</header>\n");
}

fn targets(page: &mut String, report: &Report) {
    page.push_str(
        "<section>\n<h2>Targets</h2>\n<p class=\"note\">The resilience targets, measured over the \
         period. A target with nothing to measure it by says NO DATA: it is not a pass.</p>\n\
         <table>\n<thead><tr><th>Verdict</th><th>Target</th><th>Goal</th><th class=\"n\">Measured</th>\
         <th>How it was measured</th></tr></thead>\n<tbody>\n",
    );
    for t in &report.targets {
        let (class, mark) = match t.verdict {
            Verdict::Pass => ("pass", "✓"),
            Verdict::Fail => ("fail", "✗"),
            Verdict::NoData => ("nodata", "–"),
        };
        let _ = writeln!(
            page,
            "<tr><td><span class=\"badge {class}\">{mark} {}</span></td><td>{}</td><td class=\"goal\">{}</td>\
             <td class=\"n measured\">{}</td><td class=\"detail\">{}</td></tr>",
            t.verdict.label(),
            esc(t.name),
            esc(t.goal),
            esc(&t.measured),
            esc(&t.detail)
        );
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}

fn swatch(color: Option<&str>) -> String {
    color.map_or_else(String::new, |c| {
        format!("<span class=\"sw\" style=\"background:{c}\"></span>")
    })
}

fn traffic_row(page: &mut String, name: &str, color: Option<&str>, f: &Figures, total: bool) {
    let classes = if f.failures.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = f
            .failures
            .iter()
            .map(|(class, n)| format!("{} {}", esc(class), count(*n)))
            .collect();
        format!(" <span class=\"classes\">({})</span>", list.join(" · "))
    };
    let _ = writeln!(
        page,
        "<tr{}><td class=\"name\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td>{}{classes}</td></tr>",
        if total { " class=\"total\"" } else { "" },
        swatch(color),
        esc(name),
        count(f.requests),
        opt_pct(f.success_rate),
        opt_pct(f.availability),
        f.minutes_answered,
        f.minutes_asked,
        count(f.client_errors),
        count(f.rejected),
        count(f.failed),
    );
}

fn latency_row(page: &mut String, name: &str, color: Option<&str>, f: &Figures, total: bool) {
    let _ = writeln!(
        page,
        "<tr{}><td class=\"name\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        if total { " class=\"total\"" } else { "" },
        swatch(color),
        esc(name),
        opt_ms(f.p50_ms),
        opt_ms(f.p95_ms),
        opt_ms(f.p99_ms),
        count(f.failovers_from),
        count(f.failovers_to),
        f.incidents,
        opt_ms(f.mttr_ms),
        if f.downtime_ms == 0 {
            "—".to_owned()
        } else {
            duration(f.downtime_ms as f64)
        },
    );
}

fn models(page: &mut String, report: &Report, colors: &BTreeMap<&str, &str>) {
    page.push_str(
        "<section>\n<h2>Models: traffic and outcomes</h2>\n<p class=\"note\">Requests are \
         attempts. Availability of a model: successes / (requests − client errors); of the fleet \
         (last row): successes / (requests − client errors − rejected). Minutes: answered at \
         least once well / asked.</p>\n\
         <table>\n<thead><tr><th>Model</th><th class=\"n\">Requests</th><th class=\"n\">Success rate</th>\
         <th class=\"n\">Availability</th><th class=\"n\">Minutes up</th><th class=\"n\">Client errors</th>\
         <th class=\"n\">Rejected</th><th>Failed (by class)</th></tr></thead>\n<tbody>\n",
    );
    for m in &report.models {
        let color = colors.get(m.model.as_str()).copied();
        traffic_row(page, &m.model, color, &m.figures, false);
    }
    traffic_row(page, "All models", None, &report.overall, true);
    page.push_str("</tbody>\n</table>\n</section>\n");
    page.push_str(
        "<section>\n<h2>Models: latency, failovers and incidents</h2>\n<p class=\"note\">\
         Percentiles of the answers (successes and client errors) over the whole period, read \
         from the merged latency sketches of its minutes (within 6.25%), not averaged. MTTR: \
         mean time from a breaker opening to its closing, ended incidents only.</p>\n\
         <table>\n<thead><tr><th>Model</th><th class=\"n\">p50</th><th class=\"n\">p95</th>\
         <th class=\"n\">p99</th><th class=\"n\">Failovers away</th><th class=\"n\">Failovers to</th>\
         <th class=\"n\">Incidents</th><th class=\"n\">MTTR</th><th class=\"n\">Downtime</th></tr></thead>\n<tbody>\n",
    );
    for m in &report.models {
        let color = colors.get(m.model.as_str()).copied();
        latency_row(page, &m.model, color, &m.figures, false);
    }
    latency_row(page, "All models", None, &report.overall, true);
    page.push_str("</tbody>\n</table>\n</section>\n");
}

fn incidents(page: &mut String, report: &Report, colors: &BTreeMap<&str, &str>) {
    page.push_str("<section>\n<h2>Incidents</h2>\n");
    if report.incidents.is_empty() {
        page.push_str("<p class=\"note\">No incident in the period.</p>\n</section>\n");
        return;
    }
    page.push_str(
        "<p class=\"note\">From a model's breaker opening (or being forced open) to its closing.</p>\n\
         <table>\n<thead><tr><th>Model</th><th>Started</th><th>Ended</th><th class=\"n\">Duration</th>\
         <th>Alert rule</th><th class=\"n\">Notifications</th></tr></thead>\n<tbody>\n",
    );
    for i in &report.incidents {
        let color = colors.get(i.model.as_str()).copied().unwrap_or("#475569");
        let (ended, lasted) = match i.ended_unix_ms {
            Some(end) => (
                esc(&human_seconds(end)),
                duration(end.saturating_sub(i.started_unix_ms) as f64),
            ),
            None => (
                "<span class=\"open\">still open</span>".to_owned(),
                format!(
                    "≥ {}",
                    duration(report.to_unix_ms.saturating_sub(i.started_unix_ms) as f64)
                ),
            ),
        };
        let _ = writeln!(
            page,
            "<tr><td><span class=\"sw\" style=\"background:{color}\"></span>{}</td><td>{}</td>\
             <td>{ended}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&i.model),
            esc(&human_seconds(i.started_unix_ms)),
            esc(&lasted),
            esc(i.rule.as_deref().unwrap_or("–")),
            i.notifications.unwrap_or(0)
        );
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}

/// `2025-05-01 12:03:04 UTC`.
fn human_seconds(unix_ms: u64) -> String {
    let day = human(unix_ms);
    format!("{} {} UTC", &day[..10], clock(unix_ms - unix_ms % 1000))
}

fn footer(page: &mut String) {
    page.push_str(
        "<footer>\n<dl>\n\
         <dt>Requests</dt><dd>Attempts, as the gateway's history counts them: a retried or \
         failed-over request counts once per attempt.</dd>\n\
         <dt>Availability</dt><dd>The history holds no route-level outcome, so the fleet's is \
         the share of attempts that ended well, rejections (the request moved on to another \
         model at once) and client errors left out; a failed attempt that a fallback then saved \
         still counts as failed.</dd>\n\
         <dt>Recovery (MTTR)</dt><dd>Mean time from an incident's start (breaker open) to its \
         end (breaker closed), ended incidents only.</dd>\n\
         <dt>Latency in fallback</dt><dd>p50 of all answers in the minutes with at least one \
         failover, against the p50 of the other minutes.</dd>\n\
         <dt>Degraded throughput</dt><dd>Requests served (successes) per minute in the minutes \
         an incident overlaps, against the other minutes with traffic.</dd>\n\
         </dl>\n<p>Generated by <code>hive report</code>.</p>\n</footer>\n",
    );
}

// ---- Charts ----------------------------------------------------------------------------

/// Chart geometry, in SVG units.
const WIDTH: f64 = 1180.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// The time span the charts show, cut in buckets of whole minutes.
struct Span {
    start: u64,
    end: u64,
    bucket_ms: u64,
}

impl Span {
    fn of(report: &Report) -> Self {
        let starts = report
            .minutes
            .iter()
            .map(|m| m.minute_unix_ms)
            .chain(report.incidents.iter().map(|i| i.started_unix_ms));
        let ends = report
            .minutes
            .iter()
            .map(|m| m.minute_unix_ms + MINUTE)
            .chain(
                report
                    .incidents
                    .iter()
                    .map(|i| i.ended_unix_ms.unwrap_or(report.to_unix_ms)),
            );
        let lo = starts
            .min()
            .unwrap_or(report.from_unix_ms)
            .max(report.from_unix_ms);
        let lo = lo - lo % MINUTE;
        let hi = ends
            .max()
            .unwrap_or(report.to_unix_ms)
            .min(report.to_unix_ms)
            .max(lo + MINUTE);
        let minutes = (hi - lo).div_ceil(MINUTE);
        let bucket_ms = minutes.div_ceil(MAX_POINTS).max(1) * MINUTE;
        let buckets = (hi - lo).div_ceil(bucket_ms);
        Self {
            start: lo,
            end: lo + buckets * bucket_ms,
            bucket_ms,
        }
    }

    fn buckets(&self) -> usize {
        ((self.end - self.start) / self.bucket_ms) as usize
    }

    fn bucket_of(&self, unix_ms: u64) -> Option<usize> {
        (self.start..self.end)
            .contains(&unix_ms)
            .then(|| ((unix_ms - self.start) / self.bucket_ms) as usize)
    }

    fn x(&self, unix_ms: u64) -> f64 {
        let t = unix_ms.clamp(self.start, self.end) - self.start;
        LEFT + (WIDTH - LEFT - RIGHT) * t as f64 / (self.end - self.start) as f64
    }

    fn bucket_start(&self, bucket: usize) -> u64 {
        self.start + bucket as u64 * self.bucket_ms
    }

    /// Minutes in a bucket (to turn counts into rates per minute).
    fn bucket_minutes(&self) -> f64 {
        (self.bucket_ms / MINUTE) as f64
    }
}

/// Each model's minutes merged per bucket: `[model][bucket]`.
fn bucketed(report: &Report, span: &Span) -> Vec<Vec<Option<MinuteRollup>>> {
    let index: BTreeMap<&str, usize> = report
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.model.as_str(), i))
        .collect();
    let mut series = vec![vec![None::<MinuteRollup>; span.buckets()]; report.models.len()];
    for minute in &report.minutes {
        let (Some(&model), Some(bucket)) = (
            index.get(minute.model.as_str()),
            span.bucket_of(minute.minute_unix_ms),
        ) else {
            continue;
        };
        match &mut series[model][bucket] {
            Some(sum) => sum.merge(minute),
            slot @ None => *slot = Some(minute.clone()),
        }
    }
    series
}

/// A round step for about `ticks` ticks up to `max`, and the axis' top (a multiple of it).
pub fn nice_axis(max: f64, ticks: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / ticks;
    let magnitude = 10_f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, (max / step).ceil() * step)
}

/// A tick's label, with as many decimals as its step needs.
pub fn fmt_tick(value: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{value:.0}")
    } else if step >= 0.1 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The frame of a chart: grid, y ticks, time axis, incident bands. Answers the plot's
/// bottom y and its height.
fn frame(
    svg: &mut String,
    report: &Report,
    span: &Span,
    height: f64,
    (y_top, y_step, y_unit): (f64, f64, &str),
    colors: &BTreeMap<&str, &str>,
) -> (f64, f64) {
    let bottom = height - BOTTOM;
    let plot = bottom - TOP;
    // Horizontal grid and y labels.
    let mut value = 0.0;
    while value <= y_top + y_step / 2.0 {
        let y = bottom - plot * value / y_top;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e2e8f0\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#64748b\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 7.0,
            y + 3.5,
            fmt_tick(value, y_step)
        );
        value += y_step;
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#64748b\" \
         transform=\"rotate(-90 {:.1} {:.1})\">{}</text>",
        14.0,
        TOP + plot / 2.0,
        14.0,
        TOP + plot / 2.0,
        esc(y_unit)
    );
    // Incident bands, under the data, with a label row each where they fit.
    let mut rows: Vec<f64> = Vec::new();
    for incident in &report.incidents {
        let start = incident.started_unix_ms.max(span.start);
        let end = incident.ended_unix_ms.unwrap_or(report.to_unix_ms);
        if end <= span.start || start >= span.end {
            continue;
        }
        let (x0, x1) = (span.x(start), span.x(end));
        let color = colors
            .get(incident.model.as_str())
            .copied()
            .unwrap_or("#475569");
        let _ = write!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot:.1}\" fill=\"#dc2626\" \
             fill-opacity=\"0.09\"/><line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" \
             stroke=\"#dc2626\" stroke-opacity=\"0.45\" stroke-dasharray=\"3 3\"/>",
            (x1 - x0).max(1.5)
        );
        let label = format!(
            "{} down {}",
            incident.model,
            incident.ended_unix_ms.map_or_else(
                || "(open)".to_owned(),
                |e| duration(e.saturating_sub(incident.started_unix_ms) as f64)
            )
        );
        let width = label.chars().count() as f64 * 6.0 + 16.0;
        // Near the right edge, the label ends there.
        let lx = x0.min(WIDTH - RIGHT - width).max(LEFT);
        let row = rows
            .iter()
            .position(|free| *free <= lx)
            .unwrap_or(rows.len());
        if row == rows.len() {
            rows.push(0.0);
        }
        rows[row] = lx + width;
        let y = TOP + 13.0 + row as f64 * 14.0;
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\" fill=\"#991b1b\">{}</text>",
            lx + 7.0,
            y - 3.5,
            lx + 13.0,
            esc(&label)
        );
    }
    // Time axis.
    let span_min = (span.end - span.start) / MINUTE;
    let step_min = [
        1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
    ]
    .into_iter()
    .find(|s| span_min / s <= 12)
    .unwrap_or(10080);
    let step = step_min * MINUTE;
    let days = span.end - span.start > 86_400_000;
    let mut tick = span.start.div_ceil(step) * step;
    while tick <= span.end {
        let x = span.x(tick);
        let label = if days { day_clock(tick) } else { clock(tick) };
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{bottom:.1}\" y2=\"{:.1}\" stroke=\"#94a3b8\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#64748b\">{}</text>",
            bottom + 4.0,
            bottom + 17.0,
            esc(&label)
        );
        tick += step;
    }
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\" stroke=\"#94a3b8\"/>\
         <line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" stroke=\"#94a3b8\"/>",
        WIDTH - RIGHT
    );
    (bottom, plot)
}

fn svg_open(svg: &mut String, height: f64, label: &str) {
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" xmlns=\"http://www.w3.org/2000/svg\" \
         role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
}

fn legend(page: &mut String, report: &Report, colors: &BTreeMap<&str, &str>, lines: bool) {
    page.push_str("<div class=\"legend\">");
    for m in &report.models {
        let color = colors.get(m.model.as_str()).copied().unwrap_or("#475569");
        let _ = write!(
            page,
            "<span><span class=\"sw\" style=\"background:{color}\"></span>{}</span>",
            esc(&m.model)
        );
    }
    if lines {
        page.push_str(
            "<span><svg width=\"26\" height=\"8\"><line x1=\"0\" x2=\"26\" y1=\"4\" y2=\"4\" \
             stroke=\"#334155\" stroke-width=\"2\"/></svg>p50</span>\
             <span><svg width=\"26\" height=\"8\"><line x1=\"0\" x2=\"26\" y1=\"4\" y2=\"4\" \
             stroke=\"#334155\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/></svg>p95</span>",
        );
    }
    page.push_str(
        "<span><span class=\"sw\" style=\"background:#fbe3e3;border:1px dashed #dc2626\"></span>\
         incident (breaker open)</span></div>\n",
    );
}

fn charts(page: &mut String, report: &Report, colors: &BTreeMap<&str, &str>) {
    if report.minutes.is_empty() && report.incidents.is_empty() {
        return;
    }
    let span = Span::of(report);
    let series = bucketed(report, &span);
    let per = if span.bucket_ms == MINUTE {
        "per minute".to_owned()
    } else {
        format!(
            "per minute, averaged over {}-minute buckets",
            span.bucket_ms / MINUTE
        )
    };
    let _ = write!(
        page,
        "<section>\n<h2>Latency</h2>\n<p class=\"note\">p50 and p95 of each model's answers {}; \
         the shaded bands are incidents.</p>\n",
        if span.bucket_ms == MINUTE {
            "per minute".to_owned()
        } else {
            format!("per {}-minute bucket", span.bucket_ms / MINUTE)
        }
    );
    legend(page, report, colors, true);
    latency_chart(page, report, &span, &series, colors);
    page.push_str("</section>\n");

    let _ = write!(
        page,
        "<section>\n<h2>Requests by model</h2>\n<p class=\"note\">Attempts {per}, stacked.</p>\n"
    );
    legend(page, report, colors, false);
    bars_chart(
        page,
        report,
        &span,
        &series,
        colors,
        |m| m.requests,
        "requests / min",
    );
    page.push_str("</section>\n");

    let _ = write!(
        page,
        "<section>\n<h2>Failed and rejected attempts by model</h2>\n<p class=\"note\">Failures \
         (every class) and rejections (breaker open, model unhealthy) {per}, stacked.</p>\n"
    );
    legend(page, report, colors, false);
    bars_chart(
        page,
        report,
        &span,
        &series,
        colors,
        |m| m.failed() + m.rejected,
        "failed + rejected / min",
    );
    page.push_str("</section>\n");
}

fn latency_chart(
    page: &mut String,
    report: &Report,
    span: &Span,
    series: &[Vec<Option<MinuteRollup>>],
    colors: &BTreeMap<&str, &str>,
) {
    let height = 300.0;
    let max = series
        .iter()
        .flatten()
        .flatten()
        .filter_map(|m| m.p95_ms.or(m.p50_ms))
        .fold(0.0_f64, f64::max);
    let (step, top) = nice_axis(max * 1.05, 5.0);
    let mut svg = String::new();
    svg_open(&mut svg, height, "Latency p50 and p95 over time, per model");
    let (bottom, plot) = frame(&mut svg, report, span, height, (top, step, "ms"), colors);
    for (model, points) in report.models.iter().zip(series) {
        let color = colors
            .get(model.model.as_str())
            .copied()
            .unwrap_or("#475569");
        for (read, style) in [
            (
                (|m: &MinuteRollup| m.p95_ms) as fn(&MinuteRollup) -> Option<f64>,
                "stroke-width=\"1.2\" stroke-dasharray=\"4 3\" stroke-opacity=\"0.6\"",
            ),
            (|m: &MinuteRollup| m.p50_ms, "stroke-width=\"2.2\""),
        ] {
            let mut path = String::new();
            let mut drawing = false;
            for (bucket, point) in points.iter().enumerate() {
                match point.as_ref().and_then(read) {
                    Some(ms) => {
                        let x = span.x(span.bucket_start(bucket) + span.bucket_ms / 2);
                        let y = bottom - plot * (ms / top).min(1.0);
                        let _ = write!(path, "{}{x:.1} {y:.1}", if drawing { " L" } else { " M" });
                        if !drawing {
                            // A lone point still shows (a round cap on a tiny segment).
                            let _ = write!(path, " l0.01 0");
                        }
                        drawing = true;
                    }
                    None => drawing = false,
                }
            }
            if !path.is_empty() {
                let _ = write!(
                    svg,
                    "<path d=\"{}\" fill=\"none\" stroke=\"{color}\" {style} \
                     stroke-linejoin=\"round\" stroke-linecap=\"round\"><title>{}</title></path>",
                    path.trim_start(),
                    esc(&model.model)
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    page.push_str(&svg);
}

fn bars_chart(
    page: &mut String,
    report: &Report,
    span: &Span,
    series: &[Vec<Option<MinuteRollup>>],
    colors: &BTreeMap<&str, &str>,
    value: impl Fn(&MinuteRollup) -> u64,
    unit: &str,
) {
    let height = 240.0;
    let per_minute = span.bucket_minutes();
    let totals: Vec<f64> = (0..span.buckets())
        .map(|b| {
            series
                .iter()
                .filter_map(|s| s[b].as_ref())
                .map(|m| value(m) as f64 / per_minute)
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max);
    let (step, top) = nice_axis(max * 1.05, 4.0);
    let mut svg = String::new();
    svg_open(&mut svg, height, unit);
    let (bottom, plot) = frame(&mut svg, report, span, height, (top, step, unit), colors);
    for bucket in 0..span.buckets() {
        let x0 = span.x(span.bucket_start(bucket));
        let x1 = span.x(span.bucket_start(bucket) + span.bucket_ms);
        let gap = if x1 - x0 > 4.0 { 1.0 } else { 0.0 };
        let mut y = bottom;
        for (model, points) in report.models.iter().zip(series) {
            let Some(point) = &points[bucket] else {
                continue;
            };
            let v = value(point) as f64 / per_minute;
            if v <= 0.0 {
                continue;
            }
            let h = plot * v / top;
            y -= h;
            let color = colors
                .get(model.model.as_str())
                .copied()
                .unwrap_or("#475569");
            let _ = write!(
                svg,
                "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{color}\" \
                 fill-opacity=\"0.85\"><title>{} {}: {}</title></rect>",
                x0 + gap / 2.0,
                (x1 - x0 - gap).max(0.5),
                esc(&model.model),
                esc(&clock(span.bucket_start(bucket))),
                fmt_tick(v, if per_minute > 1.0 { 0.1 } else { 1.0 })
            );
        }
    }
    svg.push_str("</svg>\n");
    page.push_str(&svg);
}
