//! The admin socket: a Unix stream socket (mode 0600, in a private
//! directory: see [`crate::socket_dir`]) with a request/response protocol
//! (documented in `docs/COMMANDS.md`).
//!
//! ```text
//! request:   REQ <TAB> vsys <TAB> command line <LF>      (vsys empty = root)
//! response:  RESP <SP> status <SP> length <LF>           (0 = success)
//!            length bytes of UTF-8 output text
//! ```
//!
//! A response is framed by its length, so output of any size (a
//! configuration with long lines) reaches the client whole. A connection
//! carries any number of requests, one at a time. The node serves at most
//! [`Limits::max_clients`] connections at once; one that sends nothing for
//! [`Limits::idle`] is sent `BYE idle` and closed (the request, if any, was
//! not read: the client reconnects and sends it again), and a request line
//! must arrive whole within [`Limits::line`].

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::socket_dir;

/// Longest request line accepted (bytes).
const MAX_LINE: usize = 96 * 1024;

/// Longest response header line (`RESP 255 18446744073709551615`).
const MAX_HEADER: usize = 64;

/// Largest response a client accepts (the node builds it in memory first).
const MAX_RESPONSE: u64 = 1 << 30;

/// What the node tells a client it closes for being idle.
const BYE_IDLE: &str = "BYE idle";

/// Exit status of a command that succeeded.
pub const OK: u8 = 0;
/// Exit status of a command that failed (refused, not found, bad value).
pub const FAILED: u8 = 1;
/// Exit status of a command that was not understood.
pub const UNKNOWN: u8 = 2;

/// One command's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 0 on success.
    pub status: u8,
    /// Output text (lines).
    pub text: String,
}

impl Response {
    pub fn ok(text: impl Into<String>) -> Self {
        Response {
            status: OK,
            text: text.into(),
        }
    }

    pub fn fail(text: impl Into<String>) -> Self {
        Response {
            status: FAILED,
            text: text.into(),
        }
    }

    pub fn unknown(text: impl Into<String>) -> Self {
        Response {
            status: UNKNOWN,
            text: text.into(),
        }
    }
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\t' || c == '\n' || c == '\r' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Writes one request.
pub fn write_request(w: &mut impl Write, vsys: &str, line: &str) -> io::Result<()> {
    let msg = format!("REQ\t{}\t{}\n", clean(vsys), clean(line));
    w.write_all(msg.as_bytes())?;
    w.flush()
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one line of at most `max` bytes; `None` at end of stream.
fn read_line(r: &mut impl BufRead, max: usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(max as u64).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if n >= max {
            return Err(invalid("line too long"));
        }
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a line",
        ));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn parse_request(line: &str) -> io::Result<(String, String)> {
    let mut parts = line.splitn(3, '\t');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("REQ"), Some(vsys), Some(cmd)) => Ok((vsys.to_owned(), cmd.to_owned())),
        _ => Err(invalid("expected `REQ<TAB>vsys<TAB>command`")),
    }
}

/// Reads one request: `Some((vsys, line))`, `None` at end of stream (the
/// server reads with timeouts: [`next_request`]).
#[cfg(test)]
pub fn read_request(r: &mut impl BufRead) -> io::Result<Option<(String, String)>> {
    read_line(r, MAX_LINE)?
        .map(|line| parse_request(&line))
        .transpose()
}

/// Writes one response.
/// Output that does not end its last line gets a line end.
pub fn write_response(w: &mut impl Write, resp: &Response) -> io::Result<()> {
    let text = resp.text.as_str();
    let newline = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let header = format!("RESP {} {}\n", resp.status, text.len() + newline.len());
    w.write_all(header.as_bytes())?;
    w.write_all(text.as_bytes())?;
    w.write_all(newline.as_bytes())?;
    w.flush()
}

