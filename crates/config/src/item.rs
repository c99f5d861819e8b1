//! Configuration items: category, identity, parameters.

use std::fmt;

use crate::error::ParseError;
use crate::parse::{Event, parse_events};

/// What kind of configuration an item is. Decides its identity rule and
/// whether it may cross to the peer (see [`crate::is_syncable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Category {
    /// `sysname NAME` (node-local).
    Sysname,
    /// `interface NAME` block (node-local).
    Interface,
    /// `firewall zone NAME` / `firewall zone name NAME` block (node-local).
    Zone,
    /// A top-level `hrp ...` line: the node's own hot-standby settings
    /// (node-local).
    Hrp,
    /// `ip route-static ...` / `ipv6 route-static ...` (crosses only with
    /// `hrp auto-sync config static-route`).
    StaticRoute,
    /// `rule name NAME` inside `security-policy`.
    SecurityRule,
    /// `rule name NAME` inside `nat-policy`.
    NatRule,
    /// `ip address-set NAME type object|group` block.
    AddressSet,
    /// `ip service-set NAME type object|group` block.
    ServiceSet,
    /// `vsys name NAME [id N]` declaration (root system only).
    Vsys,
    /// `user-manage ...` lines and blocks (never synchronized, B10).
    UserDatabase,
    /// `v-gateway ...` blocks and `sslvpn ...` lines (never synchronized, B10).
    SslVpn,
    /// Any other command or block, kept verbatim.
    Opaque,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 13] = [
        Category::Sysname,
        Category::Interface,
        Category::Zone,
        Category::Hrp,
        Category::StaticRoute,
        Category::SecurityRule,
        Category::NatRule,
        Category::AddressSet,
        Category::ServiceSet,
        Category::Vsys,
        Category::UserDatabase,
        Category::SslVpn,
        Category::Opaque,
    ];

    /// A short lowercase name (`security-rule`, `static-route`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Category::Sysname => "sysname",
            Category::Interface => "interface",
            Category::Zone => "zone",
            Category::Hrp => "hrp",
            Category::StaticRoute => "static-route",
            Category::SecurityRule => "security-rule",
            Category::NatRule => "nat-rule",
            Category::AddressSet => "address-set",
            Category::ServiceSet => "service-set",
            Category::Vsys => "vsys",
            Category::UserDatabase => "user-database",
            Category::SslVpn => "ssl-vpn",
            Category::Opaque => "opaque",
        }
    }

    /// Settings that describe this node itself (host name, interfaces,
    /// zones, its hot-standby settings): never synchronized.
    pub fn is_node_local(self) -> bool {
        matches!(
            self,
            Category::Sysname | Category::Interface | Category::Zone | Category::Hrp
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A block whose sub-commands are items of their own (an ordered section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Container {
    /// `security-policy`: security rules, in order.
    SecurityPolicy,
    /// `nat-policy`: NAT rules, in order.
    NatPolicy,
}

impl Container {
    /// Both containers.
    pub const ALL: [Container; 2] = [Container::SecurityPolicy, Container::NatPolicy];

    /// The command that opens the block.
    pub fn keyword(self) -> &'static str {
        match self {
            Container::SecurityPolicy => "security-policy",
            Container::NatPolicy => "nat-policy",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Container::SecurityPolicy => 0,
            Container::NatPolicy => 1,
        }
    }

    pub(crate) fn from_keyword(word: &str) -> Option<Container> {
        match word {
            "security-policy" => Some(Container::SecurityPolicy),
            "nat-policy" => Some(Container::NatPolicy),
            _ => None,
        }
    }
}

/// What makes two items "the same configuration command" within one system
/// (the root or one vsys): category, the enclosing container (for items
/// inside `security-policy` / `nat-policy`) and a key derived from the first
/// line. Everything else is parameters. See `docs/CONFIG.md`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The category.
    pub category: Category,
    /// The container block the item lives in, if any.
    pub container: Option<Container>,
    /// The key: a rule's name, a route's `prefix/len next-hop`, a set's
    /// name, an opaque item's first line, ...
    pub key: String,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.category, self.container) {
            (Category::Opaque, Some(c)) => write!(f, "opaque `{} / {}`", c.keyword(), self.key),
            (Category::Opaque, None) => write!(f, "opaque `{}`", self.key),
            (c, _) if self.key.is_empty() => write!(f, "{c}"),
            (c, _) => write!(f, "{c} `{}`", self.key),
        }
    }
}

/// Borrowed identity, for lookups without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IdRef<'a> {
    pub category: Category,
    pub container: Option<Container>,
    pub key: &'a str,
}

