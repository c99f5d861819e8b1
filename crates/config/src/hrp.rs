//! The node's own hot-standby settings, read from its `hrp` lines.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::SettingsError;
use crate::item::Category;
use crate::store::ConfigStore;
use crate::syntax::{Bad, bad, end, keyword, need, number};

/// An `hrp local-address` / `hrp remote-address` endpoint. The session
/// channel uses `port`, the configuration channel `port + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HrpEndpoint {
    /// The address.
    pub address: IpAddr,
    /// The session-channel port (1-65534).
    pub port: u16,
}

impl HrpEndpoint {
    /// Where the session channel listens / connects (`port`).
    pub fn session_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// Where the configuration channel listens / connects (`port + 1`).
    pub fn config_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port.saturating_add(1))
    }
}

/// The node's hot-standby settings (node-local: never synchronized).
///
/// | command | field | default |
/// |---|---|---|
/// | `hrp enable` | `enabled` | off |
/// | `hrp node-id N` | `node_id` | none |
/// | `hrp local-address IP port P` | `local` | none |
/// | `hrp remote-address IP port P` | `remote` | none |
/// | `hrp priority N` (0-65535) | `priority` | 100 |
/// | `hrp preempt [delay S]` (0-3600) | `preempt` | off; delay 60 s |
/// | `hrp timer hello MS` (100-60000) | `hello_interval` | 1000 ms |
/// | `hrp dead-count N` (1-255) | `dead_count` | 3 |
/// | `hrp authentication-key TEXT` | `authentication_key` | none |
/// | `hrp encryption-key TEXT` (needs an authentication key) | `encryption_key` | none |
/// | `hrp admin-socket PATH` | `admin_socket` | none |
/// | `hrp auto-sync config static-route` | `auto_sync_static_route` | off (B8) |
/// | `hrp auto-sync on-establish` | `auto_sync_on_establish` | off (B4) |
/// | `hrp standby config enable` | `standby_config_enable` | off |
/// | `hrp table shards N` (power of two, 1-4096) | `table_shards` | 256 |
/// | `hrp metrics listen IP port P` | `metrics_listen` | off |
/// | `hrp role-control external` | `role_control_external` | off |
/// | `hrp data-plane conntrack [mode commit\|mirror] [netns NAME]` | `conntrack` | none |
/// | `hrp data-plane conntrack ignore address IP` / `protocol N` / `state NAME` | `conntrack` ignore lists | empty |
///
/// VRP's `hrp` commands hotsync does not implement ([`IGNORED_HRP`]: `hrp
/// mirror session enable`, `hrp track ...`) are kept in the store and
/// ignored here; any other `hrp` word is an error (a typo such as `hrp
/// priorty 120` must not leave the default silently in force).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HrpSettings {
    /// `hrp enable`.
    pub enabled: bool,
    /// `hrp node-id N`: breaks priority ties.
    pub node_id: Option<u32>,
    /// `hrp local-address IP port P`.
    pub local: Option<HrpEndpoint>,
    /// `hrp remote-address IP port P`.
    pub remote: Option<HrpEndpoint>,
    /// `hrp priority N`: the higher is active.
    pub priority: u16,
    /// `hrp preempt [delay S]`: `Some(delay)` when preemption is on.
    pub preempt: Option<Duration>,
    /// `hrp timer hello MS`.
    pub hello_interval: Duration,
    /// `hrp dead-count N`: hellos missed before the peer is down.
    pub dead_count: u32,
    /// `hrp authentication-key TEXT` (the pre-shared key).
    pub authentication_key: Option<String>,
    /// `hrp encryption-key TEXT`: encrypt every frame after the handshake
    /// (AES-256-GCM, keys per connection and direction).
    pub encryption_key: Option<String>,
    /// `hrp admin-socket PATH`.
    pub admin_socket: Option<PathBuf>,
    /// `hrp auto-sync config static-route` (B8).
    pub auto_sync_static_route: bool,
    /// `hrp auto-sync on-establish`: batch sync when the relationship forms (B4).
    pub auto_sync_on_establish: bool,
    /// `hrp standby config enable`: configuration may be typed on the standby.
    pub standby_config_enable: bool,
    /// `hrp table shards N`: the session table's shard count. A protocol
    /// setting (both nodes must agree), not derived from the machine.
    pub table_shards: Option<usize>,
    /// `hrp metrics listen IP port P`: where the Prometheus endpoint listens.
    pub metrics_listen: Option<SocketAddr>,
    /// `hrp role-control external`: the role changes only by `hrp role
    /// active|standby` (keepalived's notify script); hotsync's own election
    /// is off.
    pub role_control_external: bool,
    /// `hrp data-plane conntrack ...`: the session table mirrors the Linux
    /// kernel's connection-tracking table.
    pub conntrack: Option<ConntrackSettings>,
}

