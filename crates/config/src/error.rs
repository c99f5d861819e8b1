//! Typed errors. Text from a file, an operator or a peer never panics: every
//! malformed input is one of these, with the line and column where it went
//! wrong (1-based; columns count characters, not bytes).

use crate::item::Category;
use crate::limits::printable;

/// A configuration text (a whole `display current-configuration`, or one
/// item as it crosses the wire) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A line is indented more than one level (one space) deeper than the
    /// line above it.
    #[error("line {line}, column {column}: indented by {found} spaces, expected at most {max}")]
    TooDeep {
        /// Line number.
        line: u32,
        /// Column of the first character after the indentation.
        column: u32,
        /// Spaces found.
        found: u32,
        /// The deepest indentation allowed here.
        max: u32,
    },
    /// The indentation contains a blank other than a space (a tab, say).
    #[error("line {line}, column {column}: expected a space in the indentation, found {found}")]
    BadIndentation {
        /// Line number.
        line: u32,
        /// Column of the offending character.
        column: u32,
        /// The character, escaped.
        found: String,
    },
    /// A line indented by two or more spaces (a sub-command) with no command
    /// above it to belong to: at the start, or right after `#`, `return`,
    /// `quit` or `switch vsys` (one space there is VRP's style for a global
    /// command and is accepted).
    #[error(
        "line {line}, column {column}: expected a command at column 1, found a sub-command with no parent"
    )]
    Orphan {
        /// Line number.
        line: u32,
        /// Column of the sub-command.
        column: u32,
    },
    /// A token is missing or malformed.
    #[error("line {line}, column {column}: expected {expected}, found {found}")]
    Expected {
        /// Line number (1 for a one-line command).
        line: u32,
        /// Column of the offending token, or one past the end of the line.
        column: u32,
        /// What the grammar wanted there.
        expected: &'static str,
        /// What was there (quoted), or `end of line`.
        found: String,
    },
    /// `switch vsys NAME` names a virtual system not declared (earlier) with
    /// `vsys name NAME`.
    #[error("line {line}, column {column}: expected a declared virtual system, found `{name}`")]
    UnknownVsys {
        /// Line number.
        line: u32,
        /// Column of the name.
        column: u32,
        /// The name.
        name: String,
    },
    /// A command that belongs to the root system only (`vsys name`, `hrp`)
    /// inside a virtual system's section.
    #[error("line {line}, column {column}: `{command}` is valid in the root system only")]
    RootOnly {
        /// Line number.
        line: u32,
        /// Column of the command.
        column: u32,
        /// The command (first line).
        command: String,
    },
    /// The same item (same identity) appears twice with different parameters.
    #[error(
        "line {line}, column {column}: {identity} is already defined on line {first_line} with other parameters"
    )]
    Duplicate {
        /// Line number of the second definition.
        line: u32,
        /// Column of the second definition.
        column: u32,
        /// The identity, as text.
        identity: String,
        /// Line of the first definition (0 if unknown).
        first_line: u32,
    },
    /// A control line (`return`, `quit`, `switch vsys`) where a single item
    /// was expected.
    #[error(
        "line {line}, column {column}: expected a configuration item, found control command `{command}`"
    )]
    UnexpectedControl {
        /// Line number.
        line: u32,
        /// Column.
        column: u32,
        /// The command.
        command: String,
    },
    /// A single-item text holds no item or more than one.
    #[error("line {line}, column {column}: expected exactly one configuration item, found {found}")]
    NotOneItem {
        /// Line of the second item, or one past the last line if none.
        line: u32,
        /// Column (1).
        column: u32,
        /// Items found (counting stops at 2).
        found: usize,
    },
    /// A line is longer than the configuration allows (see
    /// `docs/CONFIG.md`, "Limits").
    #[error("line {line}, column {column}: expected {what} of at most {limit} {unit}")]
    TooLong {
        /// Line number.
        line: u32,
        /// Column where the text goes past the limit (1 for a whole line).
        column: u32,
        /// What is too long (`a line`, `a command`).
        what: &'static str,
        /// The limit.
        limit: usize,
        /// Its unit (`bytes`).
        unit: &'static str,
    },
    /// A control or formatting character (an ANSI escape, NUL, a carriage
    /// return, a line separator, a bidirectional override, ...): never part
    /// of a configuration.
    #[error("line {line}, column {column}: expected printable text, found {found}")]
    ForbiddenChar {
        /// Line number.
        line: u32,
        /// Column of the character.
        column: u32,
        /// The character, escaped.
        found: String,
    },
}

