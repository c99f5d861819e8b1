//! The coded fields of the messages, typed. Each is a plain integer on the
//! wire (the archived layout, and so [`crate::FORMAT_FINGERPRINT`], do not
//! depend on these enums) and is read back only through the typed accessor
//! on its archived message, which refuses a code the protocol does not
//! define with an [`InvalidCode`] naming the message and the field.

use crate::frame::{Channel, MessageKind};
use crate::messages::{
    ArchivedAck, ArchivedBatchStart, ArchivedClose, ArchivedConfigOp, ArchivedHeartbeat,
    ArchivedHello,
};
use std::fmt;

/// A node's HRP role (`Hello.role`, `Heartbeat.role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Just started: no peer heard yet, not serving.
    Initial,
    /// Serving traffic; its sessions are authoritative.
    Active,
    /// Holding replicated state, ready to take over.
    Standby,
}

impl Role {
    /// Wire encoding.
    pub fn to_u8(self) -> u8 {
        match self {
            Role::Initial => 0,
            Role::Active => 1,
            Role::Standby => 2,
        }
    }

    /// Decoding of a local encoding (unknown values read as `Initial`,
    /// which claims nothing). A peer's role goes through the messages'
    /// typed accessors instead.
    pub fn from_u8(v: u8) -> Role {
        Role::from_wire(v).unwrap_or(Role::Initial)
    }

    /// Wire decoding: `None` for a value the protocol does not define.
    pub fn from_wire(v: u8) -> Option<Role> {
        Some(match v {
            0 => Role::Initial,
            1 => Role::Active,
            2 => Role::Standby,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Initial => "initial",
            Role::Active => "active",
            Role::Standby => "standby",
        })
    }
}

/// What a batch sync carries (`BatchStart.what`), and so what a job
/// synchronizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `hrp sync connection-status`: the session table.
    ConnectionStatus,
    /// `hrp sync config`: the configuration.
    Config,
}

impl JobKind {
    /// Its `BatchStart::what` code.
    pub fn to_wire(self) -> u8 {
        match self {
            JobKind::ConnectionStatus => 0,
            JobKind::Config => 1,
        }
    }

    /// From a `BatchStart::what` code; `None` if undefined.
    pub fn from_wire(what: u8) -> Option<JobKind> {
        match what {
            0 => Some(JobKind::ConnectionStatus),
            1 => Some(JobKind::Config),
            _ => None,
        }
    }

    /// Name as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::ConnectionStatus => "connection-status",
            JobKind::Config => "config",
        }
    }
}

/// What a configuration change does (`ConfigOp.op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigOpKind {
    /// 0: a new item.
    Add,
    /// 1: an item changed.
    Modify,
    /// 2: an item removed.
    Delete,
}

impl ConfigOpKind {
    /// The wire code.
    pub fn to_wire(self) -> u8 {
        match self {
            ConfigOpKind::Add => 0,
            ConfigOpKind::Modify => 1,
            ConfigOpKind::Delete => 2,
        }
    }

    /// From the wire code; `None` if undefined.
    pub fn from_wire(op: u8) -> Option<ConfigOpKind> {
        Some(match op {
            0 => ConfigOpKind::Add,
            1 => ConfigOpKind::Modify,
            2 => ConfigOpKind::Delete,
            _ => return None,
        })
    }
}

/// Why a connection is closed: the `reason` code of a `Close` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// 1: a protocol error (bad frame, unexpected message, timeout...).
    Protocol,
    /// 2: another protocol version or wire format.
    Incompatible,
    /// 3: the pre-shared-key check failed, or one side has no key (or no
    /// encryption key where the other encrypts).
    Authentication,
    /// 4: the two nodes' settings cannot pair (shard count, node id).
    Configuration,
}

