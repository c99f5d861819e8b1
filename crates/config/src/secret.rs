//! Settings whose value is a secret (`hrp authentication-key`): shown
//! masked by `display current-configuration`, never written to a log.
//!
//! One rule for every secret setting: add its words to [`SECRET_HRP`].

use std::borrow::Cow;

/// The `hrp` settings (the word after `hrp`) whose remaining words are a
/// secret.
const SECRET_HRP: &[&str] = &["authentication-key", "encryption-key"];

/// What is shown in place of a secret. VRP prints keys in cipher form
/// between `%^%#` marks; hotsync keeps no reversible cipher, so the mask
/// carries nothing of the key (not even its length).
pub const SECRET_MASK: &str = "%^%#********%^%#";

/// The index of the first secret token of a command line (tokens, `undo`
/// included), if the line sets a secret.
pub(crate) fn secret_from(t: &[&str]) -> Option<usize> {
    let start = usize::from(t.first() == Some(&"undo"));
    let is_secret =
        t.get(start) == Some(&"hrp") && t.get(start + 1).is_some_and(|w| SECRET_HRP.contains(w));
    (is_secret && t.len() > start + 2).then_some(start + 2)
}

/// A command line with any secret replaced by [`SECRET_MASK`]: for
/// displays and logs. Lines without a secret come back borrowed.
pub fn mask_secrets(line: &str) -> Cow<'_, str> {
    let t: Vec<&str> = line.split_whitespace().collect();
    match secret_from(&t) {
        Some(i) => Cow::Owned(format!("{} {SECRET_MASK}", t[..i].join(" "))),
        None => Cow::Borrowed(line),
    }
}

/// Whether `value` is the mask itself (pasted back from a display).
pub(crate) fn is_mask(value: &str) -> bool {
    value == SECRET_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys_and_nothing_else() {
        assert_eq!(
            mask_secrets("hrp authentication-key s3cret words"),
            format!("hrp authentication-key {SECRET_MASK}")
        );
        assert_eq!(
            mask_secrets("  hrp   authentication-key x"),
            format!("hrp authentication-key {SECRET_MASK}")
        );
        assert_eq!(
            mask_secrets("undo hrp authentication-key x"),
            format!("undo hrp authentication-key {SECRET_MASK}")
        );
        assert_eq!(
            mask_secrets("hrp authentication-key"),
            "hrp authentication-key"
        );
        assert_eq!(mask_secrets("hrp priority 120"), "hrp priority 120");
        assert_eq!(
            mask_secrets("sysname authentication-key"),
            "sysname authentication-key"
        );
    }
}
