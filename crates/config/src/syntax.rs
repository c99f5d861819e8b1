//! The grammar of first lines: which category a command belongs to, its
//! identity key, and (for one-line commands) where a block's header ends and
//! its flattened sub-commands begin.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::hrp::{HrpSettings, apply_hrp};
use crate::item::{Category, Container};
use crate::limits::name_fits;

/// A grammar error inside one line: which token (None = end of line) and
/// what was expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bad {
    pub at: Option<usize>,
    pub expected: &'static str,
}

pub(crate) fn bad(t: &[&str], i: usize, expected: &'static str) -> Bad {
    Bad {
        at: (i < t.len()).then_some(i),
        expected,
    }
}

/// Category, key and normalized first line of a command.
#[derive(Debug)]
pub(crate) struct Head {
    pub category: Category,
    pub key: String,
    pub header: String,
}

/// Classify a top-level first line. `identity_only` (for `undo`) skips the
/// validation of values that are not part of the identity.
pub(crate) fn classify(t: &[&str], identity_only: bool) -> Result<Head, Bad> {
    if t.first() == Some(&"undo") {
        return undo_line(t);
    }
    let w = |i: usize| t.get(i).copied();
    let joined = || t.join(" ");
    let head = |category, key: String| {
        Ok(Head {
            category,
            key,
            header: joined(),
        })
    };
    match (w(0).unwrap_or(""), w(1)) {
        ("sysname", _) => {
            if !identity_only {
                named(t, 1, "a host name")?;
                end(t, 2)?;
            }
            head(Category::Sysname, String::new())
        }
        ("interface", _) => {
            need(t, 1, "an interface name")?;
            let name = t[1..].join(" ");
            if !name_fits(&name) {
                return Err(bad(t, 1, LONG_NAME));
            }
            head(Category::Interface, name)
        }
        ("firewall", Some("zone")) => {
            let key = if w(2) == Some("name") {
                named(t, 3, "a zone name")?;
                if !identity_only {
                    optional_id(t, 4)?;
                }
                t[3]
            } else {
                named(t, 2, "a zone name")?;
                if !identity_only {
                    end(t, 3)?;
                }
                t[2]
            };
            head(Category::Zone, key.to_owned())
        }
        ("hrp", _) => {
            need(t, 1, "an hrp command")?;
            let n = hrp_key_len(t);
            if !identity_only {
                apply_hrp(&mut HrpSettings::default(), t)?;
            }
            head(Category::Hrp, t[1..1 + n].join(" "))
        }
        ("ip", Some("route-static")) => route(t, false, identity_only),
        ("ipv6", Some("route-static")) => route(t, true, identity_only),
        ("ip", Some("address-set")) => set(t, Category::AddressSet, identity_only),
        ("ip", Some("service-set")) => set(t, Category::ServiceSet, identity_only),
        ("vsys", Some("name")) => {
            named(t, 2, "a virtual system name")?;
            if !identity_only {
                if t.get(3)
                    .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
                {
                    number::<u32>(t, 3, "a vsys id")?;
                    end(t, 4)?;
                } else {
                    optional_id(t, 3)?;
                }
            }
            head(Category::Vsys, t[2].to_owned())
        }
        ("user-manage", _) => {
            let key = match (w(1), w(2)) {
                (Some("user" | "group"), Some(_)) => {
                    named(t, 2, "a user or group name")?;
                    t[1..3].join(" ")
                }
                _ => t[1..].join(" "),
            };
            head(Category::UserDatabase, key)
        }
        ("v-gateway" | "sslvpn", _) => head(Category::SslVpn, joined()),
        _ => head(Category::Opaque, joined()),
    }
}

/// Classify a sub-command of `security-policy` / `nat-policy`.
pub(crate) fn classify_child(c: Container, t: &[&str]) -> Result<Head, Bad> {
    let undos = t.iter().take_while(|w| **w == "undo").count();
    if undos > 0 && t.get(undos) == Some(&"rule") && t.get(undos + 1) == Some(&"name") {
        // Typed, `undo rule name X` deletes the rule; it is never an item.
        return Err(bad(t, undos, UNDO_NAMED));
    }
    if t.first() == Some(&"rule") && t.get(1) == Some(&"name") {
        named(t, 2, "a rule name")?;
        let category = match c {
            Container::SecurityPolicy => Category::SecurityRule,
            Container::NatPolicy => Category::NatRule,
        };
        Ok(Head {
            category,
            key: t[2].to_owned(),
            header: t.join(" "),
        })
    } else {
        Ok(Head {
            category: Category::Opaque,
            key: t.join(" "),
            header: t.join(" "),
        })
    }
}

