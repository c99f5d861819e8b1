//! The only `unsafe` of the crate: the netlink socket system calls and
//! `setns`. Each call is a thin wrapper that checks the return value and
//! turns it into an `io::Result`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new `AF_NETLINK` datagram socket of `protocol`, close-on-exec.
pub fn netlink_socket(protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new
    // descriptor that nothing else owns.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    })?;
    // SAFETY: `fd` was just returned by socket() and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds to the kernel-assigned port id with the multicast `groups` bitmask
/// and returns the port id the kernel chose.
pub fn bind(fd: &OwnedFd, groups: u32) -> io::Result<u32> {
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_nl of `len` bytes for the call.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            len,
        )
    })?;
    let mut out_len = len;
    // SAFETY: `addr` and `out_len` are valid for writes of `len` bytes.
    check(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&raw mut addr).cast::<libc::sockaddr>(),
            &mut out_len,
        )
    })?;
    Ok(addr.nl_pid)
}

/// `setsockopt` with an `int` value.
pub fn set_int_opt(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the pointer is to a live c_int and the length is its size.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sends one datagram to the kernel (port 0).
pub fn send(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, valid for the call.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast::<libc::c_void>(),
            buf.len(),
            0,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Receives one datagram into `buf`; `Ok(None)` on a timeout
/// (`SO_RCVTIMEO`) or when `nonblocking` and nothing is queued.
pub fn recv(fd: &OwnedFd, buf: &mut [u8], nonblocking: bool) -> io::Result<Option<usize>> {
    let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: the pointer and length describe `buf`, valid for writes.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
            flags,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ok(None),
            io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(n as usize))
}

/// Sets a receive timeout so a blocked `recv` returns to check for stop.
pub fn set_recv_timeout(fd: &OwnedFd, micros: i64) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: (micros / 1_000_000) as libc::time_t,
        tv_usec: (micros % 1_000_000) as libc::suseconds_t,
    };
    // SAFETY: the pointer is to a live timeval and the length is its size.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast::<libc::c_void>(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Moves the calling thread into the network namespace open at `ns`.
pub fn setns_net(ns: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns() takes a descriptor and a flag; no memory is passed.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}
