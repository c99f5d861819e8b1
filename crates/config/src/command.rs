//! One-line configuration commands, as typed in `system-view`.

use crate::error::{CommandError, ParseError};
use crate::item::{BodyLine, Category, ConfigItem, Container};
use crate::limits::{MAX_COMMAND_BYTES, MAX_LINE_BYTES, check_line};
use crate::order::Placement;
use crate::parse::locate;
use crate::store::{ConfigStore, ROOT, Upsert};
use crate::sync::is_syncable;
use crate::syntax::{
    Bad, Head, check_body_line, classify, classify_child, control, flat_header_len, split_body,
    sub_keywords,
};

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOp {
    /// A new item, appended at the end of its section.
    Add,
    /// An existing identity with (possibly) new parameters: replaced in place.
    Modify,
    /// The item was removed.
    Delete,
}

impl ChangeOp {
    /// Wire code: 0 add, 1 modify, 2 delete.
    pub fn code(self) -> u8 {
        match self {
            ChangeOp::Add => 0,
            ChangeOp::Modify => 1,
            ChangeOp::Delete => 2,
        }
    }

    /// From a wire code.
    pub fn from_code(code: u8) -> Option<ChangeOp> {
        match code {
            0 => Some(ChangeOp::Add),
            1 => Some(ChangeOp::Modify),
            2 => Some(ChangeOp::Delete),
            _ => None,
        }
    }
}

/// One configuration change: what [`ConfigStore::execute`] did, and what
/// crosses to the peer for incremental sync (B3) as `{op, vsys, item.render()}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    /// Add, modify or delete.
    pub op: ChangeOp,
    /// The system (`""` = root).
    pub vsys: String,
    /// The item: the new one (add, modify) or the removed one (delete).
    pub item: ConfigItem,
}

impl ConfigChange {
    /// Whether this change may be sent to the peer (see [`is_syncable`]).
    pub fn is_syncable(&self, static_routes: bool) -> bool {
        is_syncable(self.item.category, static_routes)
    }

    /// Rebuild a change received from the peer.
    pub fn from_wire(op: u8, vsys: &str, text: &str) -> Result<ConfigChange, ParseError> {
        Self::with_op(op, vsys, ConfigItem::parse(text)?)
    }

    /// [`ConfigChange::from_wire`] for a text that may carry a rule's
    /// placement ([`ConfigItem::render_placed`]).
    pub fn from_wire_placed(
        op: u8,
        vsys: &str,
        text: &str,
    ) -> Result<(ConfigChange, Option<Placement>), ParseError> {
        let (item, placement) = ConfigItem::parse_placed(text)?;
        Ok((Self::with_op(op, vsys, item)?, placement))
    }

    fn with_op(op: u8, vsys: &str, item: ConfigItem) -> Result<ConfigChange, ParseError> {
        let op = ChangeOp::from_code(op).ok_or_else(|| ParseError::Expected {
            line: 0,
            column: 0,
            expected: "an operation code 0-2",
            found: format!("`{op}`"),
        })?;
        Ok(ConfigChange {
            op,
            vsys: vsys.to_owned(),
            item,
        })
    }
}

/// Words that are actions or view changes, not configuration.
const NOT_CONFIG: &[&str] = &[
    "display",
    "save",
    "system-view",
    "commit",
    "reset",
    "ping",
    "tracert",
    "#",
];

impl ConfigStore {
    /// Apply one configuration command typed in `system-view` of `vsys`
    /// (`None` or `Some("")`: the root system). Block items are typed
    /// flattened, their sub-commands after the first line (see
    /// `docs/CONFIG.md`):
    ///
    /// ```text
    /// security-policy rule name web source-zone trust destination-zone untrust action permit
    /// ip address-set web type object address 10.1.1.0 mask 24
    /// ip route-static 10.0.0.0 255.0.0.0 192.168.1.1
    /// undo security-policy rule name web
    /// ```
    ///
    /// A new identity is added at the end of its section; an existing one is
    /// replaced whole (`Modify`); `undo IDENTITY` deletes. For an opaque
    /// command, `undo X` deletes `X` if present, else it is itself stored as
    /// the opaque command `undo X`. Node-local commands (`hrp ...`,
    /// `sysname`, `interface`, ...) apply locally; the returned change says
    /// whether it may cross ([`ConfigChange::is_syncable`]).
    pub fn execute(
        &mut self,
        vsys: Option<&str>,
        line: &str,
    ) -> Result<ConfigChange, CommandError> {
        let vsys = vsys.unwrap_or(ROOT);
        check_line(1, 0, line, MAX_COMMAND_BYTES, "a command")?;
        let t: Vec<&str> = line.split_whitespace().collect();
        let Some(&first) = t.first() else {
            return Err(CommandError::Empty);
        };
        let syntax = |b: Bad| -> CommandError {
            let (column, found) = locate(line, &t, b.at);
            CommandError::Syntax(ParseError::Expected {
                line: 1,
                column,
                expected: b.expected,
                found,
            })
        };
        if NOT_CONFIG.contains(&first)
            || first.starts_with('!')
            || (first == "hrp" && t.get(1) == Some(&"sync"))
            || (first == "undo" && t.len() == 1)
        {
            if first == "undo" {
                return Err(syntax(Bad {
                    at: None,
                    expected: "a command to undo",
                }));
            }
            return Err(CommandError::NotAConfigCommand {
                command: t[..t.len().min(2)].join(" "),
            });
        }
        if control(&t).is_some() {
            return Err(CommandError::NotAConfigCommand {
                command: t[..t.len().min(2)].join(" "),
            });
        }
        if !self.has_vsys(vsys) {
            return Err(CommandError::UnknownVsys {
                name: vsys.to_owned(),
            });
        }
        let undo = first == "undo";
        let start = usize::from(undo);
        let item = flat_item(&t, start, undo).map_err(syntax)?;
        check_item_lines(&item, undo)?;
        if vsys != ROOT && matches!(item.category, Category::Vsys | Category::Hrp) {
            return Err(CommandError::RootOnly {
                command: item.header,
            });
        }
        let Some(system) = self.system_mut(vsys) else {
            return Err(CommandError::UnknownVsys {
                name: vsys.to_owned(),
            });
        };
        let change = |op, item| ConfigChange {
            op,
            vsys: vsys.to_owned(),
            item,
        };
        if undo {
            if let Some(removed) = system.remove(item.id_ref()) {
                if let Some(name) = removed.vsys_name() {
                    self.delete_vsys(name);
                }
                return Ok(change(ChangeOp::Delete, removed));
            }
            if item.category != Category::Opaque {
                return Err(CommandError::NotFound {
                    identity: item.identity().to_string(),
                });
            }
            // `undo X` for an opaque X that is not there: VRP prints the
            // `undo X` line itself (a default turned off). Store it as such.
            let mut item = item;
            item.header.insert_str(0, "undo ");
            item.key.clone_from(&item.header);
            return Ok(match system.upsert(item.clone()) {
                Upsert::Added => change(ChangeOp::Add, item),
                Upsert::Replaced | Upsert::Unchanged => change(ChangeOp::Modify, item),
            });
        }
        let declared = item.vsys_name().map(str::to_owned);
        let op = match system.upsert(item.clone()) {
            Upsert::Added => ChangeOp::Add,
            Upsert::Replaced | Upsert::Unchanged => ChangeOp::Modify,
        };
        if let (ChangeOp::Add, Some(name)) = (op, declared) {
            self.create_vsys(name);
        }
        Ok(change(op, item))
    }
}

