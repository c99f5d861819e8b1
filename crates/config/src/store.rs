//! The configuration store: ordered items per system (root + each vsys).

use std::fmt;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashTable};

use crate::error::ParseError;
use crate::item::{Category, ConfigItem, Container, IdRef, Identity};
use crate::parse::{Event, parse_events, parse_events_with};
use crate::secret::mask_secrets;
use crate::sync::{Conflict, ConflictKind};

/// The name of the root system in every `vsys: &str` / `vsys: String` of
/// this crate: the empty string.
pub const ROOT: &str = "";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Item(ConfigItem),
    /// Where a `security-policy` / `nat-policy` block is printed.
    Block(Container),
    /// A removed item (compacted away when there are many).
    Vacant,
}

/// An ordered section: items in order, indexed by identity. Removal leaves a
/// vacant slot; vacant slots are compacted when they outnumber live ones.
#[derive(Clone, Default)]
struct Section {
    slots: Vec<Slot>,
    index: HashTable<usize>,
    hasher: RandomState,
    items: usize,
    vacant: usize,
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().filter(|s| **s != Slot::Vacant))
            .finish()
    }
}

fn slot_id(slots: &[Slot], i: usize) -> Option<IdRef<'_>> {
    match slots.get(i) {
        Some(Slot::Item(it)) => Some(it.id_ref()),
        _ => None,
    }
}

impl Section {
    fn find(&self, id: IdRef<'_>) -> Option<usize> {
        let h = self.hasher.hash_one(id);
        self.index
            .find(h, |&i| slot_id(&self.slots, i) == Some(id))
            .copied()
    }

    fn get(&self, id: IdRef<'_>) -> Option<&ConfigItem> {
        match self.slots.get(self.find(id)?) {
            Some(Slot::Item(it)) => Some(it),
            _ => None,
        }
    }

    fn get_mut(&mut self, id: IdRef<'_>) -> Option<&mut ConfigItem> {
        let pos = self.find(id)?;
        match self.slots.get_mut(pos) {
            Some(Slot::Item(it)) => Some(it),
            _ => None,
        }
    }

    /// Append an item whose identity is absent.
    fn push_item(&mut self, item: ConfigItem) {
        let Section {
            slots,
            index,
            hasher,
            ..
        } = self;
        let h = hasher.hash_one(item.id_ref());
        let pos = slots.len();
        slots.push(Slot::Item(item));
        index.insert_unique(h, pos, |&i| {
            slot_id(slots, i).map_or(0, |id| hasher.hash_one(id))
        });
        self.items += 1;
    }

    /// Insert an item whose identity is absent at slot `pos` (the end if
    /// beyond it). Re-indexes the section: O(section) unless at the end.
    fn insert_item(&mut self, pos: usize, item: ConfigItem) {
        if pos >= self.slots.len() {
            return self.push_item(item);
        }
        self.slots.insert(pos, Slot::Item(item));
        self.items += 1;
        self.reindex();
    }

    fn push_block(&mut self, c: Container) {
        self.slots.push(Slot::Block(c));
    }

    fn remove(&mut self, id: IdRef<'_>) -> Option<ConfigItem> {
        let h = self.hasher.hash_one(id);
        let Section { slots, index, .. } = self;
        let entry = index
            .find_entry(h, |&i| slot_id(slots, i) == Some(id))
            .ok()?;
        let (pos, _) = entry.remove();
        let old = std::mem::replace(&mut slots[pos], Slot::Vacant);
        self.items -= 1;
        self.vacant += 1;
        if self.vacant > 32 && self.vacant > self.slots.len() / 2 {
            self.compact();
        }
        match old {
            Slot::Item(it) => Some(it),
            _ => None,
        }
    }

    fn compact(&mut self) {
        self.slots.retain(|s| *s != Slot::Vacant);
        self.vacant = 0;
        self.reindex();
    }

    fn reindex(&mut self) {
        let Section {
            slots,
            index,
            hasher,
            ..
        } = self;
        index.clear();
        for (pos, slot) in slots.iter().enumerate() {
            if let Slot::Item(it) = slot {
                index.insert_unique(hasher.hash_one(it.id_ref()), pos, |&i| {
                    slot_id(slots, i).map_or(0, |id| hasher.hash_one(id))
                });
            }
        }
    }

    fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| **s != Slot::Vacant)
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    Added,
    Unchanged,
    Replaced,
}

/// One system (the root or a vsys): top-level items in order, and the
/// ordered items of its `security-policy` and `nat-policy` blocks.
#[derive(Debug, Clone, Default)]
pub(crate) struct System {
    top: Section,
    children: [Section; 2],
    has_block: [bool; 2],
}

