//! Every state change is logged once, with its fields (issue 14: role
//! changes and job ends were each logged twice, once by the protocol and
//! once by the node).

mod support;

use hotsync_node::Node;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{addr, node_config, port_pairs, wait_until};

/// Collects every formatted log line of the process.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    /// Lines of node `node` containing `what`.
    fn count(&self, node: u64, what: &str) -> usize {
        let tag = format!("hrp{{node={node}}}");
        self.text()
            .lines()
            .filter(|l| l.contains(&tag) && l.contains(what))
            .count()
    }
}

#[test]
fn each_state_change_is_one_line_with_its_fields() {
    let lines = Lines::default();
    let sink = lines.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_env_filter("info")
        .init();

    let p = port_pairs(2);
    let a = Node::start(node_config(1, 200, p[0], addr(p[1]), Some("k"), 100_000)).unwrap();
    let b = Node::start(node_config(2, 100, p[1], addr(p[0]), Some("k"), 100_000)).unwrap();
    support::established(&a, &b, Duration::from_secs(10));
    support::fill(a.table(), 1000, 7);
    let job = a.sync_connection_status().unwrap();
    let st = a.wait_job(job, Duration::from_secs(30)).unwrap();
    wait_until("the receiver's end line", Duration::from_secs(10), || {
        lines.count(2, "peer batch sync finished") == 1
    });
    a.shutdown();
    b.shutdown();

    let all = lines.text();
    for node in [1, 2] {
        // initial -> active / standby: once, with from, to and reason.
        assert_eq!(lines.count(node, "HRP role changed"), 1, "{all}");
        assert_eq!(lines.count(node, "from=initial"), 1, "{all}");
        assert_eq!(
            lines.count(node, "HRP relationship established"),
            1,
            "{all}"
        );
        // The old duplicates are gone.
        assert_eq!(lines.count(node, "role initial ->"), 0, "{all}");
        assert_eq!(
            lines.count(node, "relationship established with node"),
            0,
            "{all}"
        );
    }
    assert_eq!(lines.count(1, "to=active"), 1, "{all}");
    assert_eq!(lines.count(2, "to=standby"), 1, "{all}");
    let start = format!("job={job} kind=\"connection-status\" total={}", st.total);
    assert_eq!(lines.count(1, "batch sync started"), 1, "{all}");
    assert_eq!(lines.count(1, &start), 1, "{all}");
    assert_eq!(lines.count(1, "batch sync finished"), 1, "{all}");
    assert_eq!(lines.count(1, "batch sync done"), 0, "{all}");
    assert_eq!(lines.count(2, "peer batch sync started"), 1, "{all}");
}