impl CloseReason {
    /// The wire code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::Protocol => 1,
            CloseReason::Incompatible => 2,
            CloseReason::Authentication => 3,
            CloseReason::Configuration => 4,
        }
    }

    /// From the wire code; `None` for a code the protocol does not define.
    pub fn from_code(code: u16) -> Option<CloseReason> {
        Some(match code {
            1 => CloseReason::Protocol,
            2 => CloseReason::Incompatible,
            3 => CloseReason::Authentication,
            4 => CloseReason::Configuration,
            _ => return None,
        })
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            CloseReason::Protocol => "protocol error",
            CloseReason::Incompatible => "incompatible version or format",
            CloseReason::Authentication => "authentication",
            CloseReason::Configuration => "settings do not pair",
        };
        write!(f, "reason {}: {name}", self.code())
    }
}

/// A message field checked on receipt against the values it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `Hello.role`, `Heartbeat.role`.
    Role,
    /// `BatchStart.what`.
    BatchKind,
    /// `ConfigOp.op`.
    ConfigOp,
    /// `Ack.channel`: the channel of the connection it arrives on.
    AckChannel,
    /// `Close.reason`.
    CloseReason,
}

impl Field {
    /// The error counter of a bad value in this field.
    pub fn error_name(self) -> &'static str {
        match self {
            Field::Role => "invalid_role",
            Field::BatchKind => "invalid_batch_kind",
            Field::ConfigOp => "invalid_config_op",
            Field::AckChannel => "invalid_ack_channel",
            Field::CloseReason => "invalid_close_reason",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Role => "role",
            Field::BatchKind => "batch kind (what)",
            Field::ConfigOp => "config op",
            Field::AckChannel => "ack channel",
            Field::CloseReason => "close reason",
        })
    }
}

/// A coded field holds a value the protocol does not define (a role of 9,
/// a batch kind of 7, an acknowledgement for channel 77...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} carries {field} {value}, which is not defined")]
pub struct InvalidCode {
    /// The message that carried it.
    pub kind: MessageKind,
    /// Which field.
    pub field: Field,
    /// The value received.
    pub value: u32,
}

impl InvalidCode {
    fn new(kind: MessageKind, field: Field, value: impl Into<u32>) -> Self {
        Self {
            kind,
            field,
            value: value.into(),
        }
    }
}

impl ArchivedHello {
    /// The sender's role.
    pub fn role(&self) -> Result<Role, InvalidCode> {
        Role::from_wire(self.role).ok_or(InvalidCode::new(
            MessageKind::Hello,
            Field::Role,
            self.role,
        ))
    }
}

impl ArchivedHeartbeat {
    /// The sender's role.
    pub fn role(&self) -> Result<Role, InvalidCode> {
        Role::from_wire(self.role).ok_or(InvalidCode::new(
            MessageKind::Heartbeat,
            Field::Role,
            self.role,
        ))
    }
}

impl ArchivedAck {
    /// The channel acknowledged, which must be `expected`: the channel of
    /// the connection the acknowledgement arrived on.
    pub fn channel(&self, expected: Channel) -> Result<Channel, InvalidCode> {
        match Channel::from_u8(self.channel) {
            Some(c) if c == expected => Ok(c),
            _ => Err(InvalidCode::new(
                MessageKind::Ack,
                Field::AckChannel,
                self.channel,
            )),
        }
    }
}

impl ArchivedBatchStart {
    /// What the batch carries.
    pub fn what(&self) -> Result<JobKind, InvalidCode> {
        JobKind::from_wire(self.what).ok_or(InvalidCode::new(
            MessageKind::BatchStart,
            Field::BatchKind,
            self.what,
        ))
    }
}

impl ArchivedConfigOp {
    /// What the change does.
    pub fn op(&self) -> Result<ConfigOpKind, InvalidCode> {
        ConfigOpKind::from_wire(self.op).ok_or(InvalidCode::new(
            MessageKind::ConfigOp,
            Field::ConfigOp,
            self.op,
        ))
    }
}

