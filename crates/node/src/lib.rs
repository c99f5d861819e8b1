//! Drives the protocol over mio sockets; the embedding API.
