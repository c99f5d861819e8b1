//! The sync rules: what may cross (B8, B10), batch receive (B5, B7) and
//! incremental receive (B3).

use std::fmt;

use crate::command::{ChangeOp, ConfigChange};
use crate::error::ApplyError;
use crate::item::{BodyLine, Category, ConfigItem, Identity};
use crate::limits::{MAX_NAME_CHARS, printable};
use crate::order::{Misplaced, Placement, StreamOrder, is_ordered};
use crate::store::{ConfigStore, ROOT, Upsert};
use crate::syntax::sub_keywords;

/// The single source of the rule "may this category cross to the peer":
/// never the node-local categories (sysname, interfaces, zones, `hrp`),
/// never the user database or SSL VPN (B10); static routes only when
/// `static_routes` (`hrp auto-sync config static-route`, B8); everything
/// else (rules, sets, vsys declarations, opaque commands) yes.
pub fn is_syncable(category: Category, static_routes: bool) -> bool {
    match category {
        Category::Sysname
        | Category::Interface
        | Category::Zone
        | Category::Hrp
        | Category::UserDatabase
        | Category::SslVpn => false,
        Category::StaticRoute => static_routes,
        Category::SecurityRule
        | Category::NatRule
        | Category::AddressSet
        | Category::ServiceSet
        | Category::Vsys
        | Category::Opaque => true,
    }
}

/// What differs between the two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConflictKind {
    /// The same identity with other parameters: nothing applied (B7).
    Parameters,
    /// A security or NAT rule stands elsewhere in its first-match list
    /// than on the sender (see [`crate::Placement`]).
    Order,
}

/// A sync found the same item (same identity) on both nodes with different
/// parameters, nothing applied (B7); or a rule whose place in its list
/// differs from the sender's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Parameters or order.
    pub kind: ConflictKind,
    /// The system (`""` = root).
    pub vsys: String,
    /// The item's identity.
    pub identity: Identity,
    /// The receiver's item, rendered (order: where it stands here).
    pub local: String,
    /// The sender's item, rendered (order: where it stands there).
    pub remote: String,
    /// Caller-given time of the batch (e.g. Unix seconds).
    pub at: u64,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vsys = if self.vsys.is_empty() {
            "root"
        } else {
            &self.vsys
        };
        match self.kind {
            ConflictKind::Parameters => write!(
                f,
                "conflict in {vsys}: {}\n--- local\n{}--- remote\n{}",
                self.identity, self.local, self.remote
            ),
            ConflictKind::Order => write!(
                f,
                "order differs in {vsys}: {}\n--- local\n {}\n--- remote\n {}\n",
                self.identity, self.local, self.remote
            ),
        }
    }
}

/// Why a batch item was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The category may not cross (see [`is_syncable`]).
    NotSyncable(Category),
    /// The item names a virtual system the receiver lacks (and the batch
    /// did not declare it first).
    UnknownVsys(String),
    /// A `vsys name` declaration addressed to a virtual system.
    VsysOutsideRoot(String),
    /// A sub-command that may not cross hidden in a block (`hrp ...` under
    /// an opaque command), escaped and shortened for display.
    ForbiddenSubCommand(String),
    /// A sub-command this node's grammar does not have for the block's
    /// category (a security rule's `hrp priority 1`, an address set's
    /// `rule name x`): refused as it would be if typed here. Escaped and
    /// shortened for display.
    UnknownSubCommand(Category, String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NotSyncable(c) => write!(f, "{c} items are not synchronized"),
            RejectReason::UnknownVsys(v) => {
                write!(f, "virtual system `{}` does not exist", printable(v))
            }
            RejectReason::VsysOutsideRoot(v) => {
                write!(f, "vsys declaration addressed to vsys `{}`", printable(v))
            }
            RejectReason::ForbiddenSubCommand(line) => write!(
                f,
                "a block may not hold `{}`: node-local, user and SSL VPN commands never cross",
                printable(line)
            ),
            RejectReason::UnknownSubCommand(category, line) => write!(
                f,
                "`{}` is not a sub-command of a {category}",
                printable(line)
            ),
        }
    }
}

/// What the receiver did with one batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The receiver lacked it: added at the end of its section.
    Added,
    /// The receiver has the same item: nothing to do.
    Equal,
    /// The receiver has the same identity with other parameters: nothing
    /// applied, a [`Conflict`] recorded.
    Conflict,
    /// Refused.
    Rejected(RejectReason),
}

/// Counts of a batch sync job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BatchReport {
    /// Items the sender sent.
    pub sent: u64,
    /// Items the receiver added.
    pub added: u64,
    /// Items already present and equal.
    pub equal: u64,
    /// Items present with other parameters (reported, not applied).
    pub conflicts: u64,
    /// Items refused.
    pub rejected: u64,
}