impl ArchivedClose {
    /// Why the sender closes.
    pub fn reason(&self) -> Result<CloseReason, InvalidCode> {
        let code = self.reason.to_native();
        CloseReason::from_code(code).ok_or(InvalidCode::new(
            MessageKind::Close,
            Field::CloseReason,
            code,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ack, BatchStart, Close, ConfigOp, Heartbeat, MessageRef, WireMessage};

    /// Encodes `msg` and reads it back in place, as a receiver does.
    fn archived<M: WireMessage>(msg: &M, check: impl FnOnce(MessageRef<'_>)) {
        let mut out = Vec::new();
        let mut enc = crate::FrameEncoder::new(crate::DEFAULT_MAX_FRAME_LEN);
        // Every message here may travel on the config channel.
        enc.encode(Channel::Config, 1, msg, &mut out).unwrap();
        let mut dec = crate::FrameDecoder::new(crate::DEFAULT_MAX_FRAME_LEN);
        dec.feed(&out).unwrap();
        let frame = dec.next_frame().unwrap().unwrap();
        check(frame.message().unwrap());
    }

    #[test]
    fn every_defined_code_reads_back_as_itself() {
        for role in [Role::Initial, Role::Active, Role::Standby] {
            let hb = Heartbeat {
                role: role.to_u8(),
                ..Heartbeat::default()
            };
            archived(&hb, |m| match m {
                MessageRef::Heartbeat(h) => assert_eq!(h.role(), Ok(role)),
                other => panic!("{:?}", other.kind()),
            });
        }
        for kind in [JobKind::ConnectionStatus, JobKind::Config] {
            let b = BatchStart {
                what: kind.to_wire(),
                ..BatchStart::default()
            };
            archived(&b, |m| match m {
                MessageRef::BatchStart(b) => assert_eq!(b.what(), Ok(kind)),
                other => panic!("{:?}", other.kind()),
            });
        }
        for op in [
            ConfigOpKind::Add,
            ConfigOpKind::Modify,
            ConfigOpKind::Delete,
        ] {
            let c = ConfigOp {
                op: op.to_wire(),
                ..ConfigOp::default()
            };
            archived(&c, |m| match m {
                MessageRef::ConfigOp(c) => assert_eq!(c.op(), Ok(op)),
                other => panic!("{:?}", other.kind()),
            });
        }
        let ack = Ack {
            channel: Channel::Config as u8,
            seq: 3,
        };
        archived(&ack, |m| match m {
            MessageRef::Ack(a) => assert_eq!(a.channel(Channel::Config), Ok(Channel::Config)),
            other => panic!("{:?}", other.kind()),
        });
    }

    #[test]
    fn an_undefined_code_is_refused_naming_message_field_and_value() {
        let hb = Heartbeat {
            role: 9,
            ..Heartbeat::default()
        };
        archived(&hb, |m| match m {
            MessageRef::Heartbeat(h) => assert_eq!(
                h.role(),
                Err(InvalidCode::new(MessageKind::Heartbeat, Field::Role, 9u8))
            ),
            other => panic!("{:?}", other.kind()),
        });
        let b = BatchStart {
            what: 7,
            ..BatchStart::default()
        };
        archived(&b, |m| match m {
            MessageRef::BatchStart(b) => assert_eq!(b.what().unwrap_err().field, Field::BatchKind),
            other => panic!("{:?}", other.kind()),
        });
        let c = ConfigOp {
            op: 3,
            ..ConfigOp::default()
        };
        archived(&c, |m| match m {
            MessageRef::ConfigOp(c) => assert_eq!(c.op().unwrap_err().value, 3),
            other => panic!("{:?}", other.kind()),
        });
        let close = Close {
            reason: 999,
            detail: String::new(),
        };
        archived(&close, |m| match m {
            MessageRef::Close(c) => {
                let e = c.reason().unwrap_err();
                assert_eq!((e.field, e.value), (Field::CloseReason, 999));
                assert_eq!(e.field.error_name(), "invalid_close_reason");
            }
            other => panic!("{:?}", other.kind()),
        });
        // Undefined, and defined but another connection's: both refused.
        for channel in [77, Channel::Session as u8] {
            let ack = Ack { channel, seq: 1 };
            archived(&ack, |m| match m {
                MessageRef::Ack(a) => assert_eq!(
                    a.channel(Channel::Config).unwrap_err(),
                    InvalidCode::new(MessageKind::Ack, Field::AckChannel, channel)
                ),
                other => panic!("{:?}", other.kind()),
            });
        }
    }
}
