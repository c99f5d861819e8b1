//! Netlink framing: the messages of a datagram and the attributes of a
//! message, borrowed from the receive buffer, and the checked reads of an
//! attribute's value. Every length is checked here, once, so the layers
//! above never index past a buffer.

use crate::consts::*;

/// Why kernel bytes were refused. The message is skipped and counted; a
/// framing error ([`CodecError::Truncated`] of a netlink header) abandons
/// the rest of the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A header or a length runs past the end of its buffer.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// An attribute's value does not have its type's size.
    #[error("attribute {0} has length {1}")]
    BadLength(&'static str, usize),
    /// The message's family is neither `AF_INET` nor `AF_INET6`.
    #[error("unsupported address family {0}")]
    UnsupportedFamily(u8),
    /// A required attribute is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An address of the other family than the message's.
    #[error("address of another family than the message")]
    FamilyMismatch,
}

impl CodecError {
    /// A stable short label, used as a counter key.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Truncated(_) => "truncated",
            Self::BadLength(..) => "bad_length",
            Self::UnsupportedFamily(_) => "unsupported_family",
            Self::Missing(_) => "missing_attribute",
            Self::FamilyMismatch => "family_mismatch",
        }
    }
}

pub(super) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message of a datagram, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`: for an event, the port id of the socket whose request
    /// caused it (0 when the kernel itself did).
    pub pid: u32,
    /// Everything after the header.
    pub payload: &'a [u8],
}

impl NlMsg<'_> {
    /// For `NLMSG_ERROR`: the error number (negative errno, 0 for an ack)
    /// and the sequence number of the request it answers.
    pub fn error(&self) -> Result<(i32, u32), CodecError> {
        let p = self.payload;
        if p.len() < 4 + NLMSG_HDRLEN {
            return Err(CodecError::Truncated("nlmsgerr"));
        }
        let errno = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
        let seq = u32::from_ne_bytes([p[12], p[13], p[14], p[15]]);
        Ok((errno, seq))
    }

    /// The ctnetlink message type, `None` for another subsystem.
    pub fn ct_type(&self) -> Option<u16> {
        (self.ty >> 8 == NFNL_SUBSYS_CTNETLINK).then_some(self.ty & 0xff)
    }
}

/// The netlink messages of one received datagram.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    /// Iterates `buf`, which holds whole messages as `recv` returned them.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NlMsg<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let bad = |s: &mut Self| {
            s.rest = &[];
            Some(Err(CodecError::Truncated("netlink message")))
        };
        if b.len() < NLMSG_HDRLEN {
            return bad(self);
        }
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return bad(self);
        }
        let msg = NlMsg {
            ty: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            pid: u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
            payload: &b[NLMSG_HDRLEN..len],
        };
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok(msg))
    }
}

/// The attributes of one level, borrowed: `(type without flag bits, value)`.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// Iterates the attributes in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest;
        // Fewer than a header's bytes is trailing padding.
        if b.len() < NLA_HDRLEN {
            self.rest = &[];
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > b.len() {
            self.rest = &[];
            return Some(Err(CodecError::Truncated("attribute")));
        }
        let value = &b[NLA_HDRLEN..len];
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok((ty, value)))
    }
}

pub(super) fn exact<const N: usize>(name: &'static str, v: &[u8]) -> Result<[u8; N], CodecError> {
    v.try_into()
        .map_err(|_| CodecError::BadLength(name, v.len()))
}

pub(super) fn be16(name: &'static str, v: &[u8]) -> Result<u16, CodecError> {
    exact::<2>(name, v).map(u16::from_be_bytes)
}

pub(super) fn be32(name: &'static str, v: &[u8]) -> Result<u32, CodecError> {
    exact::<4>(name, v).map(u32::from_be_bytes)
}

pub(super) fn be64(name: &'static str, v: &[u8]) -> Result<u64, CodecError> {
    exact::<8>(name, v).map(u64::from_be_bytes)
}

pub(super) fn byte(name: &'static str, v: &[u8]) -> Result<u8, CodecError> {
    exact::<1>(name, v).map(|[b]| b)
}
