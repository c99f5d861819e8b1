//! The report outputs: `.hgrm` files read back, SVG plots are well-formed
//! with one series per window or run, and `compare` on two committed
//! reports prints the expected ratios and verdicts.

use hdrhistogram::Histogram;
use hotsync_bench::report::{Report, Unit, hgrm, plot};
use std::process::Command;

/// A latency-like histogram (ns): a body around 250 µs and a long tail,
/// from a fixed linear congruential sequence.
fn latency_histogram(seed: u64, n: usize) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).expect("histogram");
    let mut x = seed;
    for _ in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        // Pareto-ish tail: 200 µs / (1 - u)^0.7, capped at 60 ms.
        let ns = (200_000.0 / (1.0 - u).powf(0.7)).min(60e6) as u64;
        h.record(ns).expect("in bounds");
    }
    h
}

#[test]
fn hgrm_parses_back_to_the_same_percentiles() {
    let h = latency_histogram(7, 100_000);
    let text = hgrm::render(&h, hgrm::NS_PER_MS);
    let p = hgrm::parse(&text).expect("parses");
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    assert_eq!(p.total_count, h.len());
    assert!((p.max - h.max() as f64 / 1e6).abs() < 0.0005);
    assert!((p.mean - h.mean() / 1e6).abs() < 0.0005);
    assert!(p.rows.len() > 50, "{} rows", p.rows.len());
    let last = p.rows.last().expect("rows");
    assert_eq!(last.percentile, 1.0);
    assert_eq!(last.total_count, h.len());
    // Every row is the histogram's value below which TotalCount samples
    // lie, to the printed µs, at a percentile no higher than that share
    // (as in HdrHistogram, a tick can land one bucket late when the
    // accumulated tick is a hair above an exact count).
    let n = h.len() as f64;
    for r in &p.rows {
        let share = r.total_count as f64 / n;
        let want = h.value_at_quantile(share) as f64 / 1e6;
        assert!(
            (r.value - want).abs() < 0.0006,
            "row {r:?}: histogram says {want}"
        );
        assert!(r.percentile <= share + 1e-9, "row {r:?}");
    }
    // The percentiles people read off the file: p50 and p90 are ticks of
    // their own and equal the histogram's to its precision (3 significant
    // digits) and the printed µs; p99 and p99.9 lie between the rows
    // around them.
    for q in [0.5, 0.9] {
        let row = p.value_at(q).expect("a row at or above q");
        let exact = h.value_at_quantile(q) as f64 / 1e6;
        assert!(
            row >= exact - 0.0005 && row <= exact * 1.002 + 0.0005,
            "p{q}: file {row}, histogram {exact}"
        );
    }
    for q in [0.99, 0.999] {
        let exact = h.value_at_quantile(q) as f64 / 1e6;
        let below = p
            .rows
            .iter()
            .rfind(|r| r.percentile <= q)
            .expect("row below");
        let above = p.value_at(q).expect("row above");
        assert!(
            below.value <= exact + 0.0005 && exact <= above + 0.0005,
            "p{q}: {} <= {exact} <= {above}",
            below.value
        );
    }
}

#[test]
fn hgrm_files_are_named_by_scenario_and_window() {
    let dir = std::env::temp_dir().join(format!("hotsync-hgrm-{}", std::process::id()));
    let mut rep = Report::new("during-bulk");
    rep.latency("alone", &latency_histogram(1, 1000));
    rep.latency("during batch sync", &latency_histogram(2, 1000));
    let out = hotsync_bench::report::Outputs {
        hgrm: Some(dir.clone()),
        ..Default::default()
    };
    let files = rep.write(&out).expect("written");
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "during-bulk-alone.hgrm",
            "during-bulk-during-batch-sync.hgrm"
        ]
    );
    let back = hgrm::parse(&std::fs::read_to_string(&files[1]).expect("read")).expect("parse");
    assert_eq!(back.total_count, 1000);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn hgrm_values_follow_the_reports_unit() {
    let h = latency_histogram(3, 1000);
    let mut rep = Report::new("lookup");
    rep.latency_units(Unit::Nanos, Unit::Nanos);
    rep.latency("standby writer", &h);
    let dir = std::env::temp_dir().join(format!("hotsync-hgrm-ns-{}", std::process::id()));
    let out = hotsync_bench::report::Outputs {
        hgrm: Some(dir.clone()),
        ..Default::default()
    };
    let files = rep.write(&out).expect("written");
    let p = hgrm::parse(&std::fs::read_to_string(&files[0]).expect("read")).expect("parse");
    assert_eq!(p.max, h.max() as f64, "nanoseconds, not milliseconds");
    assert_eq!(p.value_at(0.5), Some(h.value_at_quantile(0.5) as f64));
    std::fs::remove_dir_all(&dir).expect("cleanup");
    let svg = rep.plot_svg().expect("windows").expect("rendered");
    assert!(texts(&svg).iter().any(|t| t == "latency (ns)"));
}