impl ParseError {
    /// The 1-based line the error points at.
    pub fn line(&self) -> u32 {
        match self {
            Self::TooDeep { line, .. }
            | Self::BadIndentation { line, .. }
            | Self::Orphan { line, .. }
            | Self::Expected { line, .. }
            | Self::UnknownVsys { line, .. }
            | Self::RootOnly { line, .. }
            | Self::Duplicate { line, .. }
            | Self::UnexpectedControl { line, .. }
            | Self::NotOneItem { line, .. }
            | Self::TooLong { line, .. }
            | Self::ForbiddenChar { line, .. } => *line,
        }
    }

    /// The 1-based column (in characters) the error points at.
    pub fn column(&self) -> u32 {
        match self {
            Self::TooDeep { column, .. }
            | Self::BadIndentation { column, .. }
            | Self::Orphan { column, .. }
            | Self::Expected { column, .. }
            | Self::UnknownVsys { column, .. }
            | Self::RootOnly { column, .. }
            | Self::Duplicate { column, .. }
            | Self::UnexpectedControl { column, .. }
            | Self::NotOneItem { column, .. }
            | Self::TooLong { column, .. }
            | Self::ForbiddenChar { column, .. } => *column,
        }
    }
}

/// A one-line command typed in `system-view` (see [`crate::ConfigStore::execute`])
/// was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line holds no command.
    #[error("empty command")]
    Empty,
    /// A token is missing or malformed; positions are within the typed line
    /// (always line 1).
    #[error(transparent)]
    Syntax(#[from] ParseError),
    /// An action or a view change (`hrp sync`, `display`, `return`,
    /// `switch vsys`, ...), not a configuration change: the caller handles
    /// those itself.
    #[error("`{command}` is not a configuration command")]
    NotAConfigCommand {
        /// The command word(s).
        command: String,
    },
    /// `undo` names an item that does not exist.
    #[error("{} does not exist", printable(.identity))]
    NotFound {
        /// The identity, as text.
        identity: String,
    },
    /// The command was addressed to a virtual system this node does not have.
    #[error("virtual system `{}` does not exist", printable(.name))]
    UnknownVsys {
        /// The name.
        name: String,
    },
    /// The command is valid in the root system only (`vsys name`, `hrp`).
    #[error("`{}` is valid in the root system only", printable(.command))]
    RootOnly {
        /// The command.
        command: String,
    },
}

/// An incremental change from the peer (see [`crate::ConfigStore::apply_change`])
/// was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The item's category never crosses (node-local settings, the user
    /// database, SSL VPN), or it is a static route while static-route sync
    /// is off.
    #[error("{category} items are not synchronized")]
    NotSyncable {
        /// The category.
        category: Category,
    },
    /// The change names a virtual system this node does not have.
    #[error("virtual system `{}` does not exist", printable(.name))]
    UnknownVsys {
        /// The name.
        name: String,
    },
    /// A block whose sub-command is a node-local, user database or SSL VPN
    /// command (`hrp ...` inside an opaque block): it would smuggle what
    /// may not cross.
    #[error("a block may not hold `{line}`: node-local, user and SSL VPN commands never cross")]
    ForbiddenSubCommand {
        /// The sub-command, escaped and shortened for display.
        line: String,
    },
    /// A block of a category with a sub-command grammar (rules, sets,
    /// vsys declarations) holds a line that grammar does not have.
    #[error("`{line}` is not a sub-command of a {category}")]
    UnknownSubCommand {
        /// The block's category.
        category: Category,
        /// The sub-command, escaped and shortened for display.
        line: String,
    },
    /// A `vsys name` declaration addressed to a virtual system instead of
    /// the root system.
    #[error(
        "a vsys declaration must be addressed to the root system, not `{}`",
        printable(.vsys)
    )]
    VsysOutsideRoot {
        /// The virtual system it was addressed to.
        vsys: String,
    },
}

/// The node's own `hrp` lines hold an invalid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value is missing or out of range.
    #[error("line {line}, column {column}: in `{command}`: expected {expected}, found {found}")]
    Invalid {
        /// Line of the `hrp` command in the parsed text; 0 when the command
        /// was typed at run time rather than read from a file.
        line: u32,
        /// Column of the offending token within the (whitespace-normalized)
        /// command.
        column: u32,
        /// The command.
        command: String,
        /// What was expected there.
        expected: &'static str,
        /// What was there, or `end of line`.
        found: String,
    },
}

impl SettingsError {
    /// The line of the `hrp` command (0: typed at run time).
    pub fn line(&self) -> u32 {
        match self {
            Self::Invalid { line, .. } => *line,
        }
    }

    /// The column of the offending token.
    pub fn column(&self) -> u32 {
        match self {
            Self::Invalid { column, .. } => *column,
        }
    }
}
