//! The only `unsafe` of the crate: the scheduling calls that put the
//! configuration thread at the lowest priority (`rustix` has no
//! `sched_setscheduler`). Each is a thin wrapper that checks the result.
#![allow(unsafe_code)]

use std::io;

/// A thread id (`gettid`); 0 names the calling thread.
pub(crate) type Tid = libc::pid_t;

/// The calling thread's id, for changing its priority from another thread.
pub(crate) fn thread_id() -> Tid {
    // SAFETY: gettid takes no argument and cannot fail.
    unsafe { libc::gettid() }
}

/// Puts thread `tid` (0: the caller) under `SCHED_IDLE` (on Linux the
/// policy is per thread): it runs only on CPU time no normal thread wants,
/// and a normal thread that wakes up preempts it at once.
pub(crate) fn set_idle_policy(tid: Tid) -> io::Result<()> {
    set_policy(tid, libc::SCHED_IDLE)
}

/// Puts thread `tid` (0: the caller) back under the normal policy
/// (`SCHED_OTHER`), at its nice value.
pub(crate) fn set_normal_policy(tid: Tid) -> io::Result<()> {
    set_policy(tid, libc::SCHED_OTHER)
}

fn set_policy(tid: Tid, policy: libc::c_int) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `tid` is a plain integer (0 or a thread of this process);
    // `param` is a valid sched_param that outlives the call, which only
    // reads it.
    let ret = unsafe { libc::sched_setscheduler(tid, policy, &param) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets thread `tid`'s nice value (0: the caller; per thread on Linux).
pub(crate) fn set_nice(tid: Tid, nice: i32) -> io::Result<()> {
    let tid = if tid == 0 { thread_id() } else { tid };
    // SAFETY: plain integers; PRIO_PROCESS with a thread id names that
    // thread on Linux.
    let ret = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU time a thread of this process has used, read through its
/// CPU-time clock.
pub(crate) fn thread_cpu_time(thread: libc::pthread_t) -> io::Result<std::time::Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `thread` is a live thread of this process (the caller holds
    // its `JoinHandle` and has not joined it); `clock` is a valid out
    // pointer for the call's duration.
    let ret = unsafe { libc::pthread_getcpuclockid(thread, &mut clock) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock` came from the call above; `ts` is a valid out
    // pointer for the call's duration.
    if unsafe { libc::clock_gettime(clock, &mut ts) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(std::time::Duration::new(secs, nanos))
}

/// Thread `tid`'s scheduling policy (`libc::SCHED_*`; 0: the caller).
#[cfg(test)]
pub(crate) fn policy_of(tid: Tid) -> io::Result<libc::c_int> {
    // SAFETY: a plain integer naming a thread; no pointers.
    let ret = unsafe { libc::sched_getscheduler(tid) };
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
        let before = policy_of(0).expect("policy");
        let inner = std::thread::spawn(|| {
            set_idle_policy(0).expect("SCHED_IDLE needs no privilege");
            policy_of(0).expect("policy")
        })
        .join()
        .expect("thread");
        assert_eq!(inner, libc::SCHED_IDLE);
        assert_eq!(
            policy_of(0).expect("policy"),
            before,
            "other threads keep theirs"
        );
    }

    #[test]
    fn nice_applies_to_the_calling_thread() {
        std::thread::spawn(|| {
            set_nice(0, 19).expect("lowering needs no privilege");
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

    #[test]
    fn another_thread_can_lift_an_idle_thread_back_to_normal() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let idle = std::thread::spawn(move || {
            // At nice 19 first, as the configuration thread does: leaving
            // SCHED_IDLE at that nice needs CAP_SYS_NICE or an RLIMIT_NICE
            // of at least 1.
            set_nice(0, 19).expect("lowering needs no privilege");
            set_idle_policy(0).expect("SCHED_IDLE needs no privilege");
            tx.send(thread_id()).expect("send");
            let _ = done_rx.recv();
        });
        let tid = rx.recv().expect("tid");
        assert_eq!(policy_of(tid).expect("policy"), libc::SCHED_IDLE);
        if let Err(e) = set_normal_policy(tid) {
            // Leaving SCHED_IDLE needs CAP_SYS_NICE or an RLIMIT_NICE that
            // allows the thread's nice value.
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            eprintln!("skipped: leaving SCHED_IDLE is not permitted here ({e})");
            drop(done_tx);
            idle.join().expect("thread");
            return;
        }
        assert_eq!(policy_of(tid).expect("policy"), libc::SCHED_OTHER);
        set_idle_policy(tid).expect("and down again");
        assert_eq!(policy_of(tid).expect("policy"), libc::SCHED_IDLE);
        drop(done_tx);
        idle.join().expect("thread");
    }

    #[test]
    fn another_threads_cpu_time_counts_its_work_only() {
        use std::os::unix::thread::JoinHandleExt;
        const WORK: std::time::Duration = std::time::Duration::from_millis(20);
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let _ = go_rx.recv();
            // SAFETY: pthread_self takes no argument and cannot fail.
            let me = unsafe { libc::pthread_self() };
            let start = thread_cpu_time(me).expect("own clock");
            let mut x = 0u64;
            while thread_cpu_time(me).expect("own clock") - start < WORK {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let _ = done_tx.send(());
            let _ = go_rx.recv();
        });
        let pt = worker.as_pthread_t();
        let idle = thread_cpu_time(pt).expect("clock");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(thread_cpu_time(pt).expect("clock") - idle < std::time::Duration::from_millis(10));
        go_tx.send(()).expect("go");
        done_rx.recv().expect("done");
        assert!(thread_cpu_time(pt).expect("clock") - idle >= WORK);
        drop(go_tx);
        worker.join().expect("thread");
    }
}
