//! The commands `hotsync cli` and the admin socket know, as VRP knows them:
//! a typed line is checked word by word against this list before anything
//! runs, so a typo is refused at its position instead of becoming
//! configuration; a keyword may be shortened to any unique prefix
//! (`dis cur` = `display current-configuration`); `?` and `help` list what
//! may be typed.
//!
//! A pattern is a list of words: a literal keyword, `<NAME>` (any one
//! word), or a final `...` (any words, none included: the command's own
//! parser checks them and reports its errors with their column).

use std::fmt::Write as _;

/// Commands answered by the node (admin socket).
const NODE: &[&str] = &[
    "display hrp state",
    "display hrp state verbose",
    "display hrp sync-status",
    "display hrp sync-status job <JOB>",
    "display hrp configuration conflicts",
    "display hrp statistics",
    "display current-configuration",
    "display current-configuration vsys <NAME>",
    "display session table",
    "display session table brief",
    "display session table count",
    "display session table verbose",
    "display session table digest",
    "display session table vsys <NAME>",
    "display session table vsys <NAME> brief",
    "display session table vsys <NAME> count",
    "display session table vsys <NAME> verbose",
    "hrp sync config",
    "hrp sync config --wait",
    "hrp sync connection-status",
    "hrp sync connection-status --wait",
    "hrp role active",
    "hrp role standby",
    "display conntrack statistics",
    "session generate <COUNT> ...",
    "session import <FILE> ...",
    "wait <JOB>",
    "shutdown node",
];

/// Commands of the shell itself (the view it sends with each command).
const SHELL: &[&str] = &[
    "switch vsys <NAME>",
    "quit",
    "return",
    "system-view",
    "help",
];

/// Configuration commands (`system-view`); each may also follow `undo`.
/// What follows the fixed words is checked by the configuration parser.
const CONFIG: &[&str] = &[
    "hrp enable",
    "hrp node-id ...",
    "hrp local-address ...",
    "hrp remote-address ...",
    "hrp priority ...",
    "hrp preempt ...",
    "hrp timer hello ...",
    "hrp dead-count ...",
    "hrp authentication-key ...",
    "hrp encryption-key ...",
    "hrp metrics ...",
    "hrp role-control ...",
    "hrp data-plane ...",
    "hrp table ...",
    "hrp admin-socket ...",
    "hrp auto-sync config static-route",
    "hrp auto-sync on-establish",
    "hrp standby config enable",
    "sysname ...",
    "interface <NAME> ...",
    "firewall zone ...",
    "ip route-static ...",
    "ipv6 route-static ...",
    "ip address-set <NAME> ...",
    "ip service-set <NAME> ...",
    "vsys name <NAME> ...",
    "vsys enable",
    "security-policy rule name <NAME> ...",
    "security-policy default action ...",
    "nat-policy rule name <NAME> ...",
    "user-manage ...",
    "v-gateway ...",
    "sslvpn ...",
];

/// One word of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word<'a> {
    Key(&'a str),
    Arg(&'a str),
    Rest,
}

fn word(w: &str) -> Word<'_> {
    if w == "..." {
        Word::Rest
    } else if w.starts_with('<') {
        Word::Arg(w)
    } else {
        Word::Key(w)
    }
}

/// Every pattern, as word lists (`undo` + each configuration command).
fn patterns() -> impl Iterator<Item = Vec<Word<'static>>> {
    let plain = NODE
        .iter()
        .chain(SHELL)
        .chain(CONFIG)
        .map(|p| p.split(' ').map(word).collect());
    let undo = CONFIG.iter().map(|p| {
        std::iter::once(Word::Key("undo"))
            .chain(p.split(' ').map(word))
            .collect()
    });
    plain.chain(undo)
}

/// Why a line is not a command (VRP's three messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// No command has this word here.
    Unrecognized,
    /// The word is the prefix of several keywords.
    Ambiguous,
    /// The line stops before the command is complete.
    Incomplete,
}

/// A line refused by [`expand`]: what, and at which character (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub problem: Problem,
    pub column: usize,
    /// The keywords that would fit there (for ambiguous and incomplete).
    pub expected: Vec<&'static str>,
}

impl Refused {
    /// VRP's form: the line, a `^` under the position, the message.
    pub fn render(&self, line: &str) -> String {
        let what = match self.problem {
            Problem::Unrecognized => "Unrecognized command",
            Problem::Ambiguous => "Ambiguous command",
            Problem::Incomplete => "Incomplete command",
        };
        let shown = hotsync_config::printable(line.trim_end());
        let mut o = format!("  {shown}\n  {}^\n", " ".repeat(self.column));
        let _ = write!(o, "Error: {what} found at '^' position.");
        if !self.expected.is_empty() {
            let _ = write!(o, " Expected: {}.", self.expected.join(", "));
        }
        o.push('\n');
        o
    }
}