/// Why a response did not arrive.
#[derive(Debug)]
pub enum ReadError {
    /// The node closed an idle connection before reading the request: it
    /// was not executed, and may be sent again on a new connection.
    Idle,
    /// Anything else (the request may or may not have run).
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one response.
pub fn read_response(r: &mut impl BufRead) -> Result<Response, ReadError> {
    let Some(line) = read_line(r, MAX_HEADER)? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the node closed the connection",
        )
        .into());
    };
    if line == BYE_IDLE {
        return Err(ReadError::Idle);
    }
    let mut words = line.split(' ');
    let (Some("RESP"), Some(status), Some(len), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(invalid(format!("unexpected line from the node: {line:?}")).into());
    };
    let status: u8 = status
        .parse()
        .map_err(|_| invalid("bad status in the response"))?;
    let len: u64 = len
        .parse()
        .ok()
        .filter(|&n| n <= MAX_RESPONSE)
        .ok_or_else(|| invalid("bad length in the response"))?;
    let mut body = Vec::new();
    r.by_ref().take(len).read_to_end(&mut body)?;
    if body.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the node closed the connection inside a response",
        )
        .into());
    }
    let text = String::from_utf8(body).map_err(|_| invalid("the response is not UTF-8"))?;
    Ok(Response { status, text })
}

/// A connection to a node's admin socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to `path` and checks that the node listening there runs as
    /// this user or root (see [`socket_dir::check_peer`]).
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        socket_dir::check_peer(&stream)?;
        let writer = stream.try_clone()?;
        Ok(Client {
            path: path.to_owned(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one command in system `vsys` (`""` = root) and returns the
    /// answer. If the node had closed the connection for being idle (the
    /// command was not read), reconnects once and sends it again.
    pub fn request(&mut self, vsys: &str, line: &str) -> io::Result<Response> {
        match self.request_once(vsys, line) {
            Err(ReadError::Idle) => {
                *self = Client::connect(&self.path)?;
                self.request_once(vsys, line).map_err(|e| match e {
                    ReadError::Idle => io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the node closed the connection as idle",
                    ),
                    ReadError::Io(e) => e,
                })
            }
            Err(ReadError::Io(e)) => Err(e),
            Ok(r) => Ok(r),
        }
    }

    fn request_once(&mut self, vsys: &str, line: &str) -> Result<Response, ReadError> {
        // A write to a connection the node already closed fails; what it
        // wrote before closing (`BYE idle`) is still there to read.
        let sent = write_request(&mut self.writer, vsys, line);
        match read_response(&mut self.reader) {
            Err(ReadError::Io(e)) => Err(ReadError::Io(sent.err().unwrap_or(e))),
            other => other,
        }
    }
}

/// The command handler a server runs for each request: `(vsys, line)`.
pub type Handler = Arc<dyn Fn(&str, &str) -> Response + Send + Sync>;

/// Bounds on the admin socket's clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is answered `Error: busy` and
    /// closed.
    pub max_clients: usize,
    /// How long a connection may wait between requests.
    pub idle: Duration,
    /// How long a request line may take to arrive once it has started.
    pub line: Duration,
    /// How long one write of a response may block on a client that does
    /// not read.
    pub write: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 16,
            idle: Duration::from_secs(300),
            line: Duration::from_secs(10),
            write: Duration::from_secs(30),
        }
    }
}

/// A running admin socket server.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    clients: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (mode 0600) in a private directory (created 0700 if
    /// missing; refused if another user could write it: see
    /// [`socket_dir::prepare`]) and serves it, one thread per client, at
    /// most `limits.max_clients`. A stale socket file (nobody listening) is
    /// replaced; a live one is an error.
    pub fn start(path: &Path, handler: Handler, limits: Limits) -> io::Result<Server> {
        socket_dir::prepare(path)?;
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "admin socket {} is in use by another process",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(AtomicUsize::new(0));
        let accept = Accept {
            listener,
            handler,
            limits,
            stop: Arc::clone(&stop),
            clients: Arc::clone(&clients),
        };
        let thread = std::thread::Builder::new()
            .name("admin-accept".into())
            .spawn(move || accept.run())?;
        Ok(Server {
            path: path.to_owned(),
            stop,
            clients,
            thread: Some(thread),
        })
    }

    /// Connections being served now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Acquire)
    }

    /// Stops accepting and removes the socket file.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Accept {
    listener: UnixListener,
    handler: Handler,
    limits: Limits,
    stop: Arc<AtomicBool>,
    clients: Arc<AtomicUsize>,
}

