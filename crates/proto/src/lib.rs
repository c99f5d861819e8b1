//! The sync protocol as a sans-IO state machine.
