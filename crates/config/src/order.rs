//! Rule order across the pair. Security and NAT rules are first-match, so
//! a rule synchronized to the peer must stand where it stands on the
//! sender: right after the same predecessor rule (or at the top). The
//! sender names the predecessor; the receiver places the rule after it and
//! records an order [`Conflict`](crate::Conflict) when it cannot (the
//! predecessor is missing there) or when a rule both nodes have stands in
//! another order. Batches never move existing rules (B5): they report.
//!
//! On the wire a rule's text ends with VRP's own command for a position,
//! inside its `security-policy` / `nat-policy` block:
//!
//! ```text
//! security-policy
//!  rule name web
//!   action permit
//!  rule move web after dns
//! ```
//!
//! (`rule move web top` for a rule with none before it.)

use std::collections::HashMap;

use crate::error::ParseError;
use crate::item::{Category, ConfigItem, Container, IdRef};
use crate::parse::{Event, parse_events};
use crate::store::{ConfigStore, System};

/// Where a rule stands in its list on the sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Placement {
    /// No rule before it: the top of the list.
    First,
    /// Right after the rule of this name (same list, same system).
    After(String),
}

/// Whether the order of this category's items decides anything.
pub(crate) fn is_ordered(category: Category) -> bool {
    matches!(category, Category::SecurityRule | Category::NatRule)
}

/// A rule could not be placed as the sender has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Misplaced {
    /// Where it stands here, in words.
    pub local: String,
    /// Where it stands on the sender, in words.
    pub remote: String,
}

fn remote_words(key: &str, placement: &Placement) -> String {
    match placement {
        Placement::First => format!("`{key}` is the first rule"),
        Placement::After(p) => format!("`{key}` follows `{p}`"),
    }
}

impl System {
    fn rules(&self, c: Option<Container>) -> impl Iterator<Item = (usize, &ConfigItem)> {
        self.section_items(c)
            .filter(|(_, it)| is_ordered(it.category))
    }

    /// Where a present rule stands: after which rule.
    pub(crate) fn placement_of(&self, item: &ConfigItem) -> Option<Placement> {
        if !is_ordered(item.category) {
            return None;
        }
        let pos = self.position(item.id_ref())?;
        let before = self
            .rules(item.container)
            .take_while(|(i, _)| *i < pos)
            .last();
        Some(match before {
            Some((_, p)) => Placement::After(p.key.clone()),
            None => Placement::First,
        })
    }

    fn predecessor_slot(&self, item: &ConfigItem, name: &str) -> Option<usize> {
        self.position(IdRef {
            category: item.category,
            container: item.container,
            key: name,
        })
    }

    /// Add an absent rule where `placement` says; `Err` (the rule appended
    /// at the end) when its predecessor is missing here.
    pub(crate) fn place(
        &mut self,
        item: ConfigItem,
        placement: &Placement,
    ) -> Result<(), Misplaced> {
        match placement {
            Placement::First => {
                let top = self.rules(item.container).next().map(|(i, _)| i);
                self.insert_at(top.unwrap_or(usize::MAX), item);
                Ok(())
            }
            Placement::After(p) => match self.predecessor_slot(&item, p) {
                Some(pos) => {
                    self.insert_at(pos + 1, item);
                    Ok(())
                }
                None => {
                    let err = Misplaced {
                        local: format!(
                            "`{p}` does not exist here: `{}` was added at the end of the list",
                            item.key
                        ),
                        remote: remote_words(&item.key, placement),
                    };
                    self.push_new(item);
                    Err(err)
                }
            },
        }
    }

    /// Check that a present rule stands after its sender's predecessor
    /// (when both are here); nothing is moved.
    pub(crate) fn check_order(
        &self,
        item: &ConfigItem,
        placement: &Placement,
    ) -> Result<(), Misplaced> {
        let Placement::After(p) = placement else {
            return Ok(());
        };
        let (Some(me), Some(pred)) = (self.position(item.id_ref()), self.predecessor_slot(item, p))
        else {
            return Ok(());
        };
        if pred < me {
            return Ok(());
        }
        Err(Misplaced {
            local: format!("`{}` stands before `{p}`", item.key),
            remote: remote_words(&item.key, placement),
        })
    }
}