/// One slot of [`Limits::max_clients`], freed when the client's thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Accept {
    fn run(self) {
        while !self.stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    tracing::warn!("admin: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn admit(&self, mut stream: UnixStream) {
        let limits = self.limits;
        if stream.set_nonblocking(false).is_err()
            || stream.set_write_timeout(Some(limits.write)).is_err()
        {
            return;
        }
        let taken = self
            .clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits.max_clients).then_some(n + 1)
            });
        if taken.is_err() {
            tracing::warn!(
                "admin: refusing a client: {} already connected",
                limits.max_clients
            );
            let busy = Response::fail(format!(
                "Error: the node serves at most {} admin clients at once; try again.\n",
                limits.max_clients
            ));
            let _ = write_response(&mut stream, &busy);
            return;
        }
        let slot = Slot(Arc::clone(&self.clients));
        let handler = Arc::clone(&self.handler);
        let spawned = std::thread::Builder::new()
            .name("admin-client".into())
            .spawn(move || {
                let _slot = slot;
                serve_client(stream, &handler, limits);
            });
        if let Err(e) = spawned {
            tracing::warn!("admin: cannot start a client thread: {e}");
        }
    }
}

/// What waiting for a request gave.
enum Wait {
    Request(String, String),
    Closed,
    Idle,
}

/// Waits up to `limits.idle` for a request to start, then up to
/// `limits.line` for the rest of its line.
fn next_request(reader: &mut BufReader<UnixStream>, limits: Limits) -> io::Result<Wait> {
    reader.get_ref().set_read_timeout(Some(limits.idle))?;
    match reader.fill_buf() {
        Ok([]) => return Ok(Wait::Closed),
        Ok(_) => {}
        Err(e) if is_timeout(&e) => return Ok(Wait::Idle),
        Err(e) => return Err(e),
    }
    let deadline = Instant::now() + limits.line;
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok([]) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a line",
                ));
            }
            Ok(bytes) => bytes,
            Err(e) if is_timeout(&e) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the request line did not end within {:?}", limits.line),
                ));
            }
            Err(e) => return Err(e),
        };
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > MAX_LINE {
            return Err(invalid("line too long"));
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(done);
        reader.consume(used);
        if done {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the request line did not end within {:?}", limits.line),
            ));
        }
        reader.get_ref().set_read_timeout(Some(left))?;
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let (vsys, cmd) = parse_request(&String::from_utf8_lossy(&line))?;
    Ok(Wait::Request(vsys, cmd))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

thread_local! {
    /// The client whose request this thread is serving (see [`client_gone`]).
    static CLIENT: RefCell<Option<UnixStream>> = const { RefCell::new(None) };
}

/// Whether the client of the request being served on this thread has
/// closed its end of the socket (or died). A long command (`session
/// import` of a stream) checks it and stops rather than run for nobody.
/// Reads nothing: a request sent ahead stays for the request reader.
pub fn client_gone() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    CLIENT.with(|c| {
        let c = c.borrow();
        let Some(s) = c.as_ref() else {
            return false;
        };
        let mut fds = [PollFd::new(s, PollFlags::RDHUP)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&now)) {
            Ok(_) => fds[0]
                .revents()
                .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
            Err(_) => false,
        }
    })
}

