//! `session import`: a conntrack text dump streamed into the table, its
//! input bounded (the file is as untrusted as a peer's bytes) and every
//! refused line counted.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hotsync_config::printable;
use hotsync_table::Upsert;

use super::{Commands, err, unix_now};
use crate::admin::Response;
use crate::conntrack;
use crate::display::count;
use crate::vsys;

/// Lines in a row that are not conntrack entries after which an import
/// stops (a binary or unrelated file).
const MAX_SKIPPED_RUN: usize = 10_000;

/// An import's input, bounded: ends with an error when the client has
/// gone away (checked a few times a second) or after a megabyte without a
/// line break (`/dev/zero`, a binary file). Conntrack lines are ~250 bytes.
struct Guarded<R> {
    inner: R,
    since_newline: usize,
    checked: Instant,
}

/// Bytes without a line break after which an import stops.
const MAX_WITHOUT_NEWLINE: usize = 1 << 20;

impl<R> Guarded<R> {
    fn new(inner: R) -> Self {
        Guarded {
            inner,
            since_newline: 0,
            checked: Instant::now(),
        }
    }
}

impl<R: std::io::Read> std::io::Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.checked.elapsed() >= Duration::from_millis(200) {
            self.checked = Instant::now();
            if crate::admin::client_gone() {
                return Err(std::io::Error::other("the client went away"));
            }
        }
        let n = self.inner.read(buf)?;
        match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(p) => self.since_newline = n - p - 1,
            None => self.since_newline += n,
        }
        if self.since_newline > MAX_WITHOUT_NEWLINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no line break in a megabyte: not a conntrack text dump",
            ));
        }
        Ok(n)
    }
}

impl Commands {
    /// `session import FILE [vsys NAME|ID]`.
    ///
    /// Fails (status 1) when the file cannot be read (a directory, say),
    /// when reading stops on an error, and when nothing in it is a
    /// conntrack entry. The read is bounded: it stops when the client goes
    /// away, at a megabyte without a line break (`/dev/zero`), and after
    /// [`MAX_SKIPPED_RUN`] lines in a row that are not entries.
    pub(super) fn import(&self, vsys: &str, args: &[&str]) -> Response {
        let (path, target) = match args {
            [p] => (*p, vsys.to_owned()),
            [p, "vsys", v] => (*p, (*v).to_owned()),
            _ => return Response::unknown("Error: expected `session import FILE [vsys NAME|ID]`"),
        };
        let shown_path = printable(path);
        let Some(id) = self.node.with_store(|s| vsys::resolve(s, &target)) else {
            return err(format!(
                "virtual system `{}` does not exist",
                printable(&target)
            ));
        };
        let file = match std::fs::File::open(path) {
            Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => {
                return err(format!("cannot read {shown_path}: it is a directory"));
            }
            Ok(f) => std::io::BufReader::new(Guarded::new(f)),
            Err(e) => return err(format!("cannot read {shown_path}: {e}")),
        };
        // Streamed: a dump of millions of sessions is never held whole.
        let table = self.node.table();
        let (mut sessions, mut inserted, mut updated, mut nat) = (0u64, 0u64, 0u64, 0u64);
        let mut skipped: Vec<(usize, String)> = Vec::new();
        let mut skipped_count = 0usize;
        let mut skipped_run = 0usize;
        let mut failed = false;
        let mut o = String::new();
        let read = conntrack::for_each(file, id, unix_now(), |line, r| match r {
            Ok((k, e)) => {
                sessions += 1;
                skipped_run = 0;
                nat += u64::from(e.has_nat());
                match table.upsert(&k, &e) {
                    Ok(Upsert::Inserted) => inserted += 1,
                    Ok(Upsert::Updated) => updated += 1,
                    Err(full) => {
                        let _ = writeln!(o, "Error: {full}; import stopped.");
                        failed = true;
                        return false;
                    }
                }
                true
            }
            Err(why) => {
                skipped_count += 1;
                skipped_run += 1;
                if skipped.len() < 20 {
                    skipped.push((line, printable(&why).into_owned()));
                }
                if skipped_run >= MAX_SKIPPED_RUN {
                    let _ = writeln!(
                        o,
                        "Error: {} lines in a row are not conntrack entries; import stopped.",
                        count(MAX_SKIPPED_RUN as u64)
                    );
                    failed = true;
                    return false;
                }
                true
            }
        });
        if let Err(e) = read {
            let _ = writeln!(
                o,
                "Error: reading {shown_path}: {}; import stopped.",
                printable(&e.to_string())
            );
            failed = true;
        }
        if sessions == 0 && skipped_count > 0 {
            // Not a conntrack dump at all.
            failed = true;
        }
        // After an error that read nothing, a count of zeros says nothing.
        let read_nothing = sessions == 0 && skipped_count == 0;
        if !(failed && read_nothing) {
            let _ = writeln!(
                o,
                "Info: imported {} sessions from {shown_path} ({} new, {} updated, {} with NAT); {} lines skipped.",
                count(sessions),
                count(inserted),
                count(updated),
                count(nat),
                skipped_count
            );
        }
        for (line, why) in &skipped {
            let _ = writeln!(o, "  line {line}: {why}");
        }
        if skipped_count > skipped.len() {
            let _ = writeln!(o, "  ... {} more", skipped_count - skipped.len());
        }
        if failed {
            Response::fail(o)
        } else {
            Response::ok(o)
        }
    }
}