/// A control line (not an item): `return`, `quit`, `switch vsys NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control<'a> {
    Return,
    Switch(&'a str),
}

pub(crate) fn control<'a>(t: &[&'a str]) -> Option<Result<Control<'a>, Bad>> {
    match t.first().copied()? {
        "return" | "quit" => Some(end(t, 1).map(|()| Control::Return)),
        "switch" if t.get(1) == Some(&"vsys") => Some(
            named(t, 2, "a virtual system name")
                .and_then(|()| end(t, 3))
                .map(|()| Control::Switch(t[2])),
        ),
        _ => None,
    }
}

/// How many tokens after `hrp` form an hrp line's key.
pub(crate) fn hrp_key_len(t: &[&str]) -> usize {
    let w = |i: usize| t.get(i).copied();
    match (w(1), w(2), w(3)) {
        (Some("timer"), Some(_), _) => 2,
        (Some("auto-sync"), Some("config"), Some("static-route")) => 3,
        (Some("auto-sync"), Some("on-establish"), _) => 2,
        (Some("standby"), Some("config"), Some("enable")) => 3,
        (Some("data-plane"), Some("conntrack"), w3) if w3 != Some("ignore") => 2,
        (
            Some(
                "enable" | "node-id" | "local-address" | "remote-address" | "priority" | "preempt"
                | "dead-count" | "authentication-key" | "admin-socket",
            ),
            _,
            _,
        ) => 1,
        _ => t.len() - 1,
    }
}

pub(crate) fn need(t: &[&str], i: usize, expected: &'static str) -> Result<(), Bad> {
    if i < t.len() {
        Ok(())
    } else {
        Err(Bad { at: None, expected })
    }
}

const LONG_NAME: &str = "a name of at most 255 characters";
const UNDO_NAMED: &str =
    "an opaque command after `undo` (`undo` of a named item deletes it; it is not an item)";

/// Token `i` is present and short enough to be a name (see
/// [`crate::MAX_NAME_CHARS`]).
pub(crate) fn named(t: &[&str], i: usize, expected: &'static str) -> Result<(), Bad> {
    need(t, i, expected)?;
    if name_fits(t[i]) {
        Ok(())
    } else {
        Err(bad(t, i, LONG_NAME))
    }
}

/// `undo X` read as an item (from a file or the peer). VRP prints it for
/// an opaque default turned off (`undo info-center enable`), and that is
/// all it may be: for anything with an identity (a rule, a set, a route,
/// a vsys, a node-local, user or SSL VPN setting) `undo` is a deletion,
/// exactly as when typed, never an item to store.
fn undo_line(t: &[&str]) -> Result<Head, Bad> {
    let n = t.iter().take_while(|w| **w == "undo").count();
    need(t, n, "a command to undo")?;
    let undone = if Container::from_keyword(t[n]).is_some() {
        None
    } else {
        classify(&t[n..], true).ok().map(|h| h.category)
    };
    if undone != Some(Category::Opaque) {
        return Err(bad(t, n, UNDO_NAMED));
    }
    Ok(Head {
        category: Category::Opaque,
        key: t.join(" "),
        header: t.join(" "),
    })
}

pub(crate) fn end(t: &[&str], i: usize) -> Result<(), Bad> {
    if t.len() <= i {
        Ok(())
    } else {
        Err(bad(t, i, "end of line"))
    }
}

pub(crate) fn keyword(t: &[&str], i: usize, kw: &'static str) -> Result<(), Bad> {
    if t.get(i) == Some(&kw) {
        Ok(())
    } else {
        Err(bad(t, i, kw))
    }
}

pub(crate) fn number<N: std::str::FromStr>(
    t: &[&str],
    i: usize,
    expected: &'static str,
) -> Result<N, Bad> {
    t.get(i)
        .and_then(|s| s.parse::<N>().ok())
        .ok_or(bad(t, i, expected))
}

fn optional_id(t: &[&str], i: usize) -> Result<(), Bad> {
    if t.len() > i {
        keyword(t, i, "id")?;
        number::<u32>(t, i + 1, "an id")?;
        end(t, i + 2)?;
    }
    Ok(())
}