impl Identity {
    pub(crate) fn as_ref(&self) -> IdRef<'_> {
        IdRef {
            category: self.category,
            container: self.container,
            key: &self.key,
        }
    }
}

/// One sub-command line of a block item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BodyLine {
    pub(crate) depth: u32,
    pub(crate) text: String,
}

impl BodyLine {
    /// Nesting depth below the item's first line (1 = direct sub-command).
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The sub-command, blanks normalized to single spaces.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// One configuration item: a top-level command with its sub-commands, or a
/// rule inside `security-policy` / `nat-policy`.
///
/// Equality compares the configuration (category, container, first line,
/// body); the source line number is not part of it.
#[derive(Debug, Clone)]
pub struct ConfigItem {
    pub(crate) category: Category,
    pub(crate) container: Option<Container>,
    pub(crate) key: String,
    pub(crate) header: String,
    pub(crate) body: Vec<BodyLine>,
    pub(crate) line: Option<u32>,
}

impl PartialEq for ConfigItem {
    fn eq(&self, other: &Self) -> bool {
        self.category == other.category
            && self.container == other.container
            && self.key == other.key
            && self.header == other.header
            && self.body == other.body
    }
}

impl Eq for ConfigItem {}

impl ConfigItem {
    /// Parse one item from its text, as [`ConfigItem::render`] prints it
    /// (what crosses the wire). `#` lines and blank lines are ignored; the
    /// text must hold exactly one item, and no `return` / `quit` /
    /// `switch vsys`.
    pub fn parse(text: &str) -> Result<ConfigItem, ParseError> {
        let mut found: Option<ConfigItem> = None;
        let mut last_line = 0;
        parse_events(text, &mut |event| match event {
            Event::Item(item) => {
                if found.is_some() {
                    return Err(ParseError::NotOneItem {
                        line: item.line.unwrap_or(0),
                        column: 1,
                        found: 2,
                    });
                }
                last_line = item.line.unwrap_or(0);
                found = Some(item);
                Ok(())
            }
            Event::Block { line, .. } => {
                last_line = line;
                Ok(())
            }
            Event::Return { line } => Err(ParseError::UnexpectedControl {
                line,
                column: 1,
                command: "return".to_owned(),
            }),
            Event::Switch { line, name, .. } => Err(ParseError::UnexpectedControl {
                line,
                column: 1,
                command: format!("switch vsys {name}"),
            }),
        })?;
        found.ok_or(ParseError::NotOneItem {
            line: last_line.saturating_add(1),
            column: 1,
            found: 0,
        })
    }

    /// The item alone, as `display current-configuration` would print it
    /// (a rule is wrapped in its `security-policy` / `nat-policy` line).
    /// [`ConfigItem::parse`] reads it back.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.text_len() + 20);
        match self.container {
            Some(c) => {
                out.push_str(c.keyword());
                out.push('\n');
                self.write_to(&mut out, 1);
            }
            None => self.write_to(&mut out, 0),
        }
        out
    }

    pub(crate) fn text_len(&self) -> usize {
        self.header.len() + 1 + self.body.iter().map(|l| l.text.len() + 2).sum::<usize>()
    }

    pub(crate) fn write_to(&self, out: &mut String, indent: usize) {
        push_indent(out, indent);
        out.push_str(&self.header);
        out.push('\n');
        for line in &self.body {
            push_indent(out, indent + line.depth as usize);
            out.push_str(&line.text);
            out.push('\n');
        }
    }

    /// The category.
    pub fn category(&self) -> Category {
        self.category
    }

    /// The container block the item lives in, if any.
    pub fn container(&self) -> Option<Container> {
        self.container
    }

    /// The identity key (see [`Identity::key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The first line, blanks normalized (static routes: mask printed
    /// dotted, prefix masked).
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The sub-command lines, in order.
    pub fn body(&self) -> &[BodyLine] {
        &self.body
    }

    /// The line of the parsed text the item started on, if it came from a
    /// text (not part of equality).
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The item's identity.
    pub fn identity(&self) -> Identity {
        Identity {
            category: self.category,
            container: self.container,
            key: self.key.clone(),
        }
    }

    pub(crate) fn id_ref(&self) -> IdRef<'_> {
        IdRef {
            category: self.category,
            container: self.container,
            key: &self.key,
        }
    }

    /// For a `vsys name NAME` declaration: the declared name.
    pub fn vsys_name(&self) -> Option<&str> {
        (self.category == Category::Vsys).then_some(self.key.as_str())
    }
}

impl fmt::Display for ConfigItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}