impl BatchReport {
    /// Count one outcome (does not touch `sent`).
    pub fn record(&mut self, outcome: &BatchOutcome) {
        match outcome {
            BatchOutcome::Added => self.added += 1,
            BatchOutcome::Equal => self.equal += 1,
            BatchOutcome::Conflict => self.conflicts += 1,
            BatchOutcome::Rejected(_) => self.rejected += 1,
        }
    }

    /// Items the receiver has accounted for.
    pub fn received(&self) -> u64 {
        self.added + self.equal + self.conflicts + self.rejected
    }

    /// Add another report's counts to this one.
    pub fn merge(&mut self, other: &BatchReport) {
        self.sent += other.sent;
        self.added += other.added;
        self.equal += other.equal;
        self.conflicts += other.conflicts;
        self.rejected += other.rejected;
    }
}

impl ConfigStore {
    /// What `hrp sync config` sends (B1, B9): every syncable item of the
    /// root and of every vsys, as `(vsys, item)` with `""` for the root.
    /// Order: the root's `vsys name` declarations first (so the receiver
    /// can create the systems), then the root's other items, then each
    /// vsys in declaration order; within a section, the section's order.
    pub fn syncable(&self, static_routes: bool) -> impl Iterator<Item = (&str, &ConfigItem)> {
        let decls = self.root.items().filter(|it| it.category == Category::Vsys);
        let rest = self.root.items().filter(move |it| {
            it.category != Category::Vsys && is_syncable(it.category, static_routes)
        });
        let vsys = self.vsys.iter().flat_map(move |v| {
            v.system
                .items()
                .filter(move |it| is_syncable(it.category, static_routes))
                .map(move |it| (v.name.as_str(), it))
        });
        decls.chain(rest).map(|it| (ROOT, it)).chain(vsys)
    }

    /// [`ConfigStore::syncable`], owned.
    pub fn syncable_items(&self, static_routes: bool) -> Vec<(String, ConfigItem)> {
        self.syncable(static_routes)
            .map(|(v, it)| (v.to_owned(), it.clone()))
            .collect()
    }

    /// Receive one item of a batch sync (B5, B7): add it if this node lacks
    /// it, leave an equal one alone, and for the same identity with other
    /// parameters apply nothing and record a [`Conflict`] (at time `at`).
    /// Never deletes or changes anything. Refuses what may not cross
    /// (`static_routes`: this node accepts static routes), and items of a
    /// vsys it lacks (a `vsys name` declaration creates the vsys).
    ///
    /// A rule without a placement is added at the end of its list; see
    /// [`ConfigStore::apply_batch_item_placed`].
    pub fn apply_batch_item(
        &mut self,
        vsys: &str,
        item: ConfigItem,
        static_routes: bool,
        at: u64,
    ) -> BatchOutcome {
        self.apply_batch_item_placed(vsys, item, None, static_routes, at)
    }

    /// [`ConfigStore::apply_batch_item`] for a rule whose place on the
    /// sender is known: an absent rule is added right after the same
    /// predecessor (or at the top); a present one is left where it is. An
    /// order [`Conflict`] is recorded when the predecessor is missing here
    /// (the rule is added at the end) or stands after the rule.
    pub fn apply_batch_item_placed(
        &mut self,
        vsys: &str,
        item: ConfigItem,
        placement: Option<&Placement>,
        static_routes: bool,
        at: u64,
    ) -> BatchOutcome {
        if let Err(reason) = self.check_incoming(vsys, &item, static_routes) {
            return BatchOutcome::Rejected(reason);
        }
        enum Found {
            Absent,
            Equal,
            Differs(String),
        }
        let found = match self.system(vsys).and_then(|s| s.get(item.id_ref())) {
            None => Found::Absent,
            Some(local) if *local == item => Found::Equal,
            Some(local) => Found::Differs(local.render()),
        };
        match found {
            Found::Absent => {
                self.forget_conflict(vsys, &item);
                let declared = item.vsys_name().map(str::to_owned);
                let identity = item.identity();
                let placed = self.add(vsys, item, placement);
                self.note_order(vsys, identity, placed, at);
                if let Some(name) = declared {
                    self.create_vsys(name);
                }
                BatchOutcome::Added
            }
            Found::Equal => {
                self.forget_conflict(vsys, &item);
                let order = self.order_of(vsys, &item, placement);
                self.note_order(vsys, item.identity(), order, at);
                BatchOutcome::Equal
            }
            Found::Differs(local) => {
                let order = self.order_of(vsys, &item, placement);
                self.note_order(vsys, item.identity(), order, at);
                let conflict = Conflict {
                    kind: ConflictKind::Parameters,
                    vsys: vsys.to_owned(),
                    identity: item.identity(),
                    local,
                    remote: item.render(),
                    at,
                };
                self.record_conflict(conflict);
                BatchOutcome::Conflict
            }
        }
    }

