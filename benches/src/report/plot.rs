//! SVG charts with `plotters`' SVG backend. Text is written as SVG `<text>`
//! (sized by plotters' built-in estimate, no font files read), so nothing
//! here needs a font or image library.
//!
//! - [`latency_svg`]: the percentile curve of every latency window on one
//!   chart, both axes logarithmic, x as "percentile" (90%, 99%, 99.9%: the
//!   HdrHistogram plot, where the tail gets as much room as the median).
//! - [`series_svg`]: a rate over time, one line per run, plus an optional
//!   horizontal reference line.
//!
//! Each window or run is one `<polyline>` of the series' colour
//! ([`color`]); the legend's samples are two-point polylines.

use super::{LatencyWindow, Series, Unit};
use crate::report::hgrm::TICKS_PER_HALF_DISTANCE;
use plotters::prelude::*;

/// Okabe-Ito colours (readable for colour-blind readers), by series index.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Reference lines are grey.
const REFERENCE: RGBColor = RGBColor(120, 120, 120);

const SIZE: (u32, u32) = (900, 540);

/// The colour of series `i`.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The points of a window's curve: (1/(1-q), latency in `unit`) per
/// percentile tick, the final 100% tick left out (it has no finite x).
pub fn percentile_points(w: &LatencyWindow, unit: Unit) -> Vec<(f64, f64)> {
    if w.hist.is_empty() {
        return Vec::new();
    }
    w.hist
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| {
            (
                1.0 / (1.0 - v.quantile_iterated_to()),
                (v.value_iterated_to() as f64 / unit.ns()).max(0.001),
            )
        })
        .collect()
}

/// "alone: p50 253 µs, p99 2.86 ms".
pub fn legend(w: &LatencyWindow) -> String {
    let q = |q: f64| duration(w.hist.value_at_quantile(q) as f64);
    format!("{}: p50 {}, p99 {}", w.name, q(0.5), q(0.99))
}

/// "99.9%" for x = 1/(1-q) = 1000.
fn percentile_label(x: f64) -> String {
    if x < 1.5 {
        return "0%".into();
    }
    let decimals = ((x.log10() - 1e-9).ceil() - 2.0).max(0.0) as usize;
    format!("{:.*}%", decimals, 100.0 * (1.0 - 1.0 / x))
}

/// 12345678 -> "12.3M", 10000 -> "10k".
fn short(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if x.abs() >= 10.0 || x == x.trunc() {
        0
    } else if unit.is_empty() && x.abs() < 1.0 {
        2
    } else {
        1
    };
    format!("{x:.digits$}{unit}")
}

/// Nanoseconds in the unit that suits them, 3 significant digits: "52 ns",
/// "253 µs", "2.86 ms", "190 ms", "3.83 s".
fn duration(ns: f64) -> String {
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let decimals = if unit == "ns" || v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$} {unit}")
}

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// Percentile curves of every window on one log-log chart.
pub fn latency_svg(title: &str, windows: &[LatencyWindow], unit: Unit) -> Result<String, String> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = windows
        .iter()
        .map(|w| (legend(w), percentile_points(w, unit)))
        .collect();
    let all = curves.iter().flat_map(|(_, p)| p.iter());
    let (mut xmax, mut ymin, mut ymax) = (10.0f64, f64::MAX, 0.0f64);
    for &(x, y) in all {
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if ymax == 0.0 {
        (ymin, ymax) = (1.0, 10.0);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (1.0..xmax * 1.2).log_scale(),
                (ymin / 1.3..ymax * 1.3).log_scale(),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc(format!("latency ({})", unit.name()))
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| short(*y))
            .light_line_style(WHITE)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(err)?;
        for (i, (name, points)) in curves.into_iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Rates over time, one line per series, and an optional reference line.
pub fn series_svg(
    title: &str,
    axes: &(String, String),
    series: &[Series],
    reference: Option<&(String, f64)>,
) -> Result<String, String> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut xmax, mut ymax) = (0.1f64, reference.map_or(0.0, |r| r.1));
    for &(x, y) in all {
        xmax = xmax.max(x);
        ymax = ymax.max(y);
    }
    if ymax <= 0.0 {
        ymax = 1.0;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..xmax * 1.02, 0.0..ymax * 1.3)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(axes.0.as_str())
            .y_desc(axes.1.as_str())
            .y_label_formatter(&|y| short(*y))
            .light_line_style(WHITE)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(2)));
        }
        if let Some((label, v)) = reference {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, *v), (xmax * 1.02, *v)],
                    REFERENCE.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{label}: {}", short(*v)))
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], REFERENCE.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10000.0), "99.99%");
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short(10_000.0), "10k");
        assert_eq!(short(1_500.0), "1.5k");
        assert_eq!(short(6_350_000.0), "6.3M");
        assert_eq!(short(250.0), "250");
        assert_eq!(short(0.5), "0.50");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(52.0), "52 ns");
        assert_eq!(duration(253_400.0), "253 µs");
        assert_eq!(duration(2_863_000.0), "2.86 ms");
        assert_eq!(duration(189_530_000.0), "190 ms");
        assert_eq!(duration(11_210_000.0), "11.2 ms");
        assert_eq!(duration(3_831_497_000.0), "3.83 s");
    }
}
