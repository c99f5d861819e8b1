//! Frames and rkyv-archived messages between two hotsync nodes; no I/O.