/// `hrp data-plane conntrack [mode commit|mirror] [netns NAME]` and its
/// `ignore` lines (conntrackd's `Filter` section).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConntrackSettings {
    /// `mode mirror`: write replicated entries to the standby's kernel
    /// continuously; otherwise (`mode commit`, the default) commit them on
    /// takeover.
    pub mirror: bool,
    /// `netns NAME`: open the netlink sockets in this `ip netns` namespace.
    pub netns: Option<String>,
    /// `ignore address IP`: entries from or to it stay local-only.
    pub ignore_addresses: Vec<IpAddr>,
    /// `ignore protocol N`: entries of this IP protocol stay local-only.
    pub ignore_protocols: Vec<u8>,
    /// `ignore state NAME`: TCP entries in this state (conntrack's names,
    /// e.g. `SYN_SENT`) stay local-only, as conntrack state bytes.
    pub ignore_tcp_states: Vec<u8>,
}

/// Longest `netns` name accepted (Linux interface-name sized).
const MAX_NETNS_NAME: usize = 64;

/// TCP conntrack state names, in the kernel's numbering.
const TCP_STATES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];

fn data_plane(s: &mut HrpSettings, t: &[&str]) -> Result<(), Bad> {
    keyword(t, 2, "conntrack")?;
    let ct = s.conntrack.get_or_insert_with(ConntrackSettings::default);
    if t.get(3) == Some(&"ignore") {
        match t.get(4).copied() {
            Some("address") => ct.ignore_addresses.push(number(t, 5, "an IP address")?),
            Some("protocol") => ct
                .ignore_protocols
                .push(number(t, 5, "a protocol number 0-255")?),
            Some("state") => {
                need(t, 5, "a TCP state name")?;
                let name = t[5];
                let i = TCP_STATES
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(name))
                    .ok_or_else(|| bad(t, 5, "a TCP state name (SYN_SENT, ESTABLISHED, ...)"))?;
                ct.ignore_tcp_states.push(i as u8);
            }
            _ => return Err(bad(t, 4, "`address`, `protocol` or `state`")),
        }
        return end(t, 6);
    }
    let mut i = 3;
    while i < t.len() {
        match t[i] {
            "mode" => match t.get(i + 1).copied() {
                Some("mirror") => ct.mirror = true,
                Some("commit") => ct.mirror = false,
                _ => return Err(bad(t, i + 1, "`mirror` or `commit`")),
            },
            "netns" => {
                need(t, i + 1, "a network namespace name")?;
                let name = t[i + 1];
                if name.len() > MAX_NETNS_NAME || name.contains('/') || name.starts_with('.') {
                    return Err(bad(t, i + 1, "a network namespace name"));
                }
                ct.netns = Some(name.to_owned());
            }
            _ => return Err(bad(t, i, "`mode`, `netns` or `ignore`")),
        }
        i += 2;
    }
    Ok(())
}

/// VRP `hrp` commands accepted in a node file and ignored (hotsync has no
/// equivalent, and refusing them would refuse a real firewall's file).
pub const IGNORED_HRP: &[&str] = &["mirror", "track", "interface", "adjust", "escape"];

/// Every `hrp` command word hotsync reads, for error messages.
const HRP_EXPECTED: &str = "an hrp command (enable, node-id, local-address, remote-address, priority, preempt, timer, dead-count, authentication-key, encryption-key, admin-socket, auto-sync, standby, table, data-plane, metrics, role-control)";

