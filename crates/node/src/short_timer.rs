//! Sub-millisecond deadlines the event loop can be woken from early.
//!
//! epoll counts its timeout in whole milliseconds (mio rounds up), too
//! coarse for the incremental coalescing window (100 µs). The loop used to
//! wait such a deadline out with `thread::sleep`, blind to its sockets and
//! to the data plane's signal: a deadline 0.9 ms away (the aging tick) held
//! the next batch back that long. A timerfd registered with the poll keeps
//! the nanosecond deadline and lets any other readiness end the wait.

use mio::{Interest, Registry, Token};
use std::io;
use std::time::Instant;

/// A one-shot timer whose expiry is a readiness event of the poll.
pub(crate) struct ShortTimer {
    /// `None` when no timerfd could be had (a seccomp filter without
    /// `@timer`, no file descriptor left): the loop then sleeps instead.
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
    /// The deadline armed now, if any (re-arming the same one is skipped:
    /// one syscall per new deadline, not per loop turn).
    armed: Option<Instant>,
}

#[cfg(target_os = "linux")]
impl ShortTimer {
    /// A timer registered with `registry` under `token`; without one (see
    /// `fd`) every [`Self::arm`] fails and the caller sleeps.
    pub(crate) fn new(registry: &Registry, token: Token) -> Self {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        use std::os::fd::AsRawFd;
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(io::Error::from)
        .and_then(|fd| {
            registry.register(
                &mut mio::unix::SourceFd(&fd.as_raw_fd()),
                token,
                Interest::READABLE,
            )?;
            Ok(fd)
        });
        let fd = match fd {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "no timerfd: sub-millisecond waits (the incremental coalescing window) sleep, deaf to the sockets meanwhile"
                );
                None
            }
        };
        Self { fd, armed: None }
    }

    /// Arms the timer to fire at `at` (`now` is the caller's clock).
    pub(crate) fn arm(&mut self, at: Instant, now: Instant) -> io::Result<()> {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
        let Some(fd) = &self.fd else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        if self.armed == Some(at) {
            return Ok(());
        }
        // A zero value disarms a timerfd: a deadline already due fires in
        // one nanosecond instead.
        let d = at
            .saturating_duration_since(now)
            .max(std::time::Duration::from_nanos(1));
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            },
        };
        timerfd_settime(fd, TimerfdTimerFlags::empty(), &spec)?;
        self.armed = Some(at);
        Ok(())
    }

    /// The timer fired: consume the expiry (the fd is edge-triggered).
    pub(crate) fn fired(&mut self) {
        if let Some(fd) = &self.fd {
            let mut count = [0u8; 8];
            // WouldBlock (already consumed) is fine.
            let _ = rustix::io::read(fd, &mut count);
        }
        self.armed = None;
    }
}

#[cfg(not(target_os = "linux"))]
impl ShortTimer {
    pub(crate) fn new(_: &Registry, _: Token) -> Self {
        Self { armed: None }
    }

    /// No timerfd here: the caller falls back to a short sleep.
    pub(crate) fn arm(&mut self, _: Instant, _: Instant) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn fired(&mut self) {
        self.armed = None;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    /// The poll wakes at the armed sub-millisecond deadline, not at the
    /// next whole millisecond, and a re-armed timer fires again.
    #[test]
    fn fires_at_a_sub_millisecond_deadline_and_rearms() {
        let mut poll = Poll::new().expect("poll");
        let mut t = ShortTimer::new(poll.registry(), Token(9));
        let mut events = Events::with_capacity(4);
        for _ in 0..2 {
            let now = Instant::now();
            t.arm(now + Duration::from_micros(200), now).expect("arm");
            // A wait far longer than the deadline: only the timer ends it.
            poll.poll(&mut events, Some(Duration::from_secs(10)))
                .expect("poll");
            assert!(
                events.iter().any(|e| e.token() == Token(9)),
                "woken by the timer"
            );
            assert!(now.elapsed() >= Duration::from_micros(200));
            t.fired();
        }
        // Nothing armed: no event.
        poll.poll(&mut events, Some(Duration::from_millis(5)))
            .expect("poll");
        assert!(events.is_empty());
    }
}
