//! Benchmark reports: repeated runs, JSON with every run's figures,
//! HdrHistogram `.hgrm` files, SVG plots, and the comparison of two reports.
//!
//! A scenario fills one [`Report`] and hands it to [`Report::write`] with
//! the user's [`Outputs`] (`--json`, `--hgrm`, `--plot`). Plugging a new
//! scenario in takes a few lines:
//!
//! ```
//! use hotsync_bench::report::{Outputs, Report, Unit};
//! use hdrhistogram::Histogram;
//! use serde_json::json;
//!
//! let mut rep = Report::new("lookup");
//! rep.param("threads", 2);                 // what was run (not compared)
//! rep.latency_title("lookup latency");     // plot title
//! rep.latency_units(Unit::Nanos, Unit::Nanos); // sub-µs: .hgrm and plot in ns
//! for _ in 0..3 {                          // `--repeat 3`
//!     let mut hist = Histogram::<u64>::new(3).unwrap(); // nanoseconds
//!     hist.record(55).unwrap();
//!     let run = rep.run();                 // this run's figures
//!     run.num("lookup_per_s", 9.5e6);
//!     run.extend([("lookup_latency_ns".to_string(), json!({ "p99": 55 }))]);
//!     rep.latency("standby writer", &hist); // merged over the runs
//! }
//! let written = rep.write(&Outputs::default()).unwrap(); // nothing asked
//! assert!(written.is_empty());
//! assert_eq!(rep.to_json()["runs"]["lookup_per_s"], json!([9.5e6, 9.5e6, 9.5e6]));
//! ```
//!
//! In `main.rs`: a `Report::new(NAME)` arm for the subcommand, and a loop
//! of `ctx.repeat` runs like the other scenarios; `main` writes what the
//! global options ask for.
//!
//! What that produces:
//! - JSON (`--json FILE`): every figure under its stable key holding the
//!   **median** of the runs (the lower middle for an even count), and
//!   `runs`, the same tree with every number replaced by the array of the
//!   values of each run (`runs.latency_us.p99 = [..]`). Parameters and
//!   strings appear once, at the top. [`compare`] reads the arrays as the
//!   spread of a figure.
//! - `.hgrm` (`--hgrm DIR`): one file per latency window,
//!   `SCENARIO-WINDOW.hgrm` (window name lower-cased, spaces as dashes), the
//!   histograms of every run merged, in the percentile-distribution text
//!   format of HdrHistogram and wrk2, values in milliseconds unless
//!   [`Report::latency_units`] says otherwise ([`hgrm`]).
//! - SVG (`--plot FILE.svg`): with latency windows, their percentile curves
//!   on one log-scaled chart; with throughput series (`bulk`), one line per
//!   run over time and the reference line ([`plot`]).

pub mod compare;
pub mod hgrm;
pub mod plot;

use hdrhistogram::Histogram;
use serde_json::{Map, Number, Value, json};
use std::path::PathBuf;

/// A unit latency is shown in (histograms always record nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Nanos,
    Micros,
    Millis,
}

impl Unit {
    /// Nanoseconds per unit.
    pub fn ns(self) -> f64 {
        match self {
            Unit::Nanos => 1.0,
            Unit::Micros => 1e3,
            Unit::Millis => 1e6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Nanos => "ns",
            Unit::Micros => "µs",
            Unit::Millis => "ms",
        }
    }
}