impl HrpSettings {
    /// Default `hrp priority`.
    pub const DEFAULT_PRIORITY: u16 = 100;
    /// Default `hrp timer hello`.
    pub const DEFAULT_HELLO: Duration = Duration::from_millis(1000);
    /// Default `hrp dead-count`.
    pub const DEFAULT_DEAD_COUNT: u32 = 3;
    /// Delay of `hrp preempt` without `delay`.
    pub const DEFAULT_PREEMPT_DELAY: Duration = Duration::from_secs(60);

    /// Read the root system's `hrp` lines, in order (a later line of the same
    /// command wins). Errors carry the line of the parsed text (0 for lines
    /// typed at run time).
    pub fn from_store(store: &ConfigStore) -> Result<HrpSettings, SettingsError> {
        let mut s = HrpSettings::default();
        let Some(items) = store.items("") else {
            return Ok(s);
        };
        for item in items.filter(|i| i.category() == Category::Hrp) {
            let header = item.header();
            let t: Vec<&str> = header.split_whitespace().collect();
            apply_hrp(&mut s, &t).map_err(|b| {
                let (column, found) = crate::parse::locate(header, &t, b.at);
                SettingsError::Invalid {
                    line: item.line().unwrap_or(0),
                    column,
                    command: header.to_owned(),
                    expected: b.expected,
                    found,
                }
            })?;
        }
        Ok(s)
    }

    /// The silence after which the peer is down: hello interval x dead count.
    pub fn dead_interval(&self) -> Duration {
        self.hello_interval.saturating_mul(self.dead_count)
    }
}

impl Default for HrpSettings {
    fn default() -> Self {
        HrpSettings {
            enabled: false,
            node_id: None,
            local: None,
            remote: None,
            priority: Self::DEFAULT_PRIORITY,
            preempt: None,
            hello_interval: Self::DEFAULT_HELLO,
            dead_count: Self::DEFAULT_DEAD_COUNT,
            authentication_key: None,
            encryption_key: None,
            admin_socket: None,
            auto_sync_static_route: false,
            auto_sync_on_establish: false,
            standby_config_enable: false,
            table_shards: None,
            metrics_listen: None,
            role_control_external: false,
            conntrack: None,
        }
    }
}

impl fmt::Debug for HrpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HrpSettings")
            .field("enabled", &self.enabled)
            .field("node_id", &self.node_id)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("priority", &self.priority)
            .field("preempt", &self.preempt)
            .field("hello_interval", &self.hello_interval)
            .field("dead_count", &self.dead_count)
            .field(
                "authentication_key",
                &self.authentication_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "<redacted>"),
            )
            .field("admin_socket", &self.admin_socket)
            .field("auto_sync_static_route", &self.auto_sync_static_route)
            .field("auto_sync_on_establish", &self.auto_sync_on_establish)
            .field("standby_config_enable", &self.standby_config_enable)
            .field("table_shards", &self.table_shards)
            .field("metrics_listen", &self.metrics_listen)
            .field("role_control_external", &self.role_control_external)
            .field("conntrack", &self.conntrack)
            .finish()
    }
}

fn endpoint(t: &[&str]) -> Result<HrpEndpoint, Bad> {
    let address: IpAddr = number(t, 2, "an IP address")?;
    keyword(t, 3, "port")?;
    let port: u16 = number(t, 4, "a port 1-65534")?;
    if port == 0 || port == u16::MAX {
        return Err(bad(t, 4, "a port 1-65534"));
    }
    end(t, 5)?;
    Ok(HrpEndpoint { address, port })
}

fn ranged<N: std::str::FromStr + PartialOrd>(
    t: &[&str],
    i: usize,
    lo: N,
    hi: N,
    expected: &'static str,
) -> Result<N, Bad> {
    let n: N = number(t, i, expected)?;
    if n < lo || n > hi {
        return Err(bad(t, i, expected));
    }
    end(t, i + 1)?;
    Ok(n)
}

