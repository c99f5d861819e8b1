//! Status codes, the per-thread error message, and the panic guard.
//!
//! Every exported call returns a [`hotsync_status`]; on failure it also
//! leaves a message for [`last_message`] on the calling thread. Data-plane
//! calls only ever leave a `&'static CStr` (a `Cell` store, no allocation);
//! control-plane calls may format one.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char};
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a call did. `HOTSYNC_STATUS_OK` is zero; every other value is a
/// failure, with a message from `hotsync_last_error()` on the same thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum hotsync_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument is out of range or not UTF-8.
    InvalidArgument = 2,
    /// The configuration text is invalid or incomplete.
    Config = 3,
    /// An operating-system error: a file could not be read, an address
    /// could not be bound.
    Io = 4,
    /// The request needs an established hot-standby relationship.
    NotEstablished = 5,
    /// A batch sync of this kind is already running.
    AlreadyRunning = 6,
    /// The node refused the request; the message says why.
    Refused = 7,
    /// The node is stopped.
    Stopped = 8,
    /// The session's shard is at capacity (`max_sessions`).
    TableFull = 9,
    /// No such session (update, remove, lookup) or job.
    NotFound = 10,
    /// A bug inside hotsync panicked; the call was abandoned, the process
    /// and the other handles go on. Please report it.
    Panic = 11,
}

impl hotsync_status {
    /// A fixed name for the code, e.g. `"table full"`.
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            hotsync_status::Ok => c"ok",
            hotsync_status::NullArgument => c"null argument",
            hotsync_status::InvalidArgument => c"invalid argument",
            hotsync_status::Config => c"configuration error",
            hotsync_status::Io => c"I/O error",
            hotsync_status::NotEstablished => c"not established",
            hotsync_status::AlreadyRunning => c"already running",
            hotsync_status::Refused => c"refused",
            hotsync_status::Stopped => c"stopped",
            hotsync_status::TableFull => c"table full",
            hotsync_status::NotFound => c"not found",
            hotsync_status::Panic => c"panic",
        }
    }
}

thread_local! {
    /// The last failure's message when it was static (data-plane calls).
    /// Const-initialized and without a destructor: setting it never
    /// allocates, not even on a thread's first call.
    static STATIC_MESSAGE: Cell<Option<&'static CStr>> = const { Cell::new(None) };
    /// The last failure's message when it was formatted (control-plane
    /// calls); used when `STATIC_MESSAGE` is `None`.
    static OWNED_MESSAGE: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records a static message and returns `status`: allocation-free, for the
/// data plane.
#[inline]
pub(crate) fn fail_static(status: hotsync_status, message: &'static CStr) -> hotsync_status {
    STATIC_MESSAGE.with(|m| m.set(Some(message)));
    status
}

/// Records a formatted message and returns `status` (control plane only).
pub(crate) fn fail(status: hotsync_status, message: impl Display) -> hotsync_status {
    let text = message.to_string().replace('\0', "\\0");
    let text = CString::new(text).unwrap_or_default();
    OWNED_MESSAGE.with(|m| *m.borrow_mut() = Some(text));
    STATIC_MESSAGE.with(|m| m.set(None));
    status
}

/// The calling thread's last failure message; `""` if none. Valid until
/// the next failing call on this thread.
pub(crate) fn last_message() -> *const c_char {
    with_last_message(CStr::as_ptr)
}

/// Calls `f` with the calling thread's last failure message (`""` if none).
pub(crate) fn with_last_message<R>(f: impl FnOnce(&CStr) -> R) -> R {
    if let Some(m) = STATIC_MESSAGE.with(Cell::get) {
        return f(m);
    }
    OWNED_MESSAGE.with(|m| f(m.borrow().as_deref().unwrap_or(c"")))
}

/// Runs `f`, turning a panic into `HOTSYNC_STATUS_PANIC`: no unwinding
/// ever reaches a C frame. (The default hook still prints the panic.)
#[inline]
pub(crate) fn guard(f: impl FnOnce() -> hotsync_status) -> hotsync_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(status) => status,
        Err(_) => fail_static(
            hotsync_status::Panic,
            c"internal error: hotsync panicked; the call was abandoned (please report it)",
        ),
    }
}

/// Unwraps a required argument, or fails with `HOTSYNC_STATUS_NULL_ARGUMENT`
/// naming it.
macro_rules! required {
    ($arg:ident) => {
        match $arg {
            Some(v) => v,
            None => {
                return $crate::error::fail_static(
                    $crate::error::hotsync_status::NullArgument,
                    const {
                        match ::std::ffi::CStr::from_bytes_with_nul(
                            concat!("`", stringify!($arg), "` is NULL\0").as_bytes(),
                        ) {
                            Ok(s) => s,
                            Err(_) => panic!("argument name with a NUL"),
                        }
                    },
                );
            }
        }
    };
}
pub(crate) use required;

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> String {
        with_last_message(|m| m.to_string_lossy().into_owned())
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let status = guard(|| panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(status, hotsync_status::Panic);
        assert!(message().contains("panicked"), "{}", message());
    }

    #[test]
    fn the_newest_failure_wins_whichever_kind() {
        assert_eq!(message(), "");
        let _ = fail(hotsync_status::Config, "line 3: bad");
        assert_eq!(message(), "line 3: bad");
        let _ = fail_static(hotsync_status::TableFull, c"full");
        assert_eq!(message(), "full");
        let _ = fail(hotsync_status::Io, "nul\0inside");
        assert_eq!(message(), "nul\\0inside");
    }

    #[test]
    fn required_names_the_argument() {
        fn f(key: Option<&u8>) -> hotsync_status {
            let _k = required!(key);
            hotsync_status::Ok
        }
        assert_eq!(f(Some(&1)), hotsync_status::Ok);
        assert_eq!(f(None), hotsync_status::NullArgument);
        assert_eq!(message(), "`key` is NULL");
    }
}