    /// Add an absent item: a placed rule where its placement says, anything
    /// else at the end of its section.
    fn add(
        &mut self,
        vsys: &str,
        item: ConfigItem,
        placement: Option<&Placement>,
    ) -> Result<(), Misplaced> {
        let Some(system) = self.system_mut(vsys) else {
            return Ok(());
        };
        match placement {
            Some(p) if is_ordered(item.category) => system.place(item, p),
            _ => {
                system.push_new(item);
                Ok(())
            }
        }
    }

    fn order_of(
        &self,
        vsys: &str,
        item: &ConfigItem,
        placement: Option<&Placement>,
    ) -> Result<(), Misplaced> {
        match (placement, self.system(vsys)) {
            (Some(p), Some(system)) if is_ordered(item.category) => system.check_order(item, p),
            _ => Ok(()),
        }
    }

    /// Record an order conflict, or forget a previous one that holds no more.
    fn note_order(
        &mut self,
        vsys: &str,
        identity: Identity,
        order: Result<(), Misplaced>,
        at: u64,
    ) {
        match order {
            Ok(()) => self.forget(vsys, identity, ConflictKind::Order),
            Err(m) => self.record_conflict(Conflict {
                kind: ConflictKind::Order,
                vsys: vsys.to_owned(),
                identity,
                local: m.local,
                remote: m.remote,
                at,
            }),
        }
    }

    /// Receive a whole batch, in the sender's order:
    /// [`ConfigStore::apply_batch_item_placed`] for each, rules placed after
    /// the rule before them in the batch; counted (`sent` = the number of
    /// items given).
    pub fn apply_batch<I>(&mut self, items: I, static_routes: bool, at: u64) -> BatchReport
    where
        I: IntoIterator<Item = (String, ConfigItem)>,
    {
        let mut report = BatchReport::default();
        // The items come in the sender's order: each rule's predecessor
        // is the rule before it in the same list.
        let mut order = StreamOrder::default();
        for (vsys, item) in items {
            report.sent += 1;
            let placement = order.next(&vsys, &item);
            let outcome =
                self.apply_batch_item_placed(&vsys, item, placement.as_ref(), static_routes, at);
            report.record(&outcome);
        }
        report
    }

    /// Replay one incremental change from the active node (B3): add and
    /// modify overwrite (the item ends up equal to the sender's), delete
    /// removes (a missing item is already the wanted state: `Ok`). Deleting
    /// a `vsys name` declaration deletes that vsys and its items. Refuses
    /// what may not cross, like a batch.
    ///
    /// An added rule without a placement goes at the end of its list; see
    /// [`ConfigStore::apply_change_placed`].
    pub fn apply_change(
        &mut self,
        change: &ConfigChange,
        static_routes: bool,
    ) -> Result<(), ApplyError> {
        self.apply_change_placed(change, None, static_routes, 0)
    }

    /// [`ConfigStore::apply_change`] with the rule's place on the sender:
    /// a rule this node lacks is added right after the same predecessor
    /// (or at the top); when the predecessor is missing here it is added
    /// at the end and an order [`Conflict`] is recorded (at time `at`). A
    /// rule this node has is replaced in place.
    pub fn apply_change_placed(
        &mut self,
        change: &ConfigChange,
        placement: Option<&Placement>,
        static_routes: bool,
        at: u64,
    ) -> Result<(), ApplyError> {
        let vsys = change.vsys.as_str();
        let item = &change.item;
        self.check_incoming(vsys, item, static_routes)
            .map_err(|r| match r {
                RejectReason::NotSyncable(category) => ApplyError::NotSyncable { category },
                RejectReason::UnknownVsys(name) => ApplyError::UnknownVsys { name },
                RejectReason::VsysOutsideRoot(vsys) => ApplyError::VsysOutsideRoot { vsys },
                RejectReason::ForbiddenSubCommand(line) => ApplyError::ForbiddenSubCommand { line },
                RejectReason::UnknownSubCommand(category, line) => {
                    ApplyError::UnknownSubCommand { category, line }
                }
            })?;
        let Some(system) = self.system_mut(vsys) else {
            return Err(ApplyError::UnknownVsys {
                name: vsys.to_owned(),
            });
        };
        let mut order = Ok(());
        match change.op {
            ChangeOp::Add | ChangeOp::Modify => {
                let absent = system.get(item.id_ref()).is_none();
                match placement {
                    Some(p) if absent && is_ordered(item.category) => {
                        order = system.place(item.clone(), p);
                    }
                    _ => {
                        let added = system.upsert(item.clone()) == Upsert::Added;
                        if let (true, Some(name)) = (added, item.vsys_name()) {
                            self.create_vsys(name.to_owned());
                        }
                    }
                }
            }
            ChangeOp::Delete => {
                let removed = system.remove(item.id_ref()).is_some();
                if let (true, Some(name)) = (removed, item.vsys_name()) {
                    self.delete_vsys(name);
                }
            }
        }
        self.forget_conflict(vsys, item);
        if change.op == ChangeOp::Delete {
            self.forget(vsys, item.identity(), ConflictKind::Order);
        } else {
            self.note_order(vsys, item.identity(), order, at);
        }
        Ok(())
    }