/// The words of `line` with their character columns.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (col, (byte, c)) in line.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((col, byte)),
            (true, Some((scol, sbyte))) => {
                out.push((scol, &line[sbyte..byte]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some((scol, sbyte)) = start {
        out.push((scol, &line[sbyte..]));
    }
    out
}

/// Where a walk over the words of a line ended.
struct Walk {
    /// The words, keywords spelled out.
    words: Vec<String>,
    /// The patterns still matching (empty when a `...` took the rest).
    cands: Vec<Vec<Word<'static>>>,
    /// A `...` took the rest of the line.
    rest: bool,
}

/// Match `ws` against the patterns, spelling out abbreviated keywords.
fn walk(ws: &[(usize, &str)]) -> Result<Walk, Refused> {
    let mut cands: Vec<Vec<Word<'static>>> = patterns().collect();
    let mut out: Vec<String> = Vec::with_capacity(ws.len());
    for (i, &(column, w)) in ws.iter().enumerate() {
        let keys = distinct(cands.iter().filter_map(|p| match p.get(i) {
            Some(Word::Key(k)) => Some(*k),
            _ => None,
        }));
        let takes_rest = cands.iter().any(|p| p.get(i) == Some(&Word::Rest));
        // A keyword typed in full selects a longer pattern even where a
        // `...` could take it (`hrp enable`); otherwise the `...` wins and
        // its command's parser checks the words.
        if takes_rest && !keys.contains(&w) {
            out.extend(ws[i..].iter().map(|&(_, w)| w.to_owned()));
            return Ok(Walk {
                words: out,
                cands: Vec::new(),
                rest: true,
            });
        }
        let chosen = if keys.contains(&w) {
            Some(w)
        } else {
            let prefixed: Vec<&'static str> =
                keys.iter().copied().filter(|k| k.starts_with(w)).collect();
            match prefixed.as_slice() {
                [one] => Some(*one),
                [] => None,
                many => {
                    return Err(Refused {
                        problem: Problem::Ambiguous,
                        column,
                        expected: many.to_vec(),
                    });
                }
            }
        };
        match chosen {
            Some(k) => {
                cands.retain(|p| p.get(i) == Some(&Word::Key(k)));
                out.push(k.to_owned());
            }
            None => {
                cands.retain(|p| matches!(p.get(i), Some(Word::Arg(_))));
                if cands.is_empty() {
                    return Err(Refused {
                        problem: Problem::Unrecognized,
                        column,
                        expected: Vec::new(),
                    });
                }
                out.push(w.to_owned());
            }
        }
    }
    Ok(Walk {
        words: out,
        cands,
        rest: false,
    })
}

/// The words that may come after a walk's last word.
fn following(walk: &Walk) -> Vec<&'static str> {
    let n = walk.words.len();
    distinct(walk.cands.iter().filter_map(|p| match p.get(n) {
        Some(Word::Key(k) | Word::Arg(k)) => Some(*k),
        _ => None,
    }))
}

fn is_complete(walk: &Walk) -> bool {
    let n = walk.words.len();
    walk.rest
        || walk
            .cands
            .iter()
            .any(|p| p.len() == n || (p.len() == n + 1 && p[n] == Word::Rest))
}

/// Check `line` against the known commands and spell out abbreviated
/// keywords: `dis cur` gives `display current-configuration`. Arguments
/// and everything a `...` covers are kept as typed.
pub fn expand(line: &str) -> Result<String, Refused> {
    let ws = words(line);
    let walk = walk(&ws)?;
    if !is_complete(&walk) {
        let end = ws.last().map_or(0, |&(c, w)| c + w.chars().count() + 1);
        return Err(Refused {
            problem: Problem::Incomplete,
            column: end,
            expected: following(&walk),
        });
    }
    Ok(walk.words.join(" "))
}

fn distinct(it: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for k in it {
        if !v.contains(&k) {
            v.push(k);
        }
    }
    v
}

/// The words that may follow `typed` (abbreviations allowed): keywords,
/// and `<NAME>`-style placeholders for arguments. Empty if `typed` is not
/// the start of a command or a command's arguments follow.
pub fn next_words(typed: &[&str]) -> Vec<&'static str> {
    let ws: Vec<(usize, &str)> = typed.iter().map(|w| (0, *w)).collect();
    walk(&ws).map(|w| following(&w)).unwrap_or_default()
}

