//! The HdrHistogram percentile-distribution text format (`.hgrm`), as
//! `outputPercentileDistribution` of HdrHistogram and wrk2 print it, so the
//! files load in HdrHistogram's plotter and the tools around it:
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.253 0.500000000000       5012           2.00
//!        ...
//!       14.066 1.000000000000      10000
//! #[Mean    =        0.301, StdDeviation   =        0.402]
//! #[Max     =       14.066, Total count    =        10000]
//! #[Buckets =           30, SubBuckets     =         2048]
//! ```
//!
//! Five percentile ticks per half distance to 100%, values divided by a
//! scaling ratio (nanoseconds recorded, milliseconds printed: [`NS_PER_MS`])
//! with as many decimals as the histogram has significant digits.

use hdrhistogram::Histogram;
use std::fmt::Write;

/// Recorded nanoseconds, printed milliseconds (what wrk2 prints).
pub const NS_PER_MS: f64 = 1e6;

/// Percentile ticks per half distance to 100% (HdrHistogram's default).
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The percentile distribution of `h`, values divided by `scale`.
pub fn render(h: &Histogram<u64>, scale: f64) -> String {
    let d = usize::from(h.sigfig());
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / scale;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:>12.d$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:>12.d$} {q:>2.12} {total:>10}");
            }
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    let _ = writeln!(
        s,
        "#[Mean    = {mean:>12.d$}, StdDeviation   = {sd:>12.d$}]"
    );
    let _ = writeln!(
        s,
        "#[Max     = {max:>12.d$}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {sub_buckets:>12}]",
        h.buckets()
    );
    s
}

/// One row of a parsed `.hgrm` file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub value: f64,
    pub percentile: f64,
    pub total_count: u64,
}

/// A parsed `.hgrm` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub mean: f64,
    pub max: f64,
    pub total_count: u64,
}

impl Parsed {
    /// The value of the first row at or above quantile `q` (0..=1): what a
    /// reader of the file takes as that percentile.
    pub fn value_at(&self, q: f64) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.percentile >= q)
            .map(|r| r.value)
    }
}

/// Reads the text format back (the header, rows and footer [`render`]
/// writes; other tools' files of the same format too).
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut p = Parsed {
        rows: Vec::new(),
        mean: f64::NAN,
        max: f64::NAN,
        total_count: 0,
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Value") {
            continue;
        }
        if let Some(footer) = line.strip_prefix("#[").and_then(|l| l.strip_suffix(']')) {
            for part in footer.split(',') {
                let (k, v) = part
                    .split_once('=')
                    .ok_or_else(|| format!("line {}: footer without '='", n + 1))?;
                let v = v.trim();
                match k.trim() {
                    "Mean" => p.mean = num(v, n)?,
                    "Max" => p.max = num(v, n)?,
                    "Total count" => p.total_count = num(v, n)? as u64,
                    _ => {}
                }
            }
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            return Err(format!("line {}: expected 3 or 4 columns", n + 1));
        }
        p.rows.push(Row {
            value: num(f[0], n)?,
            percentile: num(f[1], n)?,
            total_count: f[2].parse().map_err(|e| format!("line {}: {e}", n + 1))?,
        });
    }
    Ok(p)
}

fn num(s: &str, line: usize) -> Result<f64, String> {
    s.parse()
        .map_err(|e| format!("line {}: {s:?}: {e}", line + 1))
}
