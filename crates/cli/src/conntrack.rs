//! Reads the text Linux `conntrack -L` prints into sessions.
//!
//! ```text
//! tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=51234 dport=443 src=10.0.0.2 dst=10.0.0.1 sport=443 dport=51234 [ASSURED] mark=0 use=1
//! udp      17 29 src=10.0.0.1 dst=8.8.8.8 sport=5353 dport=53 [UNREPLIED] src=8.8.8.8 dst=10.0.0.1 sport=53 dport=5353 mark=0 use=1
//! icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=1234 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=1234 mark=0 use=1
//! ipv6     10 tcp      6 300 ESTABLISHED src=fd00::1 dst=fd00::2 sport=1 dport=2 src=fd00::2 dst=fd00::1 sport=2 dport=1 [ASSURED] use=1
//! ```
//!
//! The first tuple is the original direction (the session key); the second
//! is the reply direction. A reply that is not the original swapped means
//! the flow is translated: the entry gets a NAT translation (the forward
//! tuple after translation: reply destination -> reply source). With
//! accounting on, `packets=` and `bytes=` of each tuple fill the counters.
//! `zone=` and GRE's `srckey=`/`dstkey=` are part of the session key:
//! entries differing only in them are distinct sessions, as in the kernel.
//! Any other line is skipped and reported with its number; nothing panics.

use std::io::{BufRead, Read};
use std::net::IpAddr;

use hotsync_table::{
    NatTranslation, SessionEntry, SessionKey, SessionState, addr_bytes, flags, ip_proto,
};

/// One direction of a conntrack entry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    icmp_id: Option<u16>,
    packets: Option<u64>,
    bytes: Option<u64>,
}

impl Tuple {
    /// (source port or ICMP id, destination port or ICMP type<<8|code).
    fn ports(&self, icmp: bool) -> (u16, u16) {
        if icmp {
            let t = u16::from(self.icmp_type.unwrap_or(0));
            let c = u16::from(self.icmp_code.unwrap_or(0));
            (self.icmp_id.unwrap_or(0), t << 8 | c)
        } else {
            (self.sport.unwrap_or(0), self.dport.unwrap_or(0))
        }
    }
}

/// Result of reading a whole text (tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Parsed {
    /// Sessions read, in file order.
    pub sessions: Vec<(SessionKey, SessionEntry)>,
    /// Lines skipped: (line number, why).
    pub skipped: Vec<(usize, String)>,
}

/// Parses `conntrack -L` output; `vsys` is the id given to every session.
#[cfg(test)]
pub fn parse(text: &str, vsys: u16, now: u32) -> Parsed {
    let mut out = Parsed::default();
    let _ = for_each(text.as_bytes(), vsys, now, |line, r| {
        match r {
            Ok(s) => out.sessions.push(s),
            Err(e) => out.skipped.push((line, e)),
        }
        true
    });
    out
}

/// Longest line accepted; a longer one is skipped (a real line is ~250 bytes).
pub const MAX_LINE: usize = 4096;

/// Streams `conntrack -L` output from `input`, one line at a time (memory
/// stays bounded whatever the file's size), calling `f` with the line
/// number and the session or why the line was skipped. `f` returns false
/// to stop. Blank lines and conntrack's summary line are passed over.
pub fn for_each(
    mut input: impl BufRead,
    vsys: u16,
    now: u32,
    mut f: impl FnMut(usize, Result<(SessionKey, SessionEntry), String>) -> bool,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(256);
    let mut number = 0;
    loop {
        buf.clear();
        let n = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // Skip the rest of the overlong line.
            let mut rest = Vec::new();
            while (&mut input)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut rest)?
                > 0
                && rest.last() != Some(&b'\n')
            {
                rest.clear();
            }
            if !f(number, Err(format!("line longer than {MAX_LINE} bytes"))) {
                return Ok(());
            }
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim();
        if line.is_empty() || line.starts_with("conntrack v") || line.starts_with('#') {
            continue;
        }
        if !f(number, parse_line(line, vsys, now)) {
            return Ok(());
        }
    }
}

