//! Virtual-system names and the numeric ids sessions carry.
//!
//! The root system is id 0. A virtual system takes the id of its
//! declaration (`vsys name NAME id N` or `vsys name NAME N`); one declared
//! without an id takes its position (1 for the first declared).

use hotsync_config::{Category, ConfigStore, ROOT};

/// `(name, id)` of every virtual system, in declaration order.
pub fn vsys_ids(store: &ConfigStore) -> Vec<(String, u16)> {
    let Some(items) = store.items(ROOT) else {
        return Vec::new();
    };
    items
        .filter(|it| it.category() == Category::Vsys)
        .enumerate()
        .map(|(i, it)| {
            let t: Vec<&str> = it.header().split_whitespace().collect();
            // vsys name NAME [id N | N]
            let id = match t.as_slice() {
                [_, _, _, "id", n, ..] | [_, _, _, n, ..] => n.parse().ok(),
                _ => None,
            };
            let id = id.unwrap_or(u16::try_from(i + 1).unwrap_or(u16::MAX));
            (it.key().to_owned(), id)
        })
        .collect()
}

/// The id of `name` (`root`, `""`, a declared name, or any number).
pub fn resolve(store: &ConfigStore, name: &str) -> Option<u16> {
    if name.is_empty() || name == "root" || name == "public" {
        return Some(0);
    }
    let ids = vsys_ids(store);
    if let Some((_, id)) = ids.iter().find(|(n, _)| n == name) {
        return Some(*id);
    }
    // A number is an id as sessions carry it, declared here or not (the
    // peer's sessions may arrive before its configuration).
    name.parse().ok()
}

/// The display name of id `id`.
pub fn name_of(ids: &[(String, u16)], id: u16) -> String {
    if id == 0 {
        return "root".into();
    }
    ids.iter()
        .find(|(_, i)| *i == id)
        .map_or_else(|| format!("vsys{id}"), |(n, _)| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_declarations_or_order() {
        let store =
            ConfigStore::parse("vsys name a id 5\n#\nvsys name b\n#\nvsys name c 9\n#\nreturn\n")
                .unwrap();
        assert_eq!(
            vsys_ids(&store),
            vec![("a".into(), 5), ("b".into(), 2), ("c".into(), 9)]
        );
        assert_eq!(resolve(&store, "root"), Some(0));
        assert_eq!(resolve(&store, "a"), Some(5));
        assert_eq!(resolve(&store, "9"), Some(9));
        assert_eq!(resolve(&store, "zz"), None);
        assert_eq!(resolve(&store, "7"), Some(7));
    }
}
