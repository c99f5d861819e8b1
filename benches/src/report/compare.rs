//! `hotsync-bench compare OLD.json NEW.json [...]`: every figure the
//! reports share, the ratio new/old, which direction is better, the spread
//! of repeated runs, and a verdict. A report, not a gate.
//!
//! - Figures: the numbers under `runs` (every run's values, written by
//!   [`super::Report`]); for a report without `runs` (written before
//!   `--repeat` existed), every number except the parameters in [`PARAMS`],
//!   as one run. Nested figures are named by their path (`latency_us.p99`).
//! - The value shown is the report's own figure (the median of the runs).
//! - Verdict: `noise` when the two reports' run ranges (min..max) overlap,
//!   else `better` or `worse` by the figure's direction ([`better`]), else
//!   `changed`; `same` when the values are equal.

use serde_json::{Map, Value};
use std::fmt::Write;

/// Numbers of a report that describe the run rather than measure it.
pub const PARAMS: [&str; 10] = [
    "rate",
    "readers",
    "sessions",
    "config_items",
    "dead_count",
    "cores",
    "repeat",
    "working_set",
    "bulk_sessions",
    "writers",
];

/// Which direction of a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// The direction of a figure, from its name: rates and ratios against a
/// baseline up; latency, time, CPU, memory, bytes, losses down. `None`
/// where neither is better (records per batch, sample counts).
pub fn better(path: &str) -> Option<Better> {
    let leaf = path.rsplit('.').next().unwrap_or(path);
    let has = |s: &str| path.contains(s);
    if has("samples") || has("records_per_batch") || has("jobs_done") {
        None
    } else if has("ratio_vs_") || has("ratio_wire_vs_") || has("achieved_rate") {
        Some(Better::Higher)
    } else if has("latency") || path.starts_with("p99_") || has("lag") {
        Some(Better::Lower)
    } else if leaf.ends_with("_per_s") || leaf.ends_with("per_second") {
        Some(Better::Higher)
    } else if has("cpu")
        || has("wait_s")
        || has("busy")
        || has("rss")
        || has("bytes_per")
        || has("lost")
        || has("restarts")
        || has("disconnects")
        || has("errors")
        || leaf.ends_with("_s")
        || leaf.ends_with("_ns")
        || leaf.ends_with("_us")
    {
        Some(Better::Lower)
    } else {
        None
    }
}

/// One figure of a report: its value and every run's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub path: String,
    pub value: f64,
    pub runs: Vec<f64>,
}

impl Figure {
    fn range(&self) -> (f64, f64) {
        let lo = self.runs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            (lo, hi)
        } else {
            (self.value, self.value)
        }
    }

    /// Half the range of the runs relative to its middle (0 for one run):
    /// runs of 90 and 110 are 100 ± 10%.
    pub fn spread(&self) -> f64 {
        let (lo, hi) = self.range();
        if hi + lo == 0.0 {
            0.0
        } else {
            ((hi - lo) / (hi + lo)).abs()
        }
    }
}

/// The figures of a report, in its order.
pub fn figures(report: &Value) -> Vec<Figure> {
    let mut out = Vec::new();
    match report.get("runs") {
        Some(Value::Object(runs)) => flatten_runs(runs, report, "", &mut out),
        _ => {
            if let Value::Object(m) = report {
                flatten_values(m, "", &mut out);
            }
        }
    }
    out
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}.{k}")
    }
}

fn flatten_runs(runs: &Map<String, Value>, top: &Value, prefix: &str, out: &mut Vec<Figure>) {
    for (k, v) in runs {
        let path = join(prefix, k);
        match v {
            Value::Array(a) => {
                let values: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
                let value = top
                    .get(k)
                    .and_then(Value::as_f64)
                    .unwrap_or_else(|| super::median(&values));
                out.push(Figure {
                    path,
                    value,
                    runs: values,
                });
            }
            Value::Object(m) => flatten_runs(m, top.get(k).unwrap_or(&Value::Null), &path, out),
            _ => {}
        }
    }
}

fn flatten_values(m: &Map<String, Value>, prefix: &str, out: &mut Vec<Figure>) {
    for (k, v) in m {
        if prefix.is_empty() && PARAMS.contains(&k.as_str()) {
            continue;
        }
        let path = join(prefix, k);
        match v {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                out.push(Figure {
                    path,
                    value: x,
                    runs: vec![x],
                });
            }
            Value::Object(m) => flatten_values(m, &path, out),
            _ => {}
        }
    }
}

/// The verdict on one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Same,
    Noise,
    Better,
    Worse,
    Changed,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Noise => "noise",
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Changed => "changed",
        }
    }
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub path: String,
    pub old: Figure,
    pub new: Figure,
    /// new / old (NaN when old is 0).
    pub ratio: f64,
    pub better: Option<Better>,
    pub verdict: Verdict,
}

/// The rows for every figure both reports have, in the old report's order.
pub fn rows(old: &Value, new: &Value) -> Vec<Row> {
    let news = figures(new);
    figures(old)
        .into_iter()
        .filter_map(|o| {
            let n = news.iter().find(|n| n.path == o.path)?.clone();
            let ratio = if o.value == 0.0 {
                f64::NAN
            } else {
                n.value / o.value
            };
            let better = better(&o.path);
            let ((olo, ohi), (nlo, nhi)) = (o.range(), n.range());
            let verdict = if n.value == o.value {
                Verdict::Same
            } else if olo <= nhi && nlo <= ohi {
                Verdict::Noise
            } else {
                match (better, n.value > o.value) {
                    (Some(Better::Higher), true) | (Some(Better::Lower), false) => Verdict::Better,
                    (Some(_), _) => Verdict::Worse,
                    (None, _) => Verdict::Changed,
                }
            };
            Some(Row {
                path: o.path.clone(),
                old: o,
                new: n,
                ratio,
                better,
                verdict,
            })
        })
        .collect()
}