fn serve_client(stream: UnixStream, handler: &Handler, limits: Limits) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    CLIENT.with(|c| *c.borrow_mut() = stream.try_clone().ok());
    let mut reader = BufReader::new(stream);
    loop {
        match next_request(&mut reader, limits) {
            Ok(Wait::Request(vsys, line)) => {
                tracing::debug!(
                    vsys = %hotsync_config::printable(&vsys),
                    command = %hotsync_config::printable(&hotsync_config::mask_secrets(&line)),
                    "admin request"
                );
                let resp = handler(&vsys, &line);
                if write_response(&mut writer, &resp).is_err() {
                    return;
                }
            }
            Ok(Wait::Closed) => return,
            Ok(Wait::Idle) => {
                let _ = writer.write_all(format!("{BYE_IDLE}\n").as_bytes());
                return;
            }
            Err(e) => {
                let _ = write_response(&mut writer, &Response::unknown(format!("Error: {e}\n")));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_round_trip() {
        let mut buf = Vec::new();
        write_request(&mut buf, "v1", "display\tcurrent-configuration").unwrap();
        let (vsys, line) = read_request(&mut &buf[..]).unwrap().unwrap();
        assert_eq!(vsys, "v1");
        assert_eq!(line, "display current-configuration");

        let resp = Response {
            status: 1,
            text: "a\n\n> b\n".into(),
        };
        let mut buf = Vec::new();
        write_response(&mut buf, &resp).unwrap();
        assert_eq!(read_response(&mut &buf[..]).unwrap(), resp);

        // Any size, any line length: framed by length.
        let big = Response::ok(format!("rule name {}\n", "x".repeat(300_000)).repeat(8));
        let mut buf = Vec::new();
        write_response(&mut buf, &big).unwrap();
        assert_eq!(read_response(&mut &buf[..]).unwrap(), big);
    }

    /// A fresh private directory for a socket, removed on drop.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            let _ = std::fs::remove_file(self.0.with_extension("link"));
        }
    }

    impl AsRef<Path> for Dir {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl std::ops::Deref for Dir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn private_dir(name: &str) -> Dir {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("hotsync-admin-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        Dir(dir)
    }

    fn echo() -> Handler {
        Arc::new(|vsys: &str, line: &str| match line {
            "big" => Response::ok(format!("rule name {}\n", "x".repeat(300_000)).repeat(7)),
            _ => Response::ok(format!("{vsys}:{line}\n")),
        })
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read_all(s: &mut UnixStream) -> String {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn a_response_of_any_size_reaches_the_client() {
        let dir = private_dir("big");
        let path = dir.join("a.sock");
        let _server = Server::start(&path, echo(), Limits::default()).unwrap();
        let mut client = Client::connect(&path).unwrap();
        let r = client.request("", "big").unwrap();
        assert_eq!(r.status, OK);
        assert_eq!(r.text.len(), 7 * 300_011);
        assert_eq!(client.request("v", "after").unwrap().text, "v:after\n");
    }

    #[test]
    fn clients_are_bounded_and_idle_or_half_line_clients_time_out() {
        let dir = private_dir("bound");
        let path = dir.join("a.sock");
        let limits = Limits {
            max_clients: 2,
            idle: Duration::from_millis(300),
            line: Duration::from_millis(200),
            write: Duration::from_secs(5),
        };
        let server = Server::start(&path, echo(), limits).unwrap();
        // Two idle clients fill the slots; a third is refused, not served.
        let mut idle = UnixStream::connect(&path).unwrap();
        let mut half = UnixStream::connect(&path).unwrap();
        wait_for("two clients", || server.clients() == 2);
        let mut third = UnixStream::connect(&path).unwrap();
        let busy = read_response(&mut BufReader::new(&mut third)).unwrap();
        assert_eq!(busy.status, FAILED);
        assert!(
            busy.text.contains("at most 2 admin clients"),
            "{}",
            busy.text
        );
        assert_eq!(server.clients(), 2);
        // Half a line: dropped after `line`, with an error.
        half.write_all(b"REQ\t\tdisplay hrp").unwrap();
        assert!(read_all(&mut half).contains("did not end within"));
        // Silence: `BYE idle` after `idle`, then closed.
        assert_eq!(read_all(&mut idle), "BYE idle\n");
        wait_for("the slots to be freed", || server.clients() == 0);
        // A client whose connection was closed as idle reconnects and its
        // command runs once.
        let mut client = Client::connect(&path).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(client.request("", "again").unwrap().text, ":again\n");
    }

    #[test]
    fn a_socket_in_a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_dir("shared");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let path = dir.join("a.sock");
        let e = Server::start(&path, echo(), Limits::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(!path.exists());
        // Group-writable too.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(Server::start(&path, echo(), Limits::default()).is_err());
        // A symbolic link to a private directory is not the directory.
        let private = private_dir("target");
        let link = dir.with_extension("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&*private, &link).unwrap();
        assert!(Server::start(&link.join("a.sock"), echo(), Limits::default()).is_err());
        // Owned by another user (only root can set that up).
        if socket_dir::euid() == 0 {
            let theirs = private_dir("theirs");
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let e = Server::start(&theirs.join("a.sock"), echo(), Limits::default()).unwrap_err();
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        }
        // A missing directory is created private.
        let fresh_parent = private_dir("fresh");
        let fresh = fresh_parent.join("sub");
        let _server = Server::start(&fresh.join("a.sock"), echo(), Limits::default()).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_request(&mut &b"hello\n"[..]).is_err());
        assert!(read_response(&mut &b"what\n"[..]).is_err());
        assert!(read_response(&mut &b"RESP x 1\n"[..]).is_err());
        assert!(read_response(&mut &b"RESP 0 5\nabc"[..]).is_err());
        assert!(read_response(&mut &b"RESP 0 99999999999\n"[..]).is_err());
        assert!(matches!(
            read_response(&mut &b"BYE idle\n"[..]),
            Err(ReadError::Idle)
        ));
    }
}
