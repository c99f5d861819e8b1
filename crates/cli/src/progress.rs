//! Waiting for a batch-sync job: an indicatif bar on a terminal, plain
//! progress lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::display::{JobView, count, secs};

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
}

impl Mode {
    /// Bars when stdout is a terminal and `allow_bars`.
    pub fn detect(allow_bars: bool) -> Mode {
        if allow_bars && std::io::stdout().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        }
    }
}

/// Polls `poll` until the job ends (or `timeout`), showing progress under
/// `label`. Returns the last status seen, or the poll error.
pub fn wait_job(
    label: &str,
    mode: Mode,
    timeout: Duration,
    mut poll: impl FnMut() -> Result<JobView, String>,
) -> Result<JobView, String> {
    let start = Instant::now();
    let mut last = poll()?;
    // A job with nothing to send has no progress to show.
    let bar = (mode == Mode::Bar && !(last.finished() && last.total == 0)).then(|| {
        let b = ProgressBar::new(last.total.max(1));
        b.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:36.cyan/blue}] {human_pos}/{human_len} ({percent}%) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_prefix(label.to_owned());
        b
    });
    let mut last_line = Instant::now() - Duration::from_secs(10);
    let mut last_pct = u64::MAX;
    loop {
        let pct = (last.acked * 100)
            .checked_div(last.total)
            .unwrap_or(100)
            .min(100);
        match &bar {
            Some(b) => {
                b.set_length(last.total.max(1));
                b.set_position(last.acked.min(last.total.max(1)));
                b.set_message(format!(
                    "{}/s{}",
                    count(last.rate() as u64),
                    last.eta()
                        .map_or_else(String::new, |e| format!(" ETA {}", secs(e)))
                ));
            }
            None => {
                // A line at most every second, and at each 25 % step.
                let step = pct / 25;
                let moved = (last_pct != u64::MAX && step != last_pct / 25 && pct < 100)
                    || last_line.elapsed() >= Duration::from_secs(1);
                if moved && last.total > 0 {
                    println!(
                        "  {label}: {} of {} ({pct}%), {}/s",
                        count(last.acked),
                        count(last.total),
                        count(last.rate() as u64)
                    );
                    let _ = std::io::stdout().flush();
                    last_line = Instant::now();
                }
                last_pct = pct;
            }
        }
        if last.finished() {
            break;
        }
        if start.elapsed() >= timeout {
            if let Some(b) = &bar {
                b.abandon();
            }
            return Err(format!(
                "job {} still running after {}",
                last.id,
                secs(timeout)
            ));
        }
        std::thread::sleep(Duration::from_millis(if mode == Mode::Bar {
            50
        } else {
            100
        }));
        last = poll()?;
    }
    if let Some(b) = bar {
        if last.total == 0 {
            // Nothing was sent: no `1/1 (100%)` bar (the summary says so).
            b.finish_and_clear();
        } else {
            b.set_position(last.acked.min(b.length().unwrap_or(0)));
            b.finish();
        }
    }
    if mode == Mode::Lines && last.total > 0 {
        let pct = (last.acked * 100)
            .checked_div(last.total)
            .unwrap_or(100)
            .min(100);
        println!(
            "  {label}: {} of {} ({pct}%) {}",
            count(last.acked),
            count(last.total),
            last.state
        );
    }
    Ok(last)
}