fn set(t: &[&str], category: Category, identity_only: bool) -> Result<Head, Bad> {
    named(t, 2, "a set name")?;
    if !identity_only && t.len() > 3 {
        keyword(t, 3, "type")?;
        match t.get(4).copied() {
            Some("object" | "group") => {}
            _ => return Err(bad(t, 4, "`object` or `group`")),
        }
    }
    Ok(Head {
        category,
        key: t[2].to_owned(),
        header: t.join(" "),
    })
}

/// Words that end a static route's next hop and start its parameters.
const ROUTE_PARAMS: &[&str] = &[
    "preference",
    "tag",
    "description",
    "track",
    "bfd",
    "permanent",
    "no-advertise",
    "inherit-cost",
    "name",
];

/// `ip route-static [vpn-instance V] PREFIX MASK NEXTHOP... [PARAMS...]`,
/// `ipv6 route-static [vpn-instance V] PREFIX LEN NEXTHOP... [PARAMS...]`.
/// The header is canonical: dotted mask (IPv4), prefix with host bits
/// cleared, addresses in standard notation.
fn route(t: &[&str], v6: bool, identity_only: bool) -> Result<Head, Bad> {
    let mut i = 2;
    let mut out: Vec<String> = vec![t[0].to_owned(), t[1].to_owned()];
    let mut key = String::new();
    if v6 {
        key.push_str("ipv6 ");
    }
    if t.get(i) == Some(&"vpn-instance") {
        named(t, i + 1, "a vpn-instance name")?;
        out.push(t[i].to_owned());
        out.push(t[i + 1].to_owned());
        key.push_str("vpn-instance ");
        key.push_str(t[i + 1]);
        key.push(' ');
        i += 2;
    }
    let (prefix, len, mask_text) = if v6 {
        let addr: Ipv6Addr = number(t, i, "an IPv6 destination address")?;
        let len: u8 = number(t, i + 1, "a prefix length 0-128")?;
        if len > 128 {
            return Err(bad(t, i + 1, "a prefix length 0-128"));
        }
        let masked = u128::from(addr) & mask128(len);
        (IpAddr::V6(Ipv6Addr::from(masked)), len, len.to_string())
    } else {
        let addr: Ipv4Addr = number(t, i, "an IPv4 destination address")?;
        let len = ipv4_mask_len(t, i + 1)?;
        let mask = mask32(len);
        let masked = u32::from(addr) & mask;
        (
            IpAddr::V4(Ipv4Addr::from(masked)),
            len,
            Ipv4Addr::from(mask).to_string(),
        )
    };
    out.push(prefix.to_string());
    out.push(mask_text);
    key.push_str(&format!("{prefix}/{len}"));
    i += 2;
    let hop_start = i;
    while i < t.len() && !ROUTE_PARAMS.contains(&t[i]) {
        i += 1;
    }
    if i == hop_start {
        return Err(bad(t, i, "a next hop (address or interface)"));
    }
    for (n, hop) in t[hop_start..i].iter().enumerate() {
        let at = hop_start + n;
        // A token that starts like an address must be one.
        let looks_numeric = hop.starts_with(|c: char| c.is_ascii_digit()) || hop.contains(':');
        let hop = if looks_numeric && !hop.contains('/') {
            let addr: IpAddr = number(t, at, "a next-hop address")?;
            addr.to_string()
        } else {
            (*hop).to_owned()
        };
        key.push(' ');
        key.push_str(&hop);
        out.push(hop);
    }
    if !identity_only {
        let mut j = i;
        while j < t.len() {
            match t[j] {
                "preference" => {
                    let p: u8 = number(t, j + 1, "a preference 1-255")?;
                    if p == 0 {
                        return Err(bad(t, j + 1, "a preference 1-255"));
                    }
                    j += 2;
                }
                "tag" => {
                    number::<u32>(t, j + 1, "a tag")?;
                    j += 2;
                }
                "description" => {
                    need(t, j + 1, "a description")?;
                    break;
                }
                _ => j += 1,
            }
        }
    }
    out.extend(t[i..].iter().map(|s| (*s).to_owned()));
    Ok(Head {
        category: Category::StaticRoute,
        key,
        header: out.join(" "),
    })
}