/// Where a report goes (all optional).
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--hgrm DIR`: one `.hgrm` file per latency window.
    pub hgrm: Option<PathBuf>,
    /// `--plot FILE.svg`.
    pub plot: Option<PathBuf>,
}

/// The figures of one run, in insertion order. Numbers (also inside
/// objects) are figures; anything else is kept from the first run only.
#[derive(Debug, Default, Clone)]
pub struct Figures(pub Map<String, Value>);

impl Figures {
    pub fn num(&mut self, k: &str, v: f64) {
        self.0.insert(k.into(), json!(v));
    }
    pub fn int(&mut self, k: &str, v: u64) {
        self.0.insert(k.into(), json!(v));
    }
    /// A group of figures (for example `latency_us` with `p50`..`max`).
    pub fn obj(&mut self, k: &str, v: Value) {
        self.0.insert(k.into(), v);
    }
}

impl Extend<(String, Value)> for Figures {
    /// Takes a scenario's `(key, value)` figures as they are.
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// A latency histogram (nanoseconds) of one measured window, merged over
/// the runs.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    pub name: String,
    pub hist: Histogram<u64>,
}

/// Progress of one run over time: (seconds since start, rate per second
/// over the interval ending there).
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Everything one scenario measured, over all its runs.
#[derive(Debug)]
pub struct Report {
    scenario: String,
    params: Map<String, Value>,
    runs: Vec<Figures>,
    /// Figures measured outside the runs (baselines: their own repeats).
    extra: Map<String, Value>,
    windows: Vec<LatencyWindow>,
    series: Vec<Series>,
    reference: Option<(String, f64)>,
    /// Axis titles of the throughput plot (x, y).
    series_axes: (String, String),
    /// What the latency windows measure, for the plot's title.
    latency_title: String,
    /// Units of the `.hgrm` values and of the plot's latency axis.
    hgrm_unit: Unit,
    plot_unit: Unit,
}

impl Report {
    pub fn new(scenario: &str) -> Self {
        let mut params = Map::new();
        params.insert("scenario".into(), json!(scenario));
        Self {
            scenario: scenario.into(),
            params,
            runs: Vec::new(),
            extra: Map::new(),
            windows: Vec::new(),
            series: Vec::new(),
            reference: None,
            series_axes: ("seconds since start".into(), "per second".into()),
            latency_title: "replication latency".into(),
            hgrm_unit: Unit::Millis,
            plot_unit: Unit::Micros,
        }
    }

    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// A parameter of the run (rate, sessions, command line): written once,
    /// never compared.
    pub fn param(&mut self, k: &str, v: impl Into<Value>) {
        self.params.insert(k.into(), v.into());
    }

    /// Starts the figures of a new run.
    pub fn run(&mut self) -> &mut Figures {
        self.runs.push(Figures::default());
        self.runs.last_mut().expect("just pushed")
    }

    /// Runs recorded so far.
    pub fn runs(&self) -> &[Figures] {
        &self.runs
    }

    /// A figure measured `values.len()` times outside the runs (its
    /// median is the figure, the values its spread).
    pub fn figure_values(&mut self, k: &str, values: &[f64]) {
        self.extra.insert(k.into(), json!(values));
    }

    /// Adds a latency histogram (ns) to the window `name`, created on
    /// first use; windows keep the order they were first seen in.
    pub fn latency(&mut self, name: &str, hist: &Histogram<u64>) {
        match self.windows.iter_mut().find(|w| w.name == name) {
            Some(w) => w
                .hist
                .add(hist)
                .expect("histograms of one window share their bounds"),
            None => self.windows.push(LatencyWindow {
                name: name.into(),
                hist: hist.clone(),
            }),
        }
    }

    pub fn windows(&self) -> &[LatencyWindow] {
        &self.windows
    }

    /// Adds one run's progress over time (plotted one line per series).
    pub fn series(&mut self, label: &str, points: Vec<(f64, f64)>) {
        self.series.push(Series {
            label: label.into(),
            points,
        });
    }

    /// What the latency windows measure (plot title; default
    /// "replication latency").
    pub fn latency_title(&mut self, what: &str) {
        self.latency_title = what.into();
    }

    /// Units latency is shown in: `.hgrm` values (default milliseconds, as
    /// wrk2 prints them) and the plot's axis (default microseconds).
    /// Sub-microsecond latencies (lookups) want nanoseconds for both.
    pub fn latency_units(&mut self, hgrm: Unit, plot: Unit) {
        self.hgrm_unit = hgrm;
        self.plot_unit = plot;
    }

    /// Axis titles of the throughput plot.
    pub fn series_axes(&mut self, x: &str, y: &str) {
        self.series_axes = (x.into(), y.into());
    }

    /// A horizontal reference line on the throughput plot.
    pub fn reference(&mut self, label: &str, value: f64) {
        self.reference = Some((label.into(), value));
    }

    /// The JSON report: parameters, the median of every figure, and `runs`.
    pub fn to_json(&self) -> Value {
        let mut all = Map::new();
        for r in &self.runs {
            push_leaves(&mut all, &r.0);
        }
        for (k, v) in &self.extra {
            all.insert(k.clone(), v.clone());
        }
        let mut out = self.params.clone();
        out.insert("repeat".into(), json!(self.runs.len()));
        if let Value::Object(m) = medians(&Value::Object(all.clone())) {
            out.extend(m);
        }
        // Strings of the first run (none of the built-in scenarios has any).
        if let Some(first) = self.runs.first() {
            for (k, v) in &first.0 {
                if !out.contains_key(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out.insert("runs".into(), Value::Object(all));
        Value::Object(out)
    }

    /// Writes what `out` asks for; returns the files written.
    pub fn write(&self, out: &Outputs) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        if let Some(path) = &out.json {
            let mut s = serde_json::to_string_pretty(&self.to_json())?;
            s.push('\n');
            std::fs::write(path, s)?;
            written.push(path.clone());
        }
        if let Some(dir) = &out.hgrm {
            std::fs::create_dir_all(dir)?;
            for w in &self.windows {
                let path = dir.join(self.hgrm_name(&w.name));
                std::fs::write(&path, hgrm::render(&w.hist, self.hgrm_unit.ns()))?;
                written.push(path);
            }
        }
        if let Some(path) = &out.plot {
            let svg = self.plot_svg().ok_or_else(|| {
                std::io::Error::other(format!(
                    "{}: nothing to plot (no latency windows, no series)",
                    self.scenario
                ))
            })?;
            std::fs::write(path, svg.map_err(std::io::Error::other)?)?;
            written.push(path.clone());
        }
        Ok(written)
    }

    /// `SCENARIO-WINDOW.hgrm`.
    pub fn hgrm_name(&self, window: &str) -> String {
        format!("{}-{}.hgrm", slug(&self.scenario), slug(window))
    }

    /// The SVG of this report: latency windows if any, else the series.
    pub fn plot_svg(&self) -> Option<Result<String, String>> {
        if !self.windows.is_empty() {
            let title = format!("{}: {} by percentile", self.scenario, self.latency_title);
            return Some(plot::latency_svg(&title, &self.windows, self.plot_unit));
        }
        if !self.series.is_empty() {
            let title = format!("{}: progress per 100 ms", self.scenario);
            return Some(plot::series_svg(
                &title,
                &self.series_axes,
                &self.series,
                self.reference.as_ref(),
            ));
        }
        None
    }
}

/// The percentiles every latency report carries, in µs (stable keys).
pub fn latency_us(h: &Histogram<u64>) -> Value {
    let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    json!({
        "p50": q(0.5),
        "p90": q(0.9),
        "p99": q(0.99),
        "p999": q(0.999),
        "max": h.max() as f64 / 1e3,
    })
}

/// Rates per `step` seconds from cumulative samples `(seconds, total)`
/// (time-ordered), linear between samples: one point per interval, at its
/// end, with its increase divided by its length. The last interval ends at
/// the last sample; a remainder shorter than half a step joins the
/// interval before it (a few milliseconds' rate is mostly noise).
pub fn rates(samples: &[(f64, u64)], step: f64) -> Vec<(f64, f64)> {
    let Some(&(t_end, _)) = samples.last() else {
        return Vec::new();
    };
    let at = |t: f64| -> f64 {
        let i = samples.partition_point(|s| s.0 <= t);
        match (i.checked_sub(1).map(|j| samples[j]), samples.get(i)) {
            (Some((t0, v0)), Some(&(t1, v1))) if t1 > t0 => {
                v0 as f64 + (v1 as f64 - v0 as f64) * (t - t0) / (t1 - t0)
            }
            (Some((_, v0)), _) => v0 as f64,
            (None, _) => samples[0].1 as f64,
        }
    };
    let mut out = Vec::new();
    let mut t0 = samples[0].0;
    while t0 < t_end - 1e-9 {
        let mut t1 = (t0 + step).min(t_end);
        if t_end - t1 < step / 2.0 {
            t1 = t_end;
        }
        out.push((t1, (at(t1) - at(t0)) / (t1 - t0)));
        t0 = t1;
    }
    out
}

/// Lower case, runs of anything but letters and digits as one dash.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Appends every number of `src` to the array at the same path in `dst`.
fn push_leaves(dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (k, v) in src {
        match v {
            Value::Number(_) => {
                let e = dst.entry(k.clone()).or_insert_with(|| json!([]));
                if let Value::Array(a) = e {
                    a.push(v.clone());
                }
            }
            Value::Object(m) => {
                let e = dst.entry(k.clone()).or_insert_with(|| json!({}));
                if let Value::Object(d) = e {
                    push_leaves(d, m);
                }
            }
            _ => {}
        }
    }
}

/// The tree of arrays with every array replaced by its median.
fn medians(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), medians(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => median_number(a),
        other => other.clone(),
    }
}

/// Median of numbers (lower middle), an integer if all are integers.
fn median_number(a: &[Value]) -> Value {
    if a.is_empty() {
        return Value::Null;
    }
    if let Some(mut ints) = a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>() {
        ints.sort_unstable();
        return Value::Number(Number::from(ints[(ints.len() - 1) / 2]));
    }
    let mut f: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
    f.sort_by(f64::total_cmp);
    json!(f[(f.len() - 1) / 2])
}

/// Median (lower middle) of `v`; NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len().wrapping_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_stable_keys_as_medians_and_every_run_as_arrays() {
        let mut rep = Report::new("x");
        rep.param("rate", 5);
        for (eps, p99) in [(3.0, 900.0), (1.0, 700.0), (2.0, 800.0)] {
            let r = rep.run();
            r.num("entries_per_s", eps);
            r.obj("latency_us", json!({ "p99": p99 }));
            r.int("lost", 0);
        }
        let j = rep.to_json();
        assert_eq!(j["scenario"], "x");
        assert_eq!(j["rate"], 5);
        assert_eq!(j["repeat"], 3);
        assert_eq!(j["entries_per_s"], 2.0);
        assert_eq!(j["latency_us"]["p99"], 800.0);
        assert_eq!(j["lost"], 0);
        assert_eq!(j["runs"]["entries_per_s"], json!([3.0, 1.0, 2.0]));
        assert_eq!(j["runs"]["latency_us"]["p99"], json!([900.0, 700.0, 800.0]));
        assert!(j["runs"].get("rate").is_none(), "parameters are not runs");
    }

    #[test]
    fn windows_merge_over_runs_and_name_their_files() {
        let mut rep = Report::new("mixed");
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        h.record(10).expect("record");
        rep.latency("with config sync", &h);
        rep.latency("with config sync", &h);
        assert_eq!(rep.windows().len(), 1);
        assert_eq!(rep.windows()[0].hist.len(), 2);
        assert_eq!(
            rep.hgrm_name("with config sync"),
            "mixed-with-config-sync.hgrm"
        );
        assert_eq!(slug("During bulk (1M)"), "during-bulk-1m");
    }

    #[test]
    fn rates_per_interval_from_cumulative_samples() {
        // 1000/s for 0.25 s, then nothing until 0.3 s.
        let s = [(0.0, 0), (0.05, 50), (0.25, 250), (0.3, 250)];
        let r = rates(&s, 0.1);
        assert_eq!(r.len(), 3);
        for (got, want) in r.iter().zip([(0.1, 1000.0), (0.2, 1000.0), (0.3, 500.0)]) {
            assert!((got.0 - want.0).abs() < 1e-9, "{r:?}");
            assert!((got.1 - want.1).abs() < 1e-6, "{r:?}");
        }
        // A 0.02 s remainder joins the last full interval: 0.1..0.22 s.
        let r = rates(&[(0.0, 0), (0.1, 100), (0.22, 340)], 0.1);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(
            (r[1].0 - 0.22).abs() < 1e-9 && (r[1].1 - 2000.0).abs() < 1e-6,
            "{r:?}"
        );
        assert!(rates(&[], 0.1).is_empty());
    }
}
