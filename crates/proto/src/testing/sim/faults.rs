//! The faults a schedule injects into a [`Sim`], and the heal that ends
//! them.

use super::{Down, REDIAL_US, Sim, slot};
use crate::conn::ConnKind;
use crate::role::Role;
use crate::testing::Stranger;
use crate::testing::link::{Mangle, Side};
use crate::testing::rng::Rng;
use hotsync_table::{SessionEntry, SessionKey};
use hotsync_wire::{
    AuthProof, Channel, ConfigOp, Heartbeat, Hello, ResyncEnd, ResyncStart, SessionUpsertBatch,
};

impl Sim {
    /// Cuts `kind`: what is in flight is lost, both nodes see the
    /// transport go, and it is not redialled for `hold_us`.
    pub fn cut(&mut self, kind: ConnKind, hold_us: u64) {
        let now = self.now();
        let c = &mut self.channels[slot(kind)];
        c.down_until = c.down_until.max(self.t + hold_us);
        if !c.link.up {
            return;
        }
        c.link.close();
        for n in &mut self.nodes {
            n.peer.handle_disconnected(kind, now);
        }
    }

    /// Both connections cut for `hold_us`.
    pub fn partition(&mut self, hold_us: u64) {
        for kind in ConnKind::ALL {
            self.cut(kind, hold_us);
        }
    }

    /// Node `ni`'s process crashes: both connections go, and it restarts
    /// after `down_us` with its table (`keep_table`: the data plane kept
    /// it alive) or a new one, its peer seeded with `seed`. False when it
    /// is down already.
    pub fn crash(&mut self, ni: usize, down_us: u64, keep_table: bool, seed: u64) -> bool {
        if self.down[ni].is_some() {
            return false;
        }
        self.partition(down_us);
        self.down[ni] = Some(Down {
            until: self.t + down_us,
            keep_table,
            seed,
        });
        true
    }

    /// Node `ni` stops for `dur_us`: links stay up, nothing is read or
    /// sent, no timer runs; then it resumes with its backlog.
    pub fn pause(&mut self, ni: usize, dur_us: u64) {
        self.paused_until[ni] = self.paused_until[ni].max(self.t + dur_us);
    }

    /// Arms `m` for the next segment node `from` sends on `kind`.
    pub fn mangle(&mut self, kind: ConnKind, from: usize, m: Mangle) {
        self.channels[slot(kind)]
            .link
            .mangle_next(Side::BOTH[from], m);
    }

    /// Both nodes send at most `budget` bytes per step on `kind` for
    /// `dur_us`: a receiver that reads slowly.
    pub fn slow(&mut self, kind: ConnKind, dur_us: u64, budget: usize) {
        self.channels[slot(kind)].slow = Some((budget, self.t + dur_us));
    }

    /// Ends every fault: crashed nodes restart at the next step, paused
    /// ones resume, links may redial at once at full speed, armed mangles
    /// are disarmed.
    pub fn heal(&mut self) {
        for ni in 0..2 {
            if let Some(d) = &mut self.down[ni] {
                d.until = self.t;
            }
            self.paused_until[ni] = self.paused_until[ni].min(self.t);
        }
        for c in &mut self.channels {
            c.down_until = 0;
            c.slow = None;
            c.link.clear_mangles();
        }
    }

    /// A third party without the key takes node `ni`'s `kind` connection,
    /// if the node lets it in (only a connection that is not up gives
    /// way), and claims to be the peer: a hello with priority 65535 and
    /// role active, a forged proof, a heartbeat, then `sessions` and a
    /// resync (session connection) or the change `op` (config
    /// connection), all in one read. Returns whether it got in.
    pub fn stranger(
        &mut self,
        ni: usize,
        kind: ConnKind,
        seed: u64,
        sessions: &[(SessionKey, SessionEntry)],
        op: &str,
    ) -> bool {
        if !self.alive(ni) || !self.nodes[ni].peer.may_accept(kind) {
            return false;
        }
        // The half-open real connection gives way (the driver closes it).
        self.cut(kind, REDIAL_US);
        let now = self.now();
        let mut rng = Rng::new(seed);
        let (nonce, local) = (rng.nonce(), rng.nonce());
        let claimed = self.cfg.nodes[1 - ni].node_id;
        let shards = self.cfg.table.shards as u32;
        let node = &mut self.nodes[ni];
        let mut s = Stranger::accepted(node, kind, nonce, local, now);
        let active = Role::Active.to_u8();
        let hello = Hello {
            preempt: true,
            incarnation: rng.next(),
            ..s.hello(claimed, 65535, active, shards, true)
        };
        let mut out = Vec::new();
        s.encode(Channel::Control, &hello, &mut out);
        s.encode(Channel::Control, &AuthProof { mac: [0x5a; 32] }, &mut out);
        let hb = Heartbeat {
            role: active,
            priority: 65535,
            sent_at_ms: 1,
        };
        s.encode(Channel::Control, &hb, &mut out);
        if kind == ConnKind::Session {
            let mut marks = SessionUpsertBatch::default();
            for (k, e) in sessions {
                marks.push(k, e);
            }
            s.encode(Channel::Session, &marks, &mut out);
            s.encode(
                Channel::Session,
                &ResyncStart { shard: 0, epoch: 7 },
                &mut out,
            );
            s.encode(
                Channel::Session,
                &ResyncEnd { shard: 0, epoch: 7 },
                &mut out,
            );
        } else {
            let op = ConfigOp {
                op: 0,
                vsys: String::new(),
                text: op.into(),
            };
            s.encode(Channel::Config, &op, &mut out);
        }
        // The node drops the connection at the first frame it refuses;
        // what follows must not matter.
        let _ = node.peer.handle_bytes(kind, &out, now);
        node.peer.handle_disconnected(kind, now);
        self.log
            .push(format!("t={} stranger on node{ni} {}", self.t, kind.name()));
        true
    }
}
