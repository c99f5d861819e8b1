//! `hotsync`: the node daemon, the admin shell and the pair demo.
//!
//! - `hotsync node --config FILE`: runs one node of a hot-standby pair and
//!   serves its admin socket (see `docs/COMMANDS.md`).
//! - `hotsync cli --admin SOCKET [COMMAND]...`: runs commands against a
//!   node, or opens an interactive shell.
//! - `hotsync check-config FILE`: reports every error of a node file.
//! - `hotsync demo`: an active/standby pair on loopback in one process.

mod admin;
mod commands;
mod conntrack;
mod daemon;
mod dataplane;
mod demo;
mod display;
mod grammar;
mod json;
mod metrics;
mod progress;
mod shell;
mod socket_dir;
mod vsys;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hotsync",
    version,
    about = "Replicates a firewall's session table and configuration between the two nodes of a hot-standby pair (HRP `hrp sync` semantics)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one node of a pair: read the configuration file, start the
    /// engine and serve the admin socket until SIGINT/SIGTERM or
    /// `shutdown node`.
    Node {
        /// The node's configuration file (VRP-style text with its `hrp` lines).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Log filter: error, warn, info, debug, trace, or a tracing
        /// env-filter directive (`hotsync_node=debug,info`).
        #[arg(long, value_name = "LEVEL", default_value = "info")]
        log_level: String,
        /// Log lines as human text (default) or one JSON object per line.
        #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Most sessions the table holds (storage is reserved up front).
        #[arg(long, value_name = "N", default_value_t = 1 << 20)]
        sessions_capacity: usize,
        /// Admin socket (overrides `hrp admin-socket PATH`; default
        /// `hotsync.sock` in the private runtime directory: `/run/hotsync`
        /// for root, else `$XDG_RUNTIME_DIR/hotsync` or `/tmp/hotsync-UID`).
        /// A bare file name goes in that directory.
        #[arg(long, value_name = "SOCKET")]
        admin: Option<PathBuf>,
    },
    /// Check a node file as `hotsync node` would before it starts: report
    /// every error as FILE:LINE:COLUMN, exit 2 if there is one, 0 if not.
    CheckConfig {
        /// The node's configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Run commands against a node's admin socket, or open an interactive
    /// shell when no command is given. Each COMMAND is one command line
    /// (quote it): `hotsync cli --admin S "display hrp state" "hrp sync config --wait"`.
    Cli {
        /// The node's admin socket (default and bare file names as for
        /// `hotsync node --admin`).
        #[arg(long, value_name = "SOCKET")]
        admin: Option<PathBuf>,
        /// Print `display hrp state`, `display hrp statistics` and `display
        /// hrp sync-status` as one JSON object each (keys in
        /// docs/COMMANDS.md); other commands are refused.
        #[arg(long)]
        json: bool,
        /// Commands to run in order; stops at the first that fails.
        #[arg(value_name = "COMMAND", trailing_var_arg = true)]
        commands: Vec<String>,
    },
    /// Start an active/standby pair on loopback in this process, fill the
    /// active node, synchronize, and report.
    Demo {
        /// Sessions to generate on the active node before the pair forms.
        #[arg(long, value_name = "N", default_value_t = 1_000_000)]
        sessions: u64,
        /// Plain progress lines instead of progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Also write the summary as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Seconds of incremental updates after the batch sync ends.
        #[arg(long, value_name = "S", default_value_t = 3)]
        traffic_seconds: u64,
        /// Data-plane operations per second during the demo.
        #[arg(long, value_name = "N", default_value_t = 50_000)]
        rate: u64,
        /// Log filter (see `hotsync node --log-level`).
        #[arg(long, value_name = "LEVEL", default_value = "warn")]
        log_level: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node {
            config,
            log_level,
            log_format,
            sessions_capacity,
            admin,
        } => daemon::run(&config, (&log_level, log_format), sessions_capacity, admin),
        Cmd::CheckConfig { file } => daemon::check_config(&file),
        Cmd::Cli {
            admin,
            json,
            commands,
        } => shell::run(&socket_dir::resolve(admin.as_deref()), commands, json),
        Cmd::Demo {
            sessions,
            no_progress,
            json,
            traffic_seconds,
            rate,
            log_level,
        } => demo::run(demo::DemoOptions {
            sessions,
            no_progress,
            json,
            traffic_seconds,
            rate,
            log_level,
        }),
    }
}

/// The levels `--log-level` takes, alone or as `TARGET=LEVEL`.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Parses `--log-level`: a level, or comma-separated directives each a level
/// or `TARGET=LEVEL`. tracing's own parser takes a bare word as a target
/// name (`loud` would mean "log target `loud` only": nothing at all).
pub(crate) fn log_filter(level: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    let invalid = |what: &str| {
        format!(
            "invalid --log-level `{level}`: `{what}` is not one of {} or TARGET=LEVEL",
            LEVELS.join(", ")
        )
    };
    for directive in level.split(',') {
        let lvl = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if !LEVELS.contains(&lvl.trim().to_ascii_lowercase().as_str()) {
            return Err(invalid(directive));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| format!("invalid --log-level `{level}`: {e}"))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `2026-11-30T01:02:03Z  INFO hrp{node=1}: HRP role changed from=initial to=active ...`
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with
    /// `message`), `span` (`node`), for journald / Loki / Elasticsearch.
    Json,
}

/// Installs the tracing subscriber (to stderr) with `level` as filter.
pub(crate) fn init_logging(level: &str, format: LogFormat) -> Result<(), String> {
    let filter = log_filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    }
    .map_err(|e| format!("cannot install the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn log_levels_are_checked() {
        for ok in ["info", "warn", "DEBUG", "hotsync_node=debug,info", "off"] {
            assert!(log_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["loud", "", "info,loud", "hotsync_node=loud"] {
            let e = log_filter(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("invalid --log-level `{bad}`")),
                "{e}"
            );
        }
    }
}