    fn check_incoming(
        &self,
        vsys: &str,
        item: &ConfigItem,
        static_routes: bool,
    ) -> Result<(), RejectReason> {
        if !is_syncable(item.category, static_routes) {
            return Err(RejectReason::NotSyncable(item.category));
        }
        if item.category == Category::Vsys && vsys != ROOT {
            return Err(RejectReason::VsysOutsideRoot(shown(vsys)));
        }
        if !self.has_vsys(vsys) {
            return Err(RejectReason::UnknownVsys(shown(vsys)));
        }
        if let Some(line) = item.body.iter().find(|l| smuggles(&l.text)) {
            return Err(RejectReason::ForbiddenSubCommand(shown(&line.text)));
        }
        if let Some(line) = unknown_sub_command(item) {
            return Err(RejectReason::UnknownSubCommand(
                item.category,
                shown(&line.text),
            ));
        }
        Ok(())
    }

    /// Conflicts recorded by batch syncs, one per `(vsys, identity)` (a
    /// later batch replaces it; a later equal item or an incremental change
    /// of that item resolves it).
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Forget all recorded conflicts.
    pub fn clear_conflicts(&mut self) {
        self.conflicts.clear();
        self.conflict_index.clear();
    }

    fn record_conflict(&mut self, conflict: Conflict) {
        let key = (
            conflict.vsys.clone(),
            conflict.identity.clone(),
            conflict.kind,
        );
        match self.conflict_index.get(&key) {
            Some(&i) => self.conflicts[i] = conflict,
            None => {
                self.conflict_index.insert(key, self.conflicts.len());
                self.conflicts.push(conflict);
            }
        }
    }

    /// Forget the parameter conflict of this item (it is resolved).
    fn forget_conflict(&mut self, vsys: &str, item: &ConfigItem) {
        self.forget(vsys, item.identity(), ConflictKind::Parameters);
    }

    fn forget(&mut self, vsys: &str, identity: Identity, kind: ConflictKind) {
        if self.conflicts.is_empty() {
            return;
        }
        let key = (vsys.to_owned(), identity, kind);
        if let Some(i) = self.conflict_index.remove(&key) {
            self.conflicts.swap_remove(i);
            if let Some(moved) = self.conflicts.get(i) {
                let moved_key = (moved.vsys.clone(), moved.identity.clone(), moved.kind);
                self.conflict_index.insert(moved_key, i);
            }
        }
    }
}

/// Top-level commands that never cross (node-local, user database, SSL
/// VPN) and so may not be hidden as a sub-command of a block that does.
const NEVER_NESTED: &[&str] = &["hrp", "sysname", "user-manage", "sslvpn", "v-gateway"];

/// The first direct sub-command of `item` that its category's grammar does
/// not have (the keywords a one-line command may use: see
/// [`sub_keywords`]). Opaque blocks have no grammar and are checked by
/// [`smuggles`] only; deeper lines belong to their sub-command.
fn unknown_sub_command(item: &ConfigItem) -> Option<&BodyLine> {
    let words = sub_keywords(item.category)?;
    item.body.iter().filter(|l| l.depth == 1).find(|l| {
        let keyword = l.text.split(' ').find(|w| *w != "undo");
        !keyword.is_some_and(|w| words.contains(&w))
    })
}

fn smuggles(line: &str) -> bool {
    let first = line.split(' ').find(|w| *w != "undo");
    first.is_some_and(|w| NEVER_NESTED.contains(&w))
}

/// Peer text for an error message: escaped, and cut to a name's length.
fn shown(s: &str) -> String {
    let escaped = printable(s);
    match escaped.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => format!("{}...", &escaped[..cut]),
        None => escaped.into_owned(),
    }
}