impl PartialEq for System {
    fn eq(&self, other: &Self) -> bool {
        self.top.live().eq(other.top.live())
            && self
                .children
                .iter()
                .zip(&other.children)
                .all(|(a, b)| a.live().eq(b.live()))
    }
}

impl System {
    fn section(&self, c: Option<Container>) -> &Section {
        match c {
            None => &self.top,
            Some(c) => &self.children[c.index()],
        }
    }

    fn section_mut(&mut self, c: Option<Container>) -> &mut Section {
        match c {
            None => &mut self.top,
            Some(c) => &mut self.children[c.index()],
        }
    }

    pub(crate) fn get(&self, id: IdRef<'_>) -> Option<&ConfigItem> {
        self.section(id.container).get(id)
    }

    pub(crate) fn get_mut(&mut self, id: IdRef<'_>) -> Option<&mut ConfigItem> {
        self.section_mut(id.container).get_mut(id)
    }

    pub(crate) fn ensure_block(&mut self, c: Container) {
        if !self.has_block[c.index()] {
            self.has_block[c.index()] = true;
            self.top.push_block(c);
        }
    }

    /// Append an item whose identity is absent, at the end of its section.
    pub(crate) fn push_new(&mut self, item: ConfigItem) {
        if let Some(c) = item.container {
            self.ensure_block(c);
        }
        self.section_mut(item.container).push_item(item);
    }

    /// Add, or replace in place.
    pub(crate) fn upsert(&mut self, item: ConfigItem) -> Upsert {
        match self.get_mut(item.id_ref()) {
            Some(existing) if *existing == item => Upsert::Unchanged,
            Some(existing) => {
                *existing = item;
                Upsert::Replaced
            }
            None => {
                self.push_new(item);
                Upsert::Added
            }
        }
    }

    pub(crate) fn remove(&mut self, id: IdRef<'_>) -> Option<ConfigItem> {
        self.section_mut(id.container).remove(id)
    }

    /// The slot of an item in its section.
    pub(crate) fn position(&self, id: IdRef<'_>) -> Option<usize> {
        self.section(id.container).find(id)
    }

    /// The items of a container's section with their slots, in order.
    pub(crate) fn section_items(
        &self,
        c: Option<Container>,
    ) -> impl Iterator<Item = (usize, &ConfigItem)> {
        self.section(c)
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Item(it) => Some((i, it)),
                _ => None,
            })
    }

    /// Insert an item whose identity is absent at slot `pos` of its section.
    pub(crate) fn insert_at(&mut self, pos: usize, item: ConfigItem) {
        if let Some(c) = item.container {
            self.ensure_block(c);
        }
        self.section_mut(item.container).insert_item(pos, item);
    }

    /// Items in printing order (a block's items where the block is).
    pub(crate) fn items(&self) -> Items<'_> {
        Items {
            system: self,
            top: self.top.slots.iter(),
            child: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.top.items + self.children.iter().map(|c| c.items).sum::<usize>()
    }

    fn is_blank(&self) -> bool {
        self.top.slots.len() == self.top.vacant
    }

    /// `masked`: secrets replaced by [`crate::SECRET_MASK`] (displays).
    fn render_into(&self, out: &mut String, masked: bool) {
        let mut prev: Option<Category> = None;
        let mut prev_block = true;
        for slot in self.top.live() {
            match slot {
                Slot::Item(it) => {
                    let block = !it.body.is_empty();
                    if block || prev_block || prev != Some(it.category) {
                        out.push_str("#\n");
                    }
                    if masked && it.category == Category::Hrp {
                        out.push_str(&mask_secrets(&it.header));
                        out.push('\n');
                    } else {
                        it.write_to(out, 0);
                    }
                    prev = Some(it.category);
                    prev_block = block;
                }
                Slot::Block(c) => {
                    out.push_str("#\n");
                    out.push_str(c.keyword());
                    out.push('\n');
                    for child in self.children[c.index()].live() {
                        if let Slot::Item(it) = child {
                            it.write_to(out, 1);
                        }
                    }
                    prev_block = true;
                }
                Slot::Vacant => {}
            }
        }
    }
}