fn ipv4_mask_len(t: &[&str], i: usize) -> Result<u8, Bad> {
    const EXPECTED: &str = "a mask (dotted, contiguous) or a length 0-32";
    let s = t.get(i).ok_or(bad(t, i, EXPECTED))?;
    if s.contains('.') {
        let m = u32::from(s.parse::<Ipv4Addr>().map_err(|_| bad(t, i, EXPECTED))?);
        let len = m.leading_ones();
        if m != mask32(len as u8) {
            return Err(bad(t, i, EXPECTED));
        }
        Ok(len as u8)
    } else {
        match s.parse::<u8>() {
            Ok(n) if n <= 32 => Ok(n),
            _ => Err(bad(t, i, EXPECTED)),
        }
    }
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

// ---------------------------------------------------------------------------
// One-line (flattened) block commands.

const RULE_WORDS: &[&str] = &[
    "description",
    "tag",
    "source-zone",
    "destination-zone",
    "source-address",
    "destination-address",
    "service",
    "application",
    "user",
    "user-group",
    "access-authentication",
    "time-range",
    "action",
    "profile",
    "policy",
    "session",
    "long-link",
    "disable",
    "enable",
    "undo",
];
const NAT_WORDS: &[&str] = &[
    "description",
    "source-zone",
    "destination-zone",
    "egress-interface",
    "source-address",
    "destination-address",
    "service",
    "action",
    "time-range",
    "disable",
    "enable",
    "undo",
];
const ADDRESS_SET_WORDS: &[&str] = &["address", "description", "undo"];
const SERVICE_SET_WORDS: &[&str] = &["service", "description", "undo"];
const VSYS_WORDS: &[&str] = &["assign", "description", "undo"];
const INTERFACE_WORDS: &[&str] = &[
    "description",
    "ip",
    "ipv6",
    "shutdown",
    "mtu",
    "service-manage",
    "alias",
    "vrrp",
    "gateway",
    "undo",
];
const ZONE_WORDS: &[&str] = &["set", "add", "description", "undo"];
const USER_WORDS: &[&str] = &[
    "description",
    "parent-group",
    "password",
    "alias",
    "expire-time",
    "undo",
];

/// The sub-command keywords of a flattened block command (`None`: the
/// command is a single line).
pub(crate) fn sub_keywords(category: Category) -> Option<&'static [&'static str]> {
    Some(match category {
        Category::SecurityRule => RULE_WORDS,
        Category::NatRule => NAT_WORDS,
        Category::AddressSet => ADDRESS_SET_WORDS,
        Category::ServiceSet => SERVICE_SET_WORDS,
        Category::Vsys => VSYS_WORDS,
        Category::Interface => INTERFACE_WORDS,
        Category::Zone => ZONE_WORDS,
        Category::UserDatabase => USER_WORDS,
        _ => return None,
    })
}

/// How many tokens of a flattened top-level command form its first line, and
/// the block's category (`None`: a single-line command, all tokens).
pub(crate) fn flat_header_len(t: &[&str]) -> Option<(usize, Category)> {
    let w = |i: usize| t.get(i).copied();
    let typed = |n: usize| if w(n) == Some("type") { n + 2 } else { n };
    let r = match (w(0)?, w(1), w(2)) {
        ("ip", Some("address-set"), Some(_)) => (typed(3), Category::AddressSet),
        ("ip", Some("service-set"), Some(_)) => (typed(3), Category::ServiceSet),
        ("vsys", Some("name"), Some(_)) => match w(3) {
            Some("id") => (5, Category::Vsys),
            Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => (4, Category::Vsys),
            _ => (3, Category::Vsys),
        },
        ("interface", Some(_), _) => (2, Category::Interface),
        ("firewall", Some("zone"), Some("name")) => {
            (if w(4) == Some("id") { 6 } else { 4 }, Category::Zone)
        }
        ("firewall", Some("zone"), Some(_)) => (3, Category::Zone),
        ("user-manage", Some("user"), Some(_)) => (3, Category::UserDatabase),
        _ => return None,
    };
    Some((r.0.min(t.len()), r.1))
}

/// Split flattened sub-command tokens into body lines: each keyword starts a
/// line; `undo` keeps the next word on its line. Returns token ranges.
pub(crate) fn split_body(
    t: &[&str],
    start: usize,
    words: &[&str],
) -> Result<Vec<std::ops::Range<usize>>, Bad> {
    let mut lines = Vec::new();
    let mut i = start;
    while i < t.len() {
        if !words.contains(&t[i]) {
            return Err(bad(t, i, "a sub-command keyword"));
        }
        let begin = i;
        i += if t[i] == "undo" { 2 } else { 1 };
        while i < t.len() && !words.contains(&t[i]) {
            i += 1;
        }
        lines.push(begin..i.min(t.len()));
    }
    Ok(lines)
}