/// Infers each rule's placement from a stream of items in the sender's
/// order (what a batch sync sends): the rule before it in the same list.
#[derive(Debug, Default)]
pub(crate) struct StreamOrder {
    last: HashMap<(String, Container), String>,
}

impl StreamOrder {
    pub(crate) fn next(&mut self, vsys: &str, item: &ConfigItem) -> Option<Placement> {
        let c = item.container.filter(|_| is_ordered(item.category))?;
        let prev = self.last.insert((vsys.to_owned(), c), item.key.clone());
        Some(prev.map_or(Placement::First, Placement::After))
    }
}

impl ConfigItem {
    /// [`ConfigItem::render`] followed, for a rule, by its placement as
    /// VRP's `rule move NAME after PREDECESSOR` / `rule move NAME top`
    /// inside the block. [`ConfigItem::parse_placed`] reads it back.
    pub fn render_placed(&self, placement: Option<&Placement>) -> String {
        let mut out = self.render();
        if let (Some(p), true) = (placement, is_ordered(self.category)) {
            out.push_str(" rule move ");
            out.push_str(&self.key);
            match p {
                Placement::First => out.push_str(" top\n"),
                Placement::After(name) => {
                    out.push_str(" after ");
                    out.push_str(name);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Parse [`ConfigItem::render_placed`]: one item, and for a rule an
    /// optional `rule move` line naming that rule.
    pub fn parse_placed(text: &str) -> Result<(ConfigItem, Option<Placement>), ParseError> {
        let mut found: Vec<ConfigItem> = Vec::with_capacity(2);
        let mut too_many: Option<u32> = None;
        parse_events(text, &mut |event| {
            if let Event::Item(item) = event {
                if found.len() == 2 {
                    too_many.get_or_insert(item.line.unwrap_or(0));
                } else {
                    found.push(item);
                }
            }
            Ok(())
        })?;
        let placement = match found.as_slice() {
            [rule, mv] if too_many.is_none() => move_of(rule, mv),
            _ => None,
        };
        match placement {
            Some(p) => {
                found.truncate(1);
                let item = found.pop().ok_or(ParseError::NotOneItem {
                    line: 1,
                    column: 1,
                    found: 0,
                })?;
                Ok((item, Some(p)))
            }
            // Anything else is what the plain parser says about it.
            None => ConfigItem::parse(text).map(|item| (item, None)),
        }
    }
}

/// `rule move NAME after P` / `rule move NAME top` for `rule`, if `mv` is that.
fn move_of(rule: &ConfigItem, mv: &ConfigItem) -> Option<Placement> {
    if !is_ordered(rule.category)
        || mv.category != Category::Opaque
        || mv.container != rule.container
        || !mv.body.is_empty()
    {
        return None;
    }
    let t: Vec<&str> = mv.header.split(' ').collect();
    match t.as_slice() {
        ["rule", "move", name, "top"] if *name == rule.key => Some(Placement::First),
        ["rule", "move", name, "after", p] if *name == rule.key && *p != rule.key => {
            Some(Placement::After((*p).to_owned()))
        }
        _ => None,
    }
}

impl ConfigStore {
    /// Where a rule stands in `vsys` (`None` for an item that is not a
    /// security or NAT rule, or is absent).
    pub fn placement(&self, vsys: &str, item: &ConfigItem) -> Option<Placement> {
        self.system(vsys)?.placement_of(item)
    }

    /// What `hrp sync config` sends, as wire text: each item of
    /// [`ConfigStore::syncable`] rendered with its placement
    /// ([`ConfigItem::render_placed`]).
    pub fn syncable_rendered(&self, static_routes: bool) -> Vec<(String, String)> {
        let mut order = StreamOrder::default();
        self.syncable(static_routes)
            .map(|(vsys, item)| {
                let p = order.next(vsys, item);
                (vsys.to_owned(), item.render_placed(p.as_ref()))
            })
            .collect()
    }
}
