//! Errors of the channel, sorted by who is to blame.

use crate::fragment::FragmentError;
use crate::noise::NoiseError;
use crate::replay::ReplayError;
use crate::wire::ParseError;

/// Who caused an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The bytes are not a valid frame: sent by a broken peer or changed by the relay.
    Malformed,
    /// The bytes parse but fail an authentication or protocol check: a replay, a forged
    /// or modified frame, or a peer that breaks the protocol.
    Peer,
    /// The caller used the API wrongly (a buffer too small, a call in the wrong state).
    Caller,
    /// A limit of this side was reached (keys too old, too many messages) and the caller
    /// must start a new handshake.
    Exhausted,
}

/// An error of the channel core. No variant carries secret or payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The frame does not parse.
    Parse(ParseError),
    /// A fragment was rejected by the reassembler, or fragmenting failed.
    Fragment(FragmentError),
    /// The initiation's key id is not registered (or revoked) at the responder.
    UnknownKeyId {
        /// Key id from the frame.
        key_id: u32,
    },
    /// The initiation's mac1 does not verify under the key id's PSK.
    Mac1Mismatch,
    /// The initiation counter is not larger than the last one accepted: a replayed or
    /// stale initiation.
    StaleInitiation {
        /// Counter in the frame.
        counter: u32,
        /// Largest counter accepted before.
        last: u32,
    },
    /// A handshake message failed: wrong keys or a modified message.
    Handshake(NoiseError),
    /// A transport frame's counter was seen before or is older than the replay window.
    Replay(ReplayError),
    /// A transport frame's tag did not verify.
    TransportDecrypt,
    /// A transport frame names a key phase with no session.
    NoSessionForPhase {
        /// Key phase from the frame.
        phase: u8,
    },
    /// A frame arrived that this side does not expect in its current state.
    UnexpectedFrame,
    /// The decrypted record is not well formed although its tag verified: the peer is
    /// broken.
    MalformedRecord,
    /// The peer acknowledged a sequence number this side never sent.
    AckBeyondSent {
        /// Acknowledged value received.
        acked: u64,
        /// Next sequence number this side would send.
        next: u64,
    },
    /// No established session: the caller must complete a handshake first.
    NotConnected,
    /// A buffer passed in is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The application payload exceeds the largest record.
    PayloadTooLarge {
        /// Payload length given.
        len: usize,
        /// Largest payload accepted.
        max: usize,
    },
    /// The session's keys reached their message or age limit; a new handshake is needed.
    KeysExhausted,
    /// The retransmission queue is full; the caller must wait for acknowledgements.
    QueueFull,
    /// The device used every initiation counter of its key id; it needs a new key id.
    InitiationCountersExhausted,
}

impl Error {
    /// Returns who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Error::Parse(_) => Blame::Malformed,
            Error::Fragment(error) => match error {
                FragmentError::MtuOutOfRange { .. }
                | FragmentError::FrameTooLarge { .. }
                | FragmentError::EmptyFrame
                | FragmentError::BufferTooSmall { .. } => Blame::Caller,
                _ => Blame::Malformed,
            },
            Error::UnknownKeyId { .. }
            | Error::Mac1Mismatch
            | Error::StaleInitiation { .. }
            | Error::Handshake(_)
            | Error::Replay(_)
            | Error::TransportDecrypt
            | Error::NoSessionForPhase { .. }
            | Error::UnexpectedFrame
            | Error::MalformedRecord
            | Error::AckBeyondSent { .. } => Blame::Peer,
            Error::NotConnected
            | Error::BufferTooSmall { .. }
            | Error::PayloadTooLarge { .. }
            | Error::QueueFull => Blame::Caller,
            Error::KeysExhausted | Error::InitiationCountersExhausted => Blame::Exhausted,
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Parse(error) => write!(f, "malformed frame: {error}"),
            Error::Fragment(error) => write!(f, "fragment rejected: {error}"),
            Error::UnknownKeyId { key_id } => {
                write!(f, "initiation for unknown or revoked key id {key_id}")
            }
            Error::Mac1Mismatch => f.write_str("initiation mac1 invalid"),
            Error::StaleInitiation { counter, last } => write!(
                f,
                "stale initiation: counter {counter} is not above the last accepted {last}"
            ),
            Error::Handshake(error) => write!(f, "handshake failed: {error:?}"),
            Error::Replay(error) => write!(f, "transport frame rejected: {error}"),
            Error::TransportDecrypt => f.write_str("transport frame failed authentication"),
            Error::NoSessionForPhase { phase } => {
                write!(f, "no session for key phase {phase}")
            }
            Error::UnexpectedFrame => f.write_str("frame not expected in this state"),
            Error::MalformedRecord => f.write_str("authenticated record is malformed"),
            Error::AckBeyondSent { acked, next } => write!(
                f,
                "peer acknowledged up to {acked} but only sequence numbers below {next} were sent"
            ),
            Error::NotConnected => f.write_str("no established session; start a handshake"),
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            Error::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the maximum of {max}")
            }
            Error::KeysExhausted => {
                f.write_str("session keys reached their limit; start a new handshake")
            }
            Error::QueueFull => f.write_str("retransmission queue full; wait for acknowledgements"),
            Error::InitiationCountersExhausted => f.write_str(
                "every handshake initiation counter of this key id is used; provision the device again",
            ),
        }
    }
}

impl From<ParseError> for Error {
    fn from(error: ParseError) -> Self {
        Error::Parse(error)
    }
}

impl From<NoiseError> for Error {
    fn from(error: NoiseError) -> Self {
        Error::Handshake(error)
    }
}

impl From<ReplayError> for Error {
    fn from(error: ReplayError) -> Self {
        Error::Replay(error)
    }
}

impl From<FragmentError> for Error {
    fn from(error: FragmentError) -> Self {
        Error::Fragment(error)
    }
}
