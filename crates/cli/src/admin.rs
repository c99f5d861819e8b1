//! The admin socket: a Unix stream socket (mode 0600) with a line-based
//! request/response protocol (documented in `docs/COMMANDS.md`).
//!
//! ```text
//! request:   REQ <TAB> vsys <TAB> command line <LF>       (vsys empty = root)
//! response:  "> " output line <LF>                          (zero or more)
//!            END <SP> status <LF>                           (0 = success)
//! ```
//!
//! A connection carries any number of requests, one at a time.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request line accepted (bytes).
const MAX_LINE: u64 = 64 * 1024;

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

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at end of stream.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if n as u64 >= MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
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

/// Reads one request: `Some((vsys, line))`, `None` at end of stream.
pub fn read_request(r: &mut impl BufRead) -> io::Result<Option<(String, String)>> {
    let Some(line) = read_line(r)? else {
        return Ok(None);
    };
    let mut parts = line.splitn(3, '\t');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("REQ"), Some(vsys), Some(cmd)) => Ok(Some((vsys.to_owned(), cmd.to_owned()))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected `REQ<TAB>vsys<TAB>command`",
        )),
    }
}

/// Writes one response.
pub fn write_response(w: &mut impl Write, resp: &Response) -> io::Result<()> {
    let mut out = String::with_capacity(resp.text.len() + 16);
    for l in resp.text.lines() {
        out.push_str("> ");
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!("END {}\n", resp.status));
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// Reads one response.
pub fn read_response(r: &mut impl BufRead) -> io::Result<Response> {
    let mut text = String::new();
    loop {
        let Some(line) = read_line(r)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the connection",
            ));
        };
        if let Some(rest) = line.strip_prefix("> ") {
            text.push_str(rest);
            text.push('\n');
        } else if line == ">" {
            text.push('\n');
        } else if let Some(status) = line.strip_prefix("END ") {
            let status = status.trim().parse().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "bad status in END line")
            })?;
            return Ok(Response { status, text });
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected line from the node: {line:?}"),
            ));
        }
    }
}

/// A connection to a node's admin socket.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one command in system `vsys` (`""` = root) and returns the answer.
    pub fn request(&mut self, vsys: &str, line: &str) -> io::Result<Response> {
        write_request(&mut self.writer, vsys, line)?;
        read_response(&mut self.reader)
    }
}

/// The command handler a server runs for each request: `(vsys, line)`.
pub type Handler = Arc<dyn Fn(&str, &str) -> Response + Send + Sync>;

/// A running admin socket server.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (mode 0600) and serves it on a thread, one thread per
    /// client. A stale socket file (nobody listening) is replaced; a live
    /// one is an error.
    pub fn start(path: &Path, handler: Handler) -> io::Result<Server> {
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
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("admin-accept".into())
            .spawn(move || accept_loop(listener, handler, stop2))?;
        Ok(Server {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
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

fn accept_loop(listener: UnixListener, handler: Handler, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let handler = Arc::clone(&handler);
                let spawned = std::thread::Builder::new()
                    .name("admin-client".into())
                    .spawn(move || serve_client(stream, handler));
                if let Err(e) = spawned {
                    tracing::warn!("admin: cannot start a client thread: {e}");
                }
            }
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

thread_local! {
    /// The client whose request this thread is serving (see [`client_gone`]).
    static CLIENT: RefCell<Option<UnixStream>> = const { RefCell::new(None) };
    /// Bytes [`client_gone`] read ahead of the request reader.
    static READ_AHEAD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Whether the client of the request being served on this thread has
/// closed its end of the socket. A long command (`session import` of a
/// stream) checks it and stops rather than run for nobody.
pub fn client_gone() -> bool {
    CLIENT.with(|c| {
        let c = c.borrow();
        let Some(s) = c.as_ref() else {
            return false;
        };
        // The thread is inside the handler: nothing else reads or writes
        // the socket while it is briefly non-blocking. A byte read here (a
        // request sent ahead) is kept for the request reader.
        if s.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let r = (&*s).read(&mut byte);
        let _ = s.set_nonblocking(false);
        match r {
            Ok(0) => true,
            Ok(_) => {
                READ_AHEAD.with(|a| a.borrow_mut().push(byte[0]));
                false
            }
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    })
}

/// The request side of a client connection: bytes read ahead by
/// [`client_gone`] first.
struct ClientReader(UnixStream);

impl Read for ClientReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let ahead = READ_AHEAD.with(|a| {
            let mut a = a.borrow_mut();
            let n = a.len().min(buf.len());
            buf[..n].copy_from_slice(&a[..n]);
            a.drain(..n);
            n
        });
        if ahead > 0 {
            return Ok(ahead);
        }
        self.0.read(buf)
    }
}

fn serve_client(stream: UnixStream, handler: Handler) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    CLIENT.with(|c| *c.borrow_mut() = stream.try_clone().ok());
    READ_AHEAD.with(|a| a.borrow_mut().clear());
    let mut reader = BufReader::new(ClientReader(stream));
    loop {
        match read_request(&mut reader) {
            Ok(Some((vsys, line))) => {
                tracing::debug!(vsys = %vsys, command = %hotsync_config::mask_secrets(&line), "admin request");
                let resp = handler(&vsys, &line);
                if write_response(&mut writer, &resp).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = write_response(&mut writer, &Response::unknown(format!("Error: {e}")));
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
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_request(&mut &b"hello\n"[..]).is_err());
        assert!(read_response(&mut &b"what\n"[..]).is_err());
        assert!(read_response(&mut &b"END x\n"[..]).is_err());
        assert!(read_response(&mut &b"> a\n"[..]).is_err());
    }
}