/// A number as conntrack prints it: `0x1f` or `31`.
fn hex_or_dec(v: &str, tok: &str) -> Result<u64, String> {
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| format!("expected a number in `{tok}`"))
}

fn state_of(name: &str) -> Option<SessionState> {
    Some(match name {
        "NONE" => SessionState::None,
        "SYN_SENT" | "SYN_SENT2" => SessionState::SynSent,
        "SYN_RECV" => SessionState::SynReceived,
        "ESTABLISHED" => SessionState::Established,
        "FIN_WAIT" => SessionState::FinWait,
        "CLOSE_WAIT" => SessionState::CloseWait,
        "LAST_ACK" => SessionState::LastAck,
        "TIME_WAIT" => SessionState::TimeWait,
        "CLOSE" => SessionState::Close,
        _ => return None,
    })
}

/// Parses one entry line.
pub fn parse_line(line: &str, vsys: u16, now: u32) -> Result<(SessionKey, SessionEntry), String> {
    let mut t = line.split_whitespace().peekable();
    let mut first = t.next().ok_or("empty line")?;
    // `-o extended` / IPv6 lines start with the layer-3 name and number.
    if matches!(first, "ipv4" | "ipv6") {
        let l3 = t.next().ok_or("expected a layer-3 protocol number")?;
        l3.parse::<u8>()
            .map_err(|_| format!("expected a layer-3 protocol number, found `{l3}`"))?;
        first = t.next().ok_or("expected a protocol name")?;
    }
    let proto_word = t.next().ok_or("expected a protocol number")?;
    let protocol: u8 = proto_word
        .parse()
        .map_err(|_| format!("expected a protocol number after `{first}`, found `{proto_word}`"))?;
    let timeout_word = t.next().ok_or("expected a timeout")?;
    let timeout: u32 = timeout_word
        .parse()
        .map_err(|_| format!("expected a timeout in seconds, found `{timeout_word}`"))?;

    let mut state = None;
    let mut tuples = [Tuple::default(); 2];
    let mut which = 0usize;
    let mut assured = false;
    let mut unreplied = false;
    let mut zone = 0u16;
    for tok in t {
        if let Some(flag) = tok.strip_prefix('[').and_then(|f| f.strip_suffix(']')) {
            match flag {
                "ASSURED" => assured = true,
                "UNREPLIED" => unreplied = true,
                _ => {}
            }
            continue;
        }
        let Some((k, v)) = tok.split_once('=') else {
            if state.is_none() && which == 0 && tuples[0].src.is_none() {
                state = Some(state_of(tok).ok_or_else(|| format!("unknown state `{tok}`"))?);
                continue;
            }
            return Err(format!("expected key=value, found `{tok}`"));
        };
        let num = |v: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("expected a number in `{tok}`"))
        };
        let narrow = |n: u64, max: u64| -> Result<u64, String> {
            if n > max {
                Err(format!("value out of range in `{tok}`"))
            } else {
                Ok(n)
            }
        };
        if k == "src" && tuples[which].src.is_some() {
            if which == 1 {
                // A third tuple (e.g. expectations): the rest is not ours.
                break;
            }
            which = 1;
        }
        let cur = &mut tuples[which];
        match k {
            "src" | "dst" => {
                let a: IpAddr = v
                    .parse()
                    .map_err(|_| format!("expected an IP address in `{tok}`"))?;
                if k == "src" {
                    cur.src = Some(a);
                } else {
                    cur.dst = Some(a);
                }
            }
            "sport" => cur.sport = Some(narrow(num(v)?, 65535)? as u16),
            "dport" => cur.dport = Some(narrow(num(v)?, 65535)? as u16),
            // GRE keys (the PPTP call ids, 16 bits), printed in hex: they
            // take the ports' place in the key.
            "srckey" => cur.sport = Some(narrow(hex_or_dec(v, tok)?, 65535)? as u16),
            "dstkey" => cur.dport = Some(narrow(hex_or_dec(v, tok)?, 65535)? as u16),
            "zone" => zone = narrow(num(v)?, 65535)? as u16,
            "type" => cur.icmp_type = Some(narrow(num(v)?, 255)? as u8),
            "code" => cur.icmp_code = Some(narrow(num(v)?, 255)? as u8),
            "id" => cur.icmp_id = Some(narrow(num(v)?, 65535)? as u16),
            "packets" => cur.packets = Some(num(v)?),
            "bytes" => cur.bytes = Some(num(v)?),
            _ => {} // mark=, use=, zone=, secctx=, delta-time=, ...
        }
    }
    let [orig, reply] = tuples;
    let src = orig.src.ok_or("missing `src=` of the original direction")?;
    let dst = orig.dst.ok_or("missing `dst=` of the original direction")?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err("source and destination are of different address families".into());
    }
    let icmp = protocol == ip_proto::ICMP || protocol == ip_proto::ICMPV6;
    if (protocol == ip_proto::TCP || protocol == ip_proto::UDP)
        && (orig.sport.is_none() || orig.dport.is_none())
    {
        return Err("missing `sport=`/`dport=` of the original direction".into());
    }
    let (sp, dp) = orig.ports(icmp);
    let key = SessionKey::new(vsys, protocol, src, sp, dst, dp).with_ct_zone(zone);

    let mut f = flags::BACKUP;
    if assured {
        f |= flags::ASSURED;
    }
    let mut nat = NatTranslation::default();
    if let (Some(rs), Some(rd)) = (reply.src, reply.dst) {
        if rs.is_ipv4() != src.is_ipv4() || rd.is_ipv4() != src.is_ipv4() {
            return Err("the reply direction is of another address family".into());
        }
        let (rsp, rdp) = reply.ports(icmp);
        let swapped = if icmp {
            // The reply of an echo request is another type: compare the id only.
            rs == dst && rd == src && rsp == sp
        } else {
            rs == dst && rd == src && rsp == dp && rdp == sp
        };
        if !swapped {
            f |= flags::NAT;
            // After translation the flow goes reply.dst -> reply.src.
            nat.src_addr = addr_bytes(rd);
            nat.dst_addr = addr_bytes(rs);
            if icmp {
                nat.src_port = rsp;
                nat.dst_port = dp;
            } else {
                nat.src_port = rdp;
                nat.dst_port = rsp;
            }
        }
    } else if !unreplied {
        return Err("missing the reply direction".into());
    }
    let state = state.unwrap_or(if unreplied {
        SessionState::None
    } else {
        SessionState::Established
    });
    let entry = SessionEntry {
        packets: [orig.packets.unwrap_or(0), reply.packets.unwrap_or(0)],
        bytes: [orig.bytes.unwrap_or(0), reply.bytes.unwrap_or(0)],
        nat,
        created: now,
        last_seen: now,
        timeout,
        state: state as u8,
        flags: f,
        ..SessionEntry::default()
    };
    Ok((key, entry))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_overlong_line_is_skipped_and_the_next_one_read() {
        let good = "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=51234 dport=443 src=10.0.0.2 dst=10.0.0.1 sport=443 dport=51234 [ASSURED] mark=0 use=1";
        let text = format!("{}\n{good}\n", "x".repeat(3 * MAX_LINE));
        let p = super::parse(&text, 0, 1000);
        assert_eq!(p.sessions.len(), 1);
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].0, 1);
        assert!(p.skipped[0].1.contains("longer than"));
    }

    use super::*;

    const SAMPLE: &str = "\
tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=51234 dport=443 src=10.0.0.2 dst=10.0.0.1 sport=443 dport=51234 [ASSURED] mark=0 use=1
udp      17 29 src=10.0.0.1 dst=8.8.8.8 sport=5353 dport=53 [UNREPLIED] src=8.8.8.8 dst=10.0.0.1 sport=53 dport=5353 mark=0 use=1
icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=1234 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=1234 mark=0 use=1
ipv6     10 tcp      6 300 ESTABLISHED src=fd00::1 dst=fd00::2 sport=40000 dport=22 src=fd00::2 dst=fd00::1 sport=22 dport=40000 [ASSURED] mark=0 zone=0 use=2
tcp      6 117 TIME_WAIT src=192.168.1.10 dst=93.184.216.34 sport=40000 dport=80 packets=10 bytes=900 src=93.184.216.34 dst=203.0.113.7 sport=80 dport=61000 packets=8 bytes=5000 [ASSURED] mark=0 use=1
this is not conntrack
tcp 6 x ESTABLISHED
tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.999 sport=1 dport=2
conntrack v1.4.7 (conntrack-tools): 8 flow entries have been shown.
";

    #[test]
    fn gre_keys_and_zones_keep_entries_apart() {
        let text = "\
ipv4     2 gre      47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x1 dstkey=0x2 src=10.0.0.2 dst=10.0.0.1 srckey=0x2 dstkey=0x1 [ASSURED] mark=0 use=1
ipv4     2 gre      47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x3 dstkey=0x4 src=10.0.0.2 dst=10.0.0.1 srckey=0x4 dstkey=0x3 [ASSURED] mark=0 use=1
tcp      6 431999 ESTABLISHED src=10.9.0.1 dst=10.9.0.2 sport=1000 dport=80 src=10.9.0.2 dst=10.9.0.1 sport=80 dport=1000 [ASSURED] mark=0 zone=1 use=1
tcp      6 431999 ESTABLISHED src=10.9.0.1 dst=10.9.0.2 sport=1000 dport=80 src=10.9.0.2 dst=10.9.0.1 sport=80 dport=1000 [ASSURED] mark=0 zone=2 use=1
gre      47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x10000 dstkey=0x1 mark=0 use=1
";
        let p = parse(text, 0, 1000);
        let keys: std::collections::HashSet<_> = p.sessions.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys.len(), 4, "{:?}", p.sessions);
        let (gre, _) = p.sessions[1];
        assert_eq!((gre.src_port, gre.dst_port), (3, 4));
        assert!(
            !p.sessions[1].1.has_nat(),
            "a swapped GRE reply is no translation"
        );
        assert_eq!(p.sessions[3].0.ct_zone, 2);
        assert_eq!(p.skipped.len(), 1);
        assert!(p.skipped[0].1.contains("out of range"), "{:?}", p.skipped);
    }

    #[test]
    fn reads_real_lines_and_reports_bad_ones() {
        let p = parse(SAMPLE, 3, 1000);
        assert_eq!(p.sessions.len(), 5, "{:?}", p.skipped);
        assert_eq!(
            p.skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![6, 7, 8]
        );
        let (k, e) = p.sessions[0];
        assert_eq!(k.vsys, 3);
        assert_eq!(k.protocol, 6);
        assert_eq!(k.src_port, 51234);
        assert_eq!(k.dst_port, 443);
        assert_eq!(e.state, SessionState::Established as u8);
        assert!(e.is_backup() && !e.has_nat());
        assert_eq!(e.timeout, 431_999);

        let (k, e) = p.sessions[2];
        assert_eq!(k.protocol, ip_proto::ICMP);
        assert_eq!((k.src_port, k.dst_port), (1234, 8 << 8));
        assert!(!e.has_nat());

        let (k, _) = p.sessions[3];
        assert_eq!(k.family, 6);
        assert_eq!(k.dst_port, 22);

        let (_, e) = p.sessions[4];
        assert!(e.has_nat());
        assert_eq!(
            hotsync_table::addr_from_bytes(4, &e.nat.src_addr).to_string(),
            "203.0.113.7"
        );
        assert_eq!(e.nat.src_port, 61000);
        assert_eq!(e.packets, [10, 8]);
        assert_eq!(e.bytes, [900, 5000]);
        assert_eq!(e.state, SessionState::TimeWait as u8);
    }

    #[test]
    fn never_panics_on_junk() {
        for s in [
            "",
            "tcp",
            "tcp 6",
            "tcp 999 1",
            "ipv6",
            "ipv6 10",
            "tcp 6 1 src=",
            "tcp 6 1 src=1.1.1.1 dst=::1 sport=1 dport=1",
            "tcp 6 1 sport=99999",
            "udp 17 1 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=::1 dst=::2",
            "\u{feff}\u{0}",
        ] {
            let _ = parse_line(s, 0, 0);
        }
    }
}