/// A value with 3 or 4 significant digits, SI suffix from 10,000 on.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "-".into()
    } else if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn spread_text(f: &Figure) -> String {
    if f.runs.len() < 2 {
        "1 run".into()
    } else {
        format!("{} runs ±{:.1}%", f.runs.len(), f.spread() * 100.0)
    }
}

fn describe(name: &str, report: &Value) -> String {
    let s = |k: &str| report.get(k).and_then(Value::as_str).unwrap_or("?");
    format!(
        "{name}: scenario {}, {} run(s); {}",
        s("scenario"),
        report.get("repeat").and_then(Value::as_u64).unwrap_or(1),
        s("command")
    )
}

/// The comparison of `new` against `old` as a text table.
pub fn render(old_name: &str, old: &Value, new_name: &str, new: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "old  {}", describe(old_name, old));
    let _ = writeln!(s, "new  {}", describe(new_name, new));
    let (so, sn) = (old.get("scenario"), new.get("scenario"));
    if so != sn {
        let _ = writeln!(s, "note: the scenarios differ");
    }
    for p in PARAMS {
        if let (Some(a), Some(b)) = (old.get(p), new.get(p)) {
            if a != b {
                let _ = writeln!(s, "note: parameter {p} differs: {a} -> {b}");
            }
        }
    }
    let rows = rows(old, new);
    let header = [
        "figure",
        "old",
        "new",
        "new/old",
        "better",
        "old spread",
        "new spread",
        "verdict",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.path.clone(),
                fmt_value(r.old.value),
                fmt_value(r.new.value),
                if r.ratio.is_finite() {
                    format!("{:.3}", r.ratio)
                } else {
                    "-".into()
                },
                match r.better {
                    Some(Better::Higher) => "higher".into(),
                    Some(Better::Lower) => "lower".into(),
                    None => "-".into(),
                },
                spread_text(&r.old),
                spread_text(&r.new),
                r.verdict.as_str().into(),
            ]
        })
        .collect();
    let mut w = header.map(str::len);
    for c in &cells {
        for (i, x) in c.iter().enumerate() {
            w[i] = w[i].max(x.chars().count());
        }
    }
    let line = |s: &mut String, c: &[&str]| {
        let _ = write!(s, "{:<w0$}", c[0], w0 = w[0]);
        for (i, x) in c.iter().enumerate().skip(1) {
            let _ = write!(s, "  {:>wi$}", x, wi = w[i]);
        }
        s.push('\n');
    };
    s.push('\n');
    line(&mut s, &header);
    for c in &cells {
        line(&mut s, &c.each_ref().map(String::as_str));
    }
    if rows.is_empty() {
        let _ = writeln!(s, "(no figures in common)");
    }
    let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    let _ = writeln!(
        s,
        "\n{} figures: {} better, {} worse, {} noise (run ranges overlap), {} same, {} changed",
        rows.len(),
        count(Verdict::Better),
        count(Verdict::Worse),
        count(Verdict::Noise),
        count(Verdict::Same),
        count(Verdict::Changed)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn directions_of_the_stable_keys() {
        assert_eq!(better("entries_per_s"), Some(Better::Higher));
        assert_eq!(better("achieved_rate"), Some(Better::Higher));
        assert_eq!(better("ratio_vs_naive"), Some(Better::Higher));
        assert_eq!(better("latency_us.p99"), Some(Better::Lower));
        assert_eq!(better("p99_ratio_during_bulk"), Some(Better::Lower));
        assert_eq!(better("wire_bytes_per_entry"), Some(Better::Lower));
        assert_eq!(better("rss_bytes_per_session"), Some(Better::Lower));
        assert_eq!(better("cpu_percent.hotsync-node-1"), Some(Better::Lower));
        assert_eq!(better("job_s"), Some(Better::Lower));
        assert_eq!(better("latency_samples"), None);
        assert_eq!(better("records_per_batch"), None);
    }

    #[test]
    fn overlapping_runs_are_noise_and_separate_ones_have_a_direction() {
        let old = json!({"a_per_s": 10.0, "latency_us": {"p99": 100.0},
            "runs": {"a_per_s": [9.0, 10.0, 11.0], "latency_us": {"p99": [90.0, 100.0, 110.0]}}});
        let new = json!({"a_per_s": 20.0, "latency_us": {"p99": 105.0},
            "runs": {"a_per_s": [19.0, 20.0, 21.0], "latency_us": {"p99": [104.0, 105.0, 130.0]}}});
        let r = rows(&old, &new);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].verdict, Verdict::Better);
        assert!((r[0].ratio - 2.0).abs() < 1e-12);
        assert_eq!(r[1].path, "latency_us.p99");
        assert_eq!(r[1].verdict, Verdict::Noise);
        let worse = json!({"latency_us": {"p99": 300.0}, "runs": {"latency_us": {"p99": [300.0]}}});
        assert_eq!(rows(&old, &worse)[0].verdict, Verdict::Worse);
    }

    #[test]
    fn reports_without_runs_compare_every_number_but_parameters() {
        let old = json!({"scenario": "bulk", "sessions": 1000, "entries_per_s": 4.0});
        let new = json!({"scenario": "bulk", "sessions": 2000, "entries_per_s": 5.0});
        let r = rows(&old, &new);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].verdict, Verdict::Better);
        let text = render("a", &old, "b", &new);
        assert!(text.contains("parameter sessions differs"), "{text}");
    }
}
