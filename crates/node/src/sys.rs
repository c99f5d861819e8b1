//! The only `unsafe` of the crate: the scheduling calls that put the
//! configuration thread at the lowest priority (`rustix` has no
//! `sched_setscheduler`). Each is a thin wrapper that checks the result.
#![allow(unsafe_code)]

use std::io;

/// Puts the calling thread under `SCHED_IDLE` (on Linux the policy is per
/// thread): it runs only on CPU time no normal thread wants, and a normal
/// thread that wakes up preempts it at once.
pub(crate) fn set_idle_policy() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 names the calling thread; `param` is a valid
    // sched_param that outlives the call, which only reads it.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the calling thread's nice value (per thread on Linux).
pub(crate) fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid takes no argument and cannot fail.
    let tid = unsafe { libc::gettid() };
    // SAFETY: plain integers; PRIO_PROCESS with a thread id names that
    // thread on Linux.
    let ret = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's scheduling policy (`libc::SCHED_*`).
#[cfg(test)]
pub(crate) fn policy() -> io::Result<libc::c_int> {
    // SAFETY: pid 0 names the calling thread; no pointers.
    let ret = unsafe { libc::sched_getscheduler(0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_policy_applies_to_the_calling_thread_only() {
        let before = policy().expect("policy");
        let inner = std::thread::spawn(|| {
            set_idle_policy().expect("SCHED_IDLE needs no privilege");
            policy().expect("policy")
        })
        .join()
        .expect("thread");
        assert_eq!(inner, libc::SCHED_IDLE);
        assert_eq!(
            policy().expect("policy"),
            before,
            "other threads keep theirs"
        );
    }

    #[test]
    fn nice_applies_to_the_calling_thread() {
        std::thread::spawn(|| {
            set_nice(19).expect("lowering needs no privilege");
            // Read back through procfs: field 19 (nice) of the thread's stat.
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
            let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
            let nice: i32 = after_comm
                .split(' ')
                .nth(16)
                .expect("nice field")
                .parse()
                .expect("number");
            assert_eq!(nice, 19);
        })
        .join()
        .expect("thread");
    }
}