/// The items of one system, in printing order.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    system: &'a System,
    top: std::slice::Iter<'a, Slot>,
    child: Option<std::slice::Iter<'a, Slot>>,
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a ConfigItem;

    fn next(&mut self) -> Option<&'a ConfigItem> {
        loop {
            if let Some(child) = &mut self.child {
                for slot in child.by_ref() {
                    if let Slot::Item(it) = slot {
                        return Some(it);
                    }
                }
                self.child = None;
            }
            match self.top.next()? {
                Slot::Item(it) => return Some(it),
                Slot::Block(c) => {
                    self.child = Some(self.system.children[c.index()].slots.iter());
                }
                Slot::Vacant => {}
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct VsysEntry {
    pub(crate) name: String,
    pub(crate) system: System,
}

/// A node's configuration: the root system and each virtual system, each an
/// ordered list of items, plus the conflicts recorded by batch syncs.
///
/// Equality compares the configuration model (the conflict list is not
/// part of it); the order of virtual systems does not matter, the order of
/// items within a section (top level, `security-policy`, `nat-policy`) does.
#[derive(Debug, Clone, Default)]
pub struct ConfigStore {
    pub(crate) root: System,
    pub(crate) vsys: Vec<VsysEntry>,
    pub(crate) vsys_index: HashMap<String, usize, RandomState>,
    pub(crate) conflicts: Vec<Conflict>,
    pub(crate) conflict_index: HashMap<(String, Identity, ConflictKind), usize, RandomState>,
}

impl PartialEq for ConfigStore {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
            && self.vsys.len() == other.vsys.len()
            && self
                .vsys
                .iter()
                .all(|v| other.system(&v.name) == Some(&v.system))
    }
}

impl Eq for ConfigStore {}

impl std::str::FromStr for ConfigStore {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConfigStore::parse(s)
    }
}

