//! `hotsync node`: one node of a pair, with its admin socket.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hotsync_config::{Category, ConfigStore, NodeFile, check_node_file};
use hotsync_node::{Node, NodeConfig};
use hotsync_table::TableConfig;

use crate::admin::{Handler, Limits, Server};
use crate::commands::Commands;
use crate::socket_dir;

/// `line L, column C: rest` -> `FILE:L:C: rest` (compiler style).
pub fn located(file: &Path, msg: &str) -> String {
    let parsed = msg.strip_prefix("line ").and_then(|rest| {
        let (line, rest) = rest.split_once(", column ")?;
        let (col, rest) = rest.split_once(": ")?;
        line.parse::<u32>().ok()?;
        col.parse::<u32>().ok()?;
        Some(format!("{}:{line}:{col}: {rest}", file.display()))
    });
    parsed.unwrap_or_else(|| format!("{}: {msg}", file.display()))
}

/// Largest node file read (a 100,000-rule configuration is ~20 MiB).
const MAX_CONFIG_FILE: u64 = 256 << 20;

/// Reads and checks a node file ([`check_node_file`]); every error is
/// returned, one per line, compiler-style.
pub fn load(file: &Path) -> Result<NodeFile, String> {
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| {
            use std::io::Read;
            f.take(MAX_CONFIG_FILE + 1).read_to_string(&mut text)
        })
        .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(format!(
            "{}: larger than {} MiB; refusing to load it",
            file.display(),
            MAX_CONFIG_FILE >> 20
        ));
    }
    check_node_file(&text).map_err(|errors| {
        errors
            .iter()
            .map(|d| located(file, &d.to_string()))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `hotsync check-config FILE`: the checks `hotsync node` runs at start.
pub fn check_config(file: &Path) -> ExitCode {
    match load(file) {
        Ok(f) => {
            println!(
                "{}: configuration OK ({} items, {} virtual systems)",
                file.display(),
                f.store.len(),
                f.store.vsys_names().count()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// One warning per opaque line of a node file that is not a command the
/// shell knows (`vsys enable` is, a typo is not): kept as configuration
/// and synchronized like any item, but worth a look.
pub fn opaque_warnings(file: &Path, store: &ConfigStore) -> Vec<String> {
    store
        .all_items()
        .filter(|(_, it)| it.category() == Category::Opaque)
        .filter_map(|(vsys, it)| {
            let typed = match it.container() {
                Some(c) => format!("{} {}", c.keyword(), it.header()),
                None => it.header().to_owned(),
            };
            if crate::grammar::expand(&typed).is_ok() {
                return None;
            }
            let place = if vsys.is_empty() {
                String::new()
            } else {
                format!(" in virtual system {vsys}")
            };
            Some(format!(
                "{}:{}: warning: `{}`{place} is not a command hotsync knows: kept as opaque configuration, synchronized to the peer",
                file.display(),
                it.line().unwrap_or(0),
                hotsync_config::printable(it.header())
            ))
        })
        .collect()
}

pub fn run(
    file: &Path,
    (log_level, log_format): (&str, crate::LogFormat),
    capacity: usize,
    admin: Option<PathBuf>,
) -> ExitCode {
    if let Err(e) = crate::init_logging(log_level, log_format) {
        eprintln!("Error: {e}");
        return ExitCode::from(2);
    }
    let NodeFile { store, settings } = match load(file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for w in opaque_warnings(file, &store) {
        eprintln!("{w}");
    }
    let admin = socket_dir::resolve(admin.or(settings.admin_socket.clone()).as_deref());
    // Refuse a socket another user could replace before anything starts.
    if let Err(e) = socket_dir::prepare(&admin) {
        eprintln!("Error: admin socket {}: {e}", admin.display());
        return ExitCode::from(1);
    }
    let cfg = match NodeConfig::from_store(store, TableConfig::with_capacity(capacity.max(1))) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let (listen, peer) = (cfg.listen, cfg.peer);
    let node = match Node::start(cfg) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let data_plane = match &settings.conntrack {
        None => None,
        Some(ct) => match crate::dataplane::Conntrack::start(&node, ct) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                eprintln!("Error: conntrack data plane: {e}");
                node.shutdown();
                return ExitCode::from(1);
            }
        },
    };
    let commands = Commands::new(node.clone()).with_data_plane(data_plane.clone());
    let stop = Arc::clone(&commands.shutdown);
    let handler: Handler = Arc::new(move |vsys: &str, line: &str| commands.execute(vsys, line));
    let mut server = match Server::start(&admin, handler, Limits::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: admin socket {}: {e}", admin.display());
            node.shutdown();
            return ExitCode::from(1);
        }
    };
    // Off by default; the address is the operator's (loopback in the
    // examples): the endpoint has no authentication.
    let _metrics = match settings.metrics_listen {
        Some(addr) => match crate::metrics::Exporter::start(addr, node.clone()) {
            Ok(m) => {
                tracing::info!(%addr, "Prometheus metrics on http://{addr}/metrics");
                Some(m)
            }
            Err(e) => {
                eprintln!("Error: cannot listen for metrics on {addr}: {e}");
                server.stop();
                node.shutdown();
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    {
        let stop = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Release)) {
            tracing::warn!("cannot install the SIGINT/SIGTERM handler: {e}");
        }
    }
    tracing::info!(
        "node {} listening on {listen} (config {}), peer {peer}, admin socket {}",
        node.state().node_id,
        listen.port().wrapping_add(1),
        admin.display()
    );
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(
        "shutting down ({} admin clients connected)",
        server.clients()
    );
    server.stop();
    if let Some(dp) = &data_plane {
        dp.stop();
    }
    node.shutdown();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_compiler_style() {
        assert_eq!(
            located(
                Path::new("a.cfg"),
                "line 3, column 7: expected X, found `y`"
            ),
            "a.cfg:3:7: expected X, found `y`"
        );
        assert_eq!(located(Path::new("a.cfg"), "oops"), "a.cfg: oops");
    }

    #[test]
    fn unknown_opaque_lines_are_named_once_each() {
        let s = ConfigStore::parse(
            "#\n vsys enable\n#\nfirewall defned land enable\n#\nsecurity-policy\n default action deny\n rule nmae x\n#\nreturn\n",
        )
        .unwrap();
        let w = opaque_warnings(Path::new("n.cfg"), &s);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("n.cfg:4: warning: `firewall defned land enable`"));
        assert!(w[1].starts_with("n.cfg:8: warning: `rule nmae x`"));
        for example in [
            include_str!("../../../examples/node-a.cfg"),
            include_str!("../../../examples/node-b.cfg"),
        ] {
            let s = ConfigStore::parse(example).unwrap();
            assert_eq!(opaque_warnings(Path::new("x"), &s), Vec::<String>::new());
        }
    }
}