/// Polylines of more than two points drawn in `color` (legend samples
/// are two-point lines).
fn series_lines(svg: &str, color: plotters::style::RGBColor) -> usize {
    let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
    let hex = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| n.attribute("stroke") == Some(hex.as_str()))
        .filter(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count()
                > 2
        })
        .count()
}

fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

#[test]
fn latency_svg_has_one_curve_per_window() {
    let mut rep = Report::new("mixed");
    let names = ["without config sync", "with config sync", "third"];
    for (i, name) in names.iter().enumerate() {
        // Two runs per window: still one curve (the merged histogram).
        rep.latency(name, &latency_histogram(i as u64 * 2, 5000));
        rep.latency(name, &latency_histogram(i as u64 * 2 + 1, 5000));
    }
    let svg = rep
        .plot_svg()
        .expect("something to plot")
        .expect("rendered");
    assert!(svg.starts_with("<svg"));
    for i in 0..names.len() {
        assert_eq!(series_lines(&svg, plot::color(i)), 1, "window {i}");
    }
    assert_eq!(series_lines(&svg, plot::color(names.len())), 0);
    let t = texts(&svg);
    for (i, name) in names.iter().enumerate() {
        let w = &rep.windows()[i];
        assert_eq!(&w.name, name);
        let label = plot::legend(w);
        assert!(label.starts_with(&format!("{name}: p50 ")), "{label}");
        assert_eq!(
            t.iter().filter(|x| **x == label).count(),
            1,
            "legend {label}"
        );
    }
    assert!(t.iter().any(|x| x == "99%"), "percentile axis: {t:?}");
}

#[test]
fn bulk_svg_has_one_line_per_run_and_the_reference() {
    let mut rep = Report::new("bulk");
    for run in 0..2 {
        let samples: Vec<(f64, u64)> = (0..=20)
            .map(|i| (i as f64 * 0.05, i * 250_000 + run * 1000))
            .collect();
        rep.series(
            &format!("run {}", run + 1),
            hotsync_bench::report::rates(&samples, 0.1),
        );
    }
    rep.reference("naive pipeline (average)", 2.5e6);
    let svg = rep
        .plot_svg()
        .expect("something to plot")
        .expect("rendered");
    assert_eq!(series_lines(&svg, plot::color(0)), 1);
    assert_eq!(series_lines(&svg, plot::color(1)), 1);
    let t = texts(&svg);
    assert!(t.iter().any(|x| x == "run 1") && t.iter().any(|x| x == "run 2"));
    assert!(
        t.iter()
            .any(|x| x.starts_with("naive pipeline (average): 2.5M")),
        "{t:?}"
    );
}

#[test]
fn compare_prints_ratios_and_verdicts_of_two_reports() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let out = Command::new(env!("CARGO_BIN_EXE_hotsync-bench"))
        .args([
            "compare",
            &format!("{dir}/compare-old.json"),
            &format!("{dir}/compare-new.json"),
        ])
        .output()
        .expect("run hotsync-bench compare");
    assert!(out.status.success(), "exit 0 whatever the figures");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let row = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{text}"));
        line.split_whitespace().map(str::to_string).collect()
    };
    // figure, old, new, new/old, better, old spread (3 words), new spread, verdict
    let r = row("entries_per_s");
    assert_eq!(&r[1..5], ["5.00M", "6.00M", "1.200", "higher"]);
    assert_eq!(r.last().map(String::as_str), Some("better"));
    assert!(text.contains("3 runs ±3.0%"), "{text}");
    let r = row("wire_bytes_per_entry");
    assert_eq!(&r[1..5], ["88", "88", "1.000", "lower"]);
    assert_eq!(r.last().map(String::as_str), Some("same"));
    let r = row("rss_bytes_per_session");
    assert_eq!(&r[1..5], ["170", "187", "1.100", "lower"]);
    assert_eq!(r.last().map(String::as_str), Some("worse"));
    let r = row("records_per_batch");
    assert_eq!(&r[1..5], ["181", "150", "0.829", "-"]);
    assert_eq!(r.last().map(String::as_str), Some("changed"));
    let r = row("latency_us.p99");
    assert_eq!(&r[1..5], ["800", "880", "1.100", "lower"]);
    assert_eq!(r.last().map(String::as_str), Some("noise"));
    assert!(
        !text.contains("only_in_old"),
        "figures not shared are left out"
    );
    assert!(
        text.contains(
            "5 figures: 1 better, 1 worse, 1 noise (run ranges overlap), 1 same, 1 changed"
        ),
        "{text}"
    );
}

#[test]
fn compare_of_a_missing_file_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotsync-bench"))
        .args(["compare", "/nonexistent/a.json", "/nonexistent/b.json"])
        .output()
        .expect("run hotsync-bench compare");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/a.json"));
}