/// Every line the command becomes fits a configuration line (an `undo` of
/// an opaque command may be stored with `undo ` in front), so what is
/// typed here always reads back from a file or from the peer.
fn check_item_lines(item: &ConfigItem, undo: bool) -> Result<(), CommandError> {
    let prefix = if undo { "undo ".len() } else { 0 };
    let longest = std::iter::once(item.header.len() + prefix)
        .chain(item.body.iter().map(|l| l.text.len()))
        .max()
        .unwrap_or(0);
    if longest > MAX_LINE_BYTES {
        return Err(CommandError::Syntax(ParseError::TooLong {
            line: 1,
            column: 1,
            what: "a configuration line",
            limit: MAX_LINE_BYTES,
            unit: "bytes",
        }));
    }
    Ok(())
}

/// Build an item from a flattened one-line command (`t[start..]`).
/// `identity_only`: for `undo`, values that are not part of the identity are
/// neither validated nor required, and sub-commands are ignored.
fn flat_item(t: &[&str], start: usize, identity_only: bool) -> Result<ConfigItem, Bad> {
    let u = &t[start..];
    let shift = |b: Bad| Bad {
        at: b.at.map(|i| i + start),
        expected: b.expected,
    };
    let build = |head: Head, container, body| ConfigItem {
        category: head.category,
        container,
        key: head.key,
        header: head.header,
        body,
        line: None,
    };
    // `security-policy ...` / `nat-policy ...`: an item inside the block.
    if let Some(c) = u.first().and_then(|w| Container::from_keyword(w)) {
        let v = &u[1..];
        if v.is_empty() {
            return Err(Bad {
                at: None,
                expected: "`rule name NAME` or a sub-command",
            });
        }
        if v[0].starts_with('!') || (v.len() == 1 && v[0] == "#") {
            return Err(Bad {
                at: Some(start + 1),
                expected: "`rule name NAME` or a sub-command",
            });
        }
        let is_rule = v.first() == Some(&"rule") && v.get(1) == Some(&"name");
        let hlen = if is_rule { 3.min(v.len()) } else { v.len() };
        let head = classify_child(c, &v[..hlen]).map_err(|b| Bad {
            at: b.at.map(|i| i + start + 1),
            expected: b.expected,
        })?;
        let body = if is_rule && !identity_only {
            let words = sub_keywords(head.category).unwrap_or(&[]);
            body_of(head.category, t, start + 1 + hlen, words)?
        } else {
            Vec::new()
        };
        return Ok(build(head, Some(c), body));
    }
    let (hlen, body_words) = match flat_header_len(u) {
        Some((n, category)) => (n, sub_keywords(category)),
        None => (u.len(), None),
    };
    let head = classify(&u[..hlen], identity_only).map_err(shift)?;
    let body = match body_words {
        Some(words) if !identity_only => body_of(head.category, t, start + hlen, words)?,
        _ => Vec::new(),
    };
    Ok(build(head, None, body))
}

fn body_of(
    category: Category,
    t: &[&str],
    from: usize,
    words: &[&str],
) -> Result<Vec<BodyLine>, Bad> {
    split_body(t, from, words)?
        .into_iter()
        .map(|r| {
            let start = r.start;
            check_body_line(category, &t[r.clone()]).map_err(|b| Bad {
                at: b.at.map(|i| i + start),
                expected: b.expected,
            })?;
            Ok(BodyLine {
                depth: 1,
                text: t[r].join(" "),
            })
        })
        .collect()
}