/// `help` / `?`: every command; after some words (`display ?`) the words
/// that may come next; after part of a word (`display h?`) the keywords
/// that start with it.
pub fn help(typed: &str) -> String {
    let mut o = String::new();
    let mut ws: Vec<&str> = typed.split_whitespace().collect();
    if ws.is_empty() {
        o.push_str(" Commands (a keyword may be shortened to a unique prefix: `dis cur`; `?` after words lists what may follow):\n");
        for p in NODE.iter().chain(SHELL) {
            let _ = writeln!(o, "  {p}");
        }
        o.push_str(" Configuration (system-view; `undo` before one removes it):\n");
        for p in CONFIG {
            let _ = writeln!(o, "  {p}");
        }
        return o;
    }
    let partial = if typed.ends_with(char::is_whitespace) {
        ""
    } else {
        ws.pop().unwrap_or("")
    };
    let at: Vec<(usize, &str)> = ws.iter().map(|w| (0, *w)).collect();
    let walk = match walk(&at) {
        Ok(w) => w,
        Err(refused) => return refused.render(typed),
    };
    let n = ws.len();
    for w in following(&walk)
        .into_iter()
        .filter(|w| w.starts_with(partial))
    {
        let _ = writeln!(o, "  {w}");
    }
    let takes_rest = walk.rest || walk.cands.iter().any(|p| p.get(n) == Some(&Word::Rest));
    if takes_rest {
        o.push_str("  ... (the command's parameters)\n");
    }
    if partial.is_empty() && is_complete(&walk) {
        o.push_str("  <cr>\n");
    }
    if o.is_empty() {
        o.push_str("Error: no command continues like this; `?` alone lists the commands.\n");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations_expand_to_the_full_command() {
        assert_eq!(expand("dis cur").unwrap(), "display current-configuration");
        assert_eq!(expand("disp hrp state").unwrap(), "display hrp state");
        assert_eq!(
            expand("dis ses tab vsys v1 cou").unwrap(),
            "display session table vsys v1 count"
        );
        assert_eq!(
            expand("hrp sync conf --wait").unwrap(),
            "hrp sync config --wait"
        );
        assert_eq!(expand("w 3").unwrap(), "wait 3");
        // Arguments and parser-checked words are kept as typed.
        assert_eq!(
            expand("security-policy rule name web action permit").unwrap(),
            "security-policy rule name web action permit"
        );
        assert_eq!(expand("undo hrp priority").unwrap(), "undo hrp priority");
        assert_eq!(expand("hrp enable").unwrap(), "hrp enable");
    }

    #[test]
    fn typos_are_refused_at_their_position() {
        let r = expand("dispaly hrp state").unwrap_err();
        assert_eq!((r.problem, r.column), (Problem::Unrecognized, 0));
        let r = expand("display hrp stat").unwrap_err();
        assert_eq!((r.problem, r.column), (Problem::Ambiguous, 12));
        assert_eq!(r.expected, vec!["state", "statistics"]);
        let r = expand("sesion generate 10").unwrap_err();
        assert_eq!((r.problem, r.column), (Problem::Unrecognized, 0));
        let r = expand("hrp priorty 120").unwrap_err();
        assert_eq!((r.problem, r.column), (Problem::Unrecognized, 4));
        let r = expand("wait").unwrap_err();
        assert_eq!((r.problem, r.column), (Problem::Incomplete, 5));
        assert_eq!(r.expected, vec!["<JOB>"]);
        let r = expand("display  hrp  nonsense").unwrap_err();
        assert_eq!((r.problem, r.column), (Problem::Unrecognized, 14));
        assert_eq!(
            r.render("display  hrp  nonsense"),
            "  display  hrp  nonsense\n                ^\nError: Unrecognized command found at '^' position.\n"
        );
    }

    #[test]
    fn help_lists_commands_and_next_words() {
        assert!(help("").contains("display current-configuration"));
        assert_eq!(help("display h"), "  hrp\n");
        assert!(help("dis hrp state ").contains("verbose"));
        assert!(help("dis hrp state ").contains("<cr>"));
        assert_eq!(
            next_words(&["hrp", "sync"]),
            vec!["config", "connection-status"]
        );
        assert_eq!(next_words(&["dis", "hrp", "sync-status"]), vec!["job"]);
        assert!(next_words(&[]).contains(&"display"));
        assert!(next_words(&["nonsense"]).is_empty());
    }
}
