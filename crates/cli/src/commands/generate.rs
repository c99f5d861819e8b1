//! `session generate`: synthetic sessions for tests and demos, all or
//! nothing (a table that fills up takes back what the command added).

use std::time::Instant;

use hotsync_table::{SessionGenerator, Upsert};

use super::{Commands, err, unix_now};
use crate::admin::Response;
use crate::display::{self, count};
use crate::vsys;

fn set_bit(bits: &mut Vec<u64>, i: u64) {
    let word = usize::try_from(i / 64).unwrap_or(usize::MAX);
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (i % 64);
}

fn bit(bits: &[u64], i: u64) -> bool {
    usize::try_from(i / 64)
        .ok()
        .and_then(|w| bits.get(w))
        .is_some_and(|b| b & (1 << (i % 64)) != 0)
}

impl Commands {
    /// `session generate COUNT [vsys NAME|ID] [ipv6] [seed N] [local-only-every N]`.
    pub(super) fn generate(&self, vsys: &str, args: &[&str]) -> Response {
        let Some(n) = args.first().and_then(|a| a.parse::<u64>().ok()) else {
            return Response::unknown(
                "Error: expected `session generate COUNT [vsys NAME|ID] [ipv6] [seed N] [local-only-every N]`",
            );
        };
        let mut target = vsys.to_owned();
        let mut ipv6 = false;
        let mut seed = 1u64;
        let mut local_every = 0u64;
        let mut i = 1;
        while i < args.len() {
            let val = args.get(i + 1).copied();
            match (args[i], val) {
                ("ipv6", _) => {
                    ipv6 = true;
                    i += 1;
                    continue;
                }
                ("vsys", Some(v)) => target = v.to_owned(),
                ("seed", Some(v)) => match v.parse() {
                    Ok(s) => seed = s,
                    Err(_) => {
                        return Response::unknown(format!("Error: expected a seed, found `{v}`"));
                    }
                },
                ("local-only-every", Some(v)) => match v.parse() {
                    Ok(s) => local_every = s,
                    Err(_) => {
                        return Response::unknown(format!("Error: expected a number, found `{v}`"));
                    }
                },
                (w, _) => {
                    return Response::unknown(format!(
                        "Error: expected `vsys NAME`, `ipv6`, `seed N` or `local-only-every N`, found `{w}`"
                    ));
                }
            }
            i += 2;
        }
        let Some(id) = self.node.with_store(|s| vsys::resolve(s, &target)) else {
            return err(format!("virtual system `{target}` does not exist"));
        };
        let start = Instant::now();
        let now = unix_now();
        let generator = || {
            let mut g = SessionGenerator::new(seed, id, ipv6, now);
            g.local_only_every = local_every;
            g
        };
        let mut sessions = generator();
        let table = self.node.table();
        let (mut inserted, mut updated, mut local) = (0u64, 0u64, 0u64);
        // Which of the sessions made so far were new: what a rollback removes.
        let mut new_at: Vec<u64> = Vec::new();
        for i in 0..n {
            let (k, e) = sessions.next_session();
            match table.upsert(&k, &e) {
                Ok(Upsert::Inserted) => {
                    inserted += 1;
                    set_bit(&mut new_at, i);
                }
                Ok(Upsert::Updated) => updated += 1,
                Err(full) => {
                    // All or nothing: take back the sessions this command added.
                    let mut again = generator();
                    for j in 0..i {
                        let (k, _) = again.next_session();
                        if bit(&new_at, j) {
                            table.remove(&k);
                        }
                    }
                    return Response::fail(format!(
                        "Error: {full}; no session generated ({} would not fit; the {} new ones made before are removed again). Start the node with a larger --sessions-capacity.",
                        count(n),
                        count(inserted)
                    ));
                }
            }
            if !e.is_backup() {
                local += 1;
            }
        }
        let name = self
            .node
            .with_store(|s| vsys::name_of(&vsys::vsys_ids(s), id));
        Response::ok(format!(
            "Info: generated {} sessions in {name} (vsys id {id}{}): {} new, {} updated, {} local-only, in {}.",
            count(n),
            if ipv6 { ", IPv6" } else { "" },
            count(inserted),
            count(updated),
            count(local),
            display::secs(start.elapsed())
        ))
    }
}