impl ConfigStore {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse a `display current-configuration` text.
    ///
    /// Virtual systems are created by their `vsys name` declaration in the
    /// root; `switch vsys NAME` sends what follows (until the next
    /// `switch vsys`, `return` or `quit`) to that vsys. An item repeated
    /// with the same first line is merged (its sub-commands appended); an
    /// identity repeated with another first line is an error.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut store = ConfigStore::new();
        let mut current: Option<usize> = None;
        // A file saved with a byte-order mark (the peer's items never have one).
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        parse_events(text, &mut |event| store.parsed_event(&mut current, event))?;
        Ok(store)
    }

    /// Like [`ConfigStore::parse`], but goes on past errors: returns what
    /// parsed and every error, in line order (a line in error is skipped).
    pub fn parse_all(text: &str) -> (Self, Vec<ParseError>) {
        let mut store = ConfigStore::new();
        let mut current: Option<usize> = None;
        let mut errors = Vec::new();
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let _ = parse_events_with(
            text,
            &mut |event| store.parsed_event(&mut current, event),
            &mut |e| {
                errors.push(e);
                Ok(())
            },
        );
        (store, errors)
    }

    fn parsed_event(
        &mut self,
        current: &mut Option<usize>,
        event: Event<'_>,
    ) -> Result<(), ParseError> {
        match event {
            Event::Return { .. } => *current = None,
            Event::Switch { line, column, name } => {
                *current =
                    Some(
                        *self
                            .vsys_index
                            .get(name)
                            .ok_or_else(|| ParseError::UnknownVsys {
                                line,
                                column,
                                name: name.to_owned(),
                            })?,
                    );
            }
            Event::Block { container, .. } => self.system_at(*current).ensure_block(container),
            Event::Item(item) => self.insert_parsed(*current, item)?,
        }
        Ok(())
    }

    fn system_at(&mut self, vsys: Option<usize>) -> &mut System {
        match vsys {
            None => &mut self.root,
            Some(i) => &mut self.vsys[i].system,
        }
    }

    fn insert_parsed(&mut self, vsys: Option<usize>, item: ConfigItem) -> Result<(), ParseError> {
        let line = item.line.unwrap_or(0);
        if vsys.is_some() && matches!(item.category, Category::Vsys | Category::Hrp) {
            return Err(ParseError::RootOnly {
                line,
                column: 1,
                command: item.header,
            });
        }
        let system = self.system_at(vsys);
        match system.get_mut(item.id_ref()) {
            Some(existing) if existing.header == item.header => {
                existing.body.extend(item.body);
            }
            Some(existing) => {
                return Err(ParseError::Duplicate {
                    line,
                    column: if item.container.is_some() { 2 } else { 1 },
                    identity: item.identity().to_string(),
                    first_line: existing.line.unwrap_or(0),
                });
            }
            None => {
                let declared = item.vsys_name().map(str::to_owned);
                system.push_new(item);
                if let Some(name) = declared {
                    self.create_vsys(name);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn create_vsys(&mut self, name: String) {
        if !self.vsys_index.contains_key(&name) {
            self.vsys_index.insert(name.clone(), self.vsys.len());
            self.vsys.push(VsysEntry {
                name,
                system: System::default(),
            });
        }
    }

    pub(crate) fn delete_vsys(&mut self, name: &str) {
        if let Some(i) = self.vsys_index.remove(name) {
            self.vsys.remove(i);
            for (j, v) in self.vsys.iter().enumerate().skip(i) {
                if let Some(slot) = self.vsys_index.get_mut(&v.name) {
                    *slot = j;
                }
            }
        }
    }

    pub(crate) fn system(&self, vsys: &str) -> Option<&System> {
        if vsys == ROOT {
            Some(&self.root)
        } else {
            self.vsys_index.get(vsys).map(|&i| &self.vsys[i].system)
        }
    }

    pub(crate) fn system_mut(&mut self, vsys: &str) -> Option<&mut System> {
        if vsys == ROOT {
            Some(&mut self.root)
        } else {
            self.vsys_index.get(vsys).map(|&i| &mut self.vsys[i].system)
        }
    }

    /// The whole configuration as `display current-configuration` prints
    /// it: the root system, then `switch vsys NAME` and each virtual
    /// system's items, then `return`. [`ConfigStore::parse`] reads it back
    /// to an equal store.
    pub fn render(&self) -> String {
        self.render_with(false)
    }

    /// [`ConfigStore::render`] as `display current-configuration` shows it:
    /// secret settings (`hrp authentication-key`) masked with
    /// [`crate::SECRET_MASK`].
    pub fn render_masked(&self) -> String {
        self.render_with(true)
    }

    fn render_with(&self, masked: bool) -> String {
        let mut out = String::with_capacity(self.render_size_hint());
        self.root.render_into(&mut out, masked);
        for v in &self.vsys {
            if !v.system.is_blank() {
                out.push_str("#\nswitch vsys ");
                out.push_str(&v.name);
                out.push('\n');
                v.system.render_into(&mut out, masked);
            }
        }
        out.push_str("#\nreturn\n");
        out
    }

    fn render_size_hint(&self) -> usize {
        let sys = std::iter::once(&self.root).chain(self.vsys.iter().map(|v| &v.system));
        sys.flat_map(System::items)
            .map(|it| it.text_len() + 4)
            .sum::<usize>()
            + 16
    }

    /// One system alone (`""` = the root system without its virtual
    /// systems), as `display current-configuration` prints it inside that
    /// system. Parses back to a store whose root holds the same items
    /// (secrets aside). `None` if there is no such vsys.
    /// Secrets are masked, as in [`ConfigStore::render_masked`].
    pub fn render_vsys(&self, vsys: &str) -> Option<String> {
        let system = self.system(vsys)?;
        let mut out = String::new();
        system.render_into(&mut out, true);
        out.push_str("#\nreturn\n");
        Some(out)
    }

    /// The virtual systems, in declaration order.
    pub fn vsys_names(&self) -> impl Iterator<Item = &str> {
        self.vsys.iter().map(|v| v.name.as_str())
    }

    /// Whether `vsys` exists (`""`, the root, always does).
    pub fn has_vsys(&self, vsys: &str) -> bool {
        self.system(vsys).is_some()
    }

    /// The items of one system (`""` = root), in printing order; `None` if
    /// there is no such vsys.
    pub fn items(&self, vsys: &str) -> Option<Items<'_>> {
        self.system(vsys).map(System::items)
    }

    /// Every item: `(vsys, item)`, the root first.
    pub fn all_items(&self) -> impl Iterator<Item = (&str, &ConfigItem)> {
        let root = self.root.items().map(|it| (ROOT, it));
        root.chain(
            self.vsys
                .iter()
                .flat_map(|v| v.system.items().map(move |it| (v.name.as_str(), it))),
        )
    }

    /// The item with this identity in `vsys`.
    pub fn get(&self, vsys: &str, identity: &Identity) -> Option<&ConfigItem> {
        self.system(vsys)?.get(identity.as_ref())
    }

    /// Number of items, all systems.
    pub fn len(&self) -> usize {
        self.root.len() + self.vsys.iter().map(|v| v.system.len()).sum::<usize>()
    }

    /// No items at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this node has `hrp auto-sync config static-route` (B8).
    pub fn static_route_sync(&self) -> bool {
        self.root
            .get(IdRef {
                category: Category::Hrp,
                container: None,
                key: "auto-sync config static-route",
            })
            .is_some()
    }
}
