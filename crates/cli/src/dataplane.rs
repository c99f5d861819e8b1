//! `hrp data-plane conntrack`: the node's session table mirrors the Linux
//! kernel's connection-tracking table (see `docs/CONNTRACK.md`).
//!
//! The data plane follows the node's HRP role: when the node becomes
//! active it takes over (commits the table to the kernel, most recently
//! active entries first, then feeds kernel events to the table); when it
//! becomes standby it stops feeding events. `hrp role active` does the
//! same on command and returns once the commit is complete, for a
//! keepalived notify script.

use hotsync_config::ConntrackSettings;
use hotsync_conntrack::{ConntrackConfig, CtError, DataPlane, Filter, Mode};
use hotsync_node::NodeHandle;
use hotsync_proto::Role;
use hotsync_table::SessionState;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// The running data plane and the thread that follows the HRP role.
pub struct Conntrack {
    plane: Arc<Mutex<DataPlane>>,
    stop: Arc<AtomicBool>,
    follower: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack").finish_non_exhaustive()
    }
}

/// The data plane's configuration from the node's settings.
pub fn config_of(s: &ConntrackSettings) -> ConntrackConfig {
    ConntrackConfig {
        mode: if s.mirror { Mode::Mirror } else { Mode::Commit },
        netns: s.netns.clone(),
        filter: Filter {
            addresses: s.ignore_addresses.clone(),
            protocols: s.ignore_protocols.clone(),
            tcp_states: s
                .ignore_tcp_states
                .iter()
                .filter_map(|b| SessionState::from_u8(*b))
                .collect(),
        },
        vsys: 0,
        event_buffer: None,
    }
}

impl Conntrack {
    /// Opens the kernel sockets (an error names the missing capability or
    /// namespace) and starts following the node's role.
    pub fn start(node: &NodeHandle, s: &ConntrackSettings) -> Result<Conntrack, CtError> {
        let plane = DataPlane::start(config_of(s), node.table().clone(), false)?;
        let plane = Arc::new(Mutex::new(plane));
        let stop = Arc::new(AtomicBool::new(false));
        let follower = {
            let (plane, stop, node) = (plane.clone(), stop.clone(), node.clone());
            std::thread::Builder::new()
                .name("hotsync-ct-role".into())
                .spawn(move || follow_role(&node, &plane, &stop))
                .map_err(CtError::Io)?
        };
        Ok(Conntrack {
            plane,
            stop,
            follower: Mutex::new(Some(follower)),
        })
    }

    /// `hrp role active|standby`: take over (commit, then feed events) or
    /// step down; returns once done.
    pub fn set_role(&self, active: bool) -> Result<String, CtError> {
        let plane = self.plane.lock().unwrap_or_else(PoisonError::into_inner);
        let t0 = std::time::Instant::now();
        let c = plane.set_active(active)?;
        Ok(if active {
            format!(
                "Info: data plane active: {} entries committed to the kernel in {} ms ({} refused).",
                c.ok,
                t0.elapsed().as_millis(),
                c.refused
            )
        } else {
            "Info: data plane standby: kernel events no longer feed the session table.".into()
        })
    }

    /// `display conntrack statistics`.
    pub fn statistics(&self) -> String {
        let plane = self.plane.lock().unwrap_or_else(PoisonError::into_inner);
        let st = plane.stats();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Data plane: conntrack, {}",
            if plane.is_active() {
                "active"
            } else {
                "standby"
            }
        );
        for (name, c) in [
            ("dumps", &st.dumps),
            ("entries dumped", &st.dumped),
            ("events upsert", &st.events_upsert),
            ("events destroy", &st.events_destroy),
            ("events echo (own commits)", &st.events_echo),
            ("events while standby", &st.events_standby),
            ("events lost (ENOBUFS)", &st.events_lost),
            ("resync removed", &st.resync_removed),
            ("dump restarts", &st.dump_restarts),
            ("malformed messages", &st.malformed),
            ("session table full", &st.table_full),
            ("committed", &st.committed),
            ("commit refused", &st.commit_refused),
            ("commit table full", &st.commit_table_full),
            ("mirror deleted", &st.mirror_deleted),
        ] {
            let _ = writeln!(o, "  {name:<28}: {}", c.load(Ordering::Relaxed));
        }
        o
    }

    /// Stops following the role and the data plane.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let follower = self
            .follower
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = follower {
            let _ = t.join();
        }
        self.plane
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shutdown();
    }
}

impl Drop for Conntrack {
    fn drop(&mut self) {
        self.stop();
    }
}

fn follow_role(node: &NodeHandle, plane: &Mutex<DataPlane>, stop: &AtomicBool) {
    let mut was_active = false;
    while !stop.load(Ordering::Acquire) {
        let active = node.role() == Role::Active;
        if active != was_active {
            let p = plane.lock().unwrap_or_else(PoisonError::into_inner);
            match p.set_active(active) {
                Ok(c) if active => tracing::info!(
                    "role active: data plane took over, {} entries committed ({} refused)",
                    c.ok,
                    c.refused
                ),
                Ok(_) => tracing::info!("role standby: data plane stepped down"),
                Err(e) => tracing::error!("data plane role change: {e}"),
            }
            was_active = active;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
