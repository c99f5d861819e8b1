//! Where the admin socket lives, and the ownership rules that keep another
//! local user from replacing it or impersonating the node.
//!
//! - A bare file name (`hotsync.sock`, `node-a.sock`) is placed in the
//!   private runtime directory: `/run/hotsync` for root,
//!   `$XDG_RUNTIME_DIR/hotsync` otherwise, else `/tmp/hotsync-UID`.
//!   The node creates it with mode 0700.
//! - The node refuses a socket whose directory is a symbolic link, is not
//!   owned by the node's user (or root), or is writable by group or others:
//!   there anybody could unlink the socket and bind an impostor.
//! - The client accepts a node only if the process listening on the socket
//!   runs as the client's own user or as root (`SO_PEERCRED`).

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The socket's file name when none is configured.
pub const DEFAULT_NAME: &str = "hotsync.sock";

/// This process's effective user id.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The private runtime directory of user `uid` (`xdg`: `$XDG_RUNTIME_DIR`).
pub fn runtime_dir_for(uid: u32, xdg: Option<&Path>) -> PathBuf {
    if uid == 0 {
        return PathBuf::from("/run/hotsync");
    }
    match xdg {
        Some(dir) if dir.is_absolute() => dir.join("hotsync"),
        _ => PathBuf::from(format!("/tmp/hotsync-{uid}")),
    }
}

/// The private runtime directory of this process's user.
pub fn runtime_dir() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    runtime_dir_for(euid(), xdg.as_deref())
}

/// The socket path for a configured value: `None` is the default socket;
/// a bare file name goes in the runtime directory; any other path is used
/// as given.
pub fn resolve(configured: Option<&Path>) -> PathBuf {
    let Some(path) = configured else {
        return runtime_dir().join(DEFAULT_NAME);
    };
    let bare = path.parent().is_none_or(|p| p.as_os_str().is_empty());
    if bare {
        runtime_dir().join(path)
    } else {
        path.to_owned()
    }
}

/// Creates the socket's directory if needed (mode 0700), then checks that it
/// is private to this user: a real directory, owned by this user or root,
/// not writable by group or others.
pub fn prepare(socket: &Path) -> io::Result<()> {
    let dir = match socket.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    check_private(dir, meta.is_dir(), meta.uid(), meta.mode(), euid())
}

/// The rule of [`prepare`] on a directory's owner and mode.
pub fn check_private(dir: &Path, is_dir: bool, owner: u32, mode: u32, me: u32) -> io::Result<()> {
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing the admin socket directory {}: {why}; use a private directory (the default is {})",
                dir.display(),
                runtime_dir_for(me, None).display()
            ),
        ))
    };
    if !is_dir {
        return refuse("not a directory (a symbolic link?)".into());
    }
    if owner != me && owner != 0 {
        return refuse(format!(
            "owned by uid {owner}, not by this user (uid {me}) or root"
        ));
    }
    if mode & 0o022 != 0 {
        return refuse(format!(
            "writable by {} (mode {:o})",
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            },
            mode & 0o7777
        ));
    }
    Ok(())
}

/// The client's check of the node it reached: the listening process runs
/// as `me` or as root.
pub fn check_peer_uid(peer: u32, me: u32) -> io::Result<()> {
    if peer == me || peer == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the process on this socket runs as uid {peer}, not as this user (uid {me}) or root: not talking to it"
            ),
        ))
    }
}

/// [`check_peer_uid`] on a connected socket (`SO_PEERCRED`).
pub fn check_peer(stream: &UnixStream) -> io::Result<()> {
    let cred = rustix::net::sockopt::socket_peercred(stream)?;
    check_peer_uid(cred.uid.as_raw(), euid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_dir_by_user() {
        assert_eq!(runtime_dir_for(0, None), Path::new("/run/hotsync"));
        assert_eq!(
            runtime_dir_for(1000, Some(Path::new("/run/user/1000"))),
            Path::new("/run/user/1000/hotsync")
        );
        assert_eq!(
            runtime_dir_for(1000, Some(Path::new("relative"))),
            Path::new("/tmp/hotsync-1000")
        );
        assert_eq!(runtime_dir_for(1000, None), Path::new("/tmp/hotsync-1000"));
    }

    #[test]
    fn bare_names_go_in_the_runtime_dir() {
        assert_eq!(resolve(None), runtime_dir().join(DEFAULT_NAME));
        assert_eq!(
            resolve(Some(Path::new("a.sock"))),
            runtime_dir().join("a.sock")
        );
        assert_eq!(
            resolve(Some(Path::new("/srv/x/a.sock"))),
            Path::new("/srv/x/a.sock")
        );
        assert_eq!(resolve(Some(Path::new("./a.sock"))), Path::new("./a.sock"));
    }

    #[test]
    fn only_private_directories_are_accepted() {
        let d = Path::new("/d");
        assert!(check_private(d, true, 1000, 0o40700, 1000).is_ok());
        assert!(check_private(d, true, 0, 0o40755, 1000).is_ok());
        assert!(check_private(d, true, 1000, 0o40750, 1000).is_ok());
        // /tmp: world-writable (sticky or not).
        assert!(check_private(d, true, 0, 0o41777, 1000).is_err());
        assert!(check_private(d, true, 1000, 0o40770, 1000).is_err());
        assert!(check_private(d, true, 1001, 0o40700, 1000).is_err());
        assert!(check_private(d, false, 1000, 0o120777, 1000).is_err());
    }

    #[test]
    fn only_the_same_user_or_root_is_trusted() {
        assert!(check_peer_uid(1000, 1000).is_ok());
        assert!(check_peer_uid(0, 1000).is_ok());
        assert!(check_peer_uid(1001, 1000).is_err());
        assert!(check_peer_uid(1000, 0).is_err());
    }
}
