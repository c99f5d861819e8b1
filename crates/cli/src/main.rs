//! `hotsync`: the node daemon, the admin shell and the pair demo.
//!
//! - `hotsync node --config FILE`: runs one node of a hot-standby pair and
//!   serves its admin socket (see `docs/COMMANDS.md`).
//! - `hotsync cli --admin SOCKET [COMMAND]...`: runs commands against a
//!   node, or opens an interactive shell.
//! - `hotsync demo`: an active/standby pair on loopback in one process.

mod admin;
mod commands;
mod conntrack;
mod daemon;
mod dataplane;
mod demo;
mod display;
mod grammar;
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
    /// Run commands against a node's admin socket, or open an interactive
    /// shell when no command is given. Each COMMAND is one command line
    /// (quote it): `hotsync cli --admin S "display hrp state" "hrp sync config --wait"`.
    Cli {
        /// The node's admin socket (default and bare file names as for
        /// `hotsync node --admin`).
        #[arg(long, value_name = "SOCKET")]
        admin: Option<PathBuf>,
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
            sessions_capacity,
            admin,
        } => daemon::run(&config, &log_level, sessions_capacity, admin),
        Cmd::Cli { admin, commands } => {
            shell::run(&socket_dir::resolve(admin.as_deref()), commands)
        }
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

/// Installs the tracing subscriber (to stderr) with `level` as filter.
pub(crate) fn init_logging(level: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| format!("invalid --log-level `{level}`: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))
}