/// Apply one `hrp` line (tokens, starting with `hrp`) to `s`. Unknown `hrp`
/// commands are refused, except VRP's in [`IGNORED_HRP`].
pub(crate) fn apply_hrp(s: &mut HrpSettings, t: &[&str]) -> Result<(), Bad> {
    let w = |i: usize| t.get(i).copied();
    match w(1) {
        Some("enable") => {
            end(t, 2)?;
            s.enabled = true;
        }
        Some("node-id") => s.node_id = Some(ranged(t, 2, 0, u32::MAX, "a node id")?),
        Some("local-address") => s.local = Some(endpoint(t)?),
        Some("remote-address") => s.remote = Some(endpoint(t)?),
        Some("priority") => s.priority = ranged(t, 2, 0, u16::MAX, "a priority 0-65535")?,
        Some("preempt") => {
            s.preempt = Some(if t.len() == 2 {
                HrpSettings::DEFAULT_PREEMPT_DELAY
            } else {
                keyword(t, 2, "delay")?;
                Duration::from_secs(ranged(t, 3, 0, 3600, "a delay 0-3600 seconds")?)
            });
        }
        Some("timer") => {
            keyword(t, 2, "hello")?;
            let ms: u64 = ranged(t, 3, 100, 60_000, "a hello interval 100-60000 ms")?;
            s.hello_interval = Duration::from_millis(ms);
        }
        Some("dead-count") => s.dead_count = ranged(t, 2, 1, 255, "a dead count 1-255")?,
        Some("authentication-key") => {
            need(t, 2, "a key")?;
            let key = t[2..].join(" ");
            if crate::secret::is_mask(&key) {
                // Pasted from `display current-configuration`: the mask is
                // not the key.
                return Err(bad(t, 2, "the key in clear (displays show it masked)"));
            }
            s.authentication_key = Some(key);
        }
        Some("encryption-key") => {
            need(t, 2, "a key")?;
            let key = t[2..].join(" ");
            if crate::secret::is_mask(&key) {
                return Err(bad(t, 2, "the key in clear (displays show it masked)"));
            }
            s.encryption_key = Some(key);
        }
        Some("admin-socket") => {
            need(t, 2, "a socket path")?;
            end(t, 3)?;
            s.admin_socket = Some(PathBuf::from(t[2]));
        }
        Some("auto-sync") => match (w(2), w(3)) {
            (Some("config"), Some("static-route")) => {
                end(t, 4)?;
                s.auto_sync_static_route = true;
            }
            (Some("on-establish"), _) => {
                end(t, 3)?;
                s.auto_sync_on_establish = true;
            }
            (Some("config"), _) => return Err(bad(t, 3, "`static-route`")),
            _ => return Err(bad(t, 2, "`config static-route` or `on-establish`")),
        },
        Some("table") => {
            keyword(t, 2, "shards")?;
            const EXPECTED: &str = "a shard count: a power of two 1-4096";
            let n: usize = ranged(t, 3, 1, 4096, EXPECTED)?;
            if !n.is_power_of_two() {
                return Err(bad(t, 3, EXPECTED));
            }
            s.table_shards = Some(n);
        }
        Some("data-plane") => data_plane(s, t)?,
        Some("standby") => {
            keyword(t, 2, "config")?;
            keyword(t, 3, "enable")?;
            end(t, 4)?;
            s.standby_config_enable = true;
        }
        Some("metrics") => {
            keyword(t, 2, "listen")?;
            let address: IpAddr = number(t, 3, "an IP address")?;
            keyword(t, 4, "port")?;
            let port: u16 = number(t, 5, "a port 1-65535")?;
            if port == 0 {
                return Err(bad(t, 5, "a port 1-65535"));
            }
            end(t, 6)?;
            s.metrics_listen = Some(SocketAddr::new(address, port));
        }
        Some("role-control") => {
            keyword(t, 2, "external")?;
            end(t, 3)?;
            s.role_control_external = true;
        }
        Some(w) if IGNORED_HRP.contains(&w) => {}
        _ => return Err(bad(t, 1, HRP_EXPECTED)),
    }
    Ok(())
}
