//! Frame layout on the wire. Every frame starts with one type byte: the protocol version
//! in the high nibble and the message type in the low nibble.
//!
//! ```text
//! initiation (69 bytes), device to cloud:
//!   0      type 0x11 (version 1, initiation)
//!   1..5   key id, u32 little-endian: selects the device's static key and PSK
//!   5..9   initiation counter, u32 little-endian: strictly increasing per device
//!   9..41  initiator ephemeral public key (Noise `e`)
//!  41..57  tag of the empty Noise payload
//!  57..69  mac1: keyed BLAKE2s over bytes 0..57, truncated to 12 bytes
//!
//! response (49 bytes), cloud to device:
//!   0      type 0x12 (version 1, response)
//!   1..33  responder ephemeral public key (Noise `e`)
//!  33..49  tag of the empty Noise payload
//!
//! transport (21 bytes + ciphertext), either direction:
//!   0      type 0x14 or 0x15 (version 1, transport, low bit = key phase)
//!   1..5   low 32 bits of the 64-bit message counter, little-endian
//!   5..n   ciphertext of a padded record
//!   n..+16 Poly1305 tag
//! ```

use crate::crypto::{DH_LEN, TAG_LEN};

/// Protocol version this implementation speaks.
pub const VERSION: u8 = 1;

/// Message type of an initiation, in the low nibble of the type byte.
pub const TYPE_INITIATION: u8 = 0x1;
/// Message type of a response.
pub const TYPE_RESPONSE: u8 = 0x2;
/// Message type of a transport frame with key phase 0; phase 1 sets the lowest bit.
pub const TYPE_TRANSPORT: u8 = 0x4;

/// Length of the mac1 pre-filter MAC on an initiation. 96 bits make a forged
/// initiation pass with probability 2^-96, enough for a filter that only saves work.
pub const MAC1_LEN: usize = 12;
/// Length of an initiation frame.
pub const INITIATION_LEN: usize = 1 + 4 + 4 + DH_LEN + TAG_LEN + MAC1_LEN;
/// Offset of mac1 in an initiation frame: the MAC covers every byte before it.
pub const INITIATION_MAC1_OFFSET: usize = INITIATION_LEN - MAC1_LEN;
/// Length of a response frame.
pub const RESPONSE_LEN: usize = 1 + DH_LEN + TAG_LEN;
/// Bytes a transport frame adds to its plaintext record: type, counter and tag.
pub const TRANSPORT_OVERHEAD: usize = TRANSPORT_HEADER_LEN + TAG_LEN;
/// Length of the transport header: type byte and the truncated counter.
pub const TRANSPORT_HEADER_LEN: usize = 1 + 4;

/// Largest padded record a transport frame may carry.
pub const MAX_RECORD_LEN: usize = 1024;
/// Largest frame of any type.
pub const MAX_FRAME_LEN: usize = TRANSPORT_OVERHEAD + MAX_RECORD_LEN;

const _: () = assert!(INITIATION_LEN == 69);
const _: () = assert!(RESPONSE_LEN == 49);
const _: () = assert!(INITIATION_LEN + RESPONSE_LEN <= 120);
const _: () = assert!(TRANSPORT_OVERHEAD <= 24);
const _: () = assert!(INITIATION_LEN <= MAX_FRAME_LEN);

/// Builds the type byte for `message_type`.
pub const fn type_byte(message_type: u8) -> u8 {
    (VERSION << 4) | message_type
}

/// Kind of a frame, read from its type byte alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A handshake initiation.
    Initiation,
    /// A handshake response.
    Response,
    /// A transport frame under the key of the given phase (0 or 1).
    Transport {
        /// Key phase bit.
        phase: u8,
    },
}

/// Why a frame could not be parsed. Every variant is the sender's (or the relay's)
/// fault: the bytes are not a frame of this protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The frame has no bytes.
    Empty,
    /// The version nibble names a version this implementation does not speak.
    UnsupportedVersion {
        /// Version found in the type byte.
        version: u8,
    },
    /// The message type nibble is not assigned.
    UnknownType {
        /// Type byte found.
        type_byte: u8,
    },
    /// The frame length does not fit its type.
    BadLength {
        /// Length found.
        len: usize,
    },
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty frame"),
            ParseError::UnsupportedVersion { version } => {
                write!(f, "unsupported protocol version {version}")
            }
            ParseError::UnknownType { type_byte } => {
                write!(f, "unknown frame type 0x{type_byte:02x}")
            }
            ParseError::BadLength { len } => write!(f, "frame length {len} invalid for its type"),
        }
    }
}

/// Reads the kind of `frame` and checks its length against that kind.
pub fn frame_kind(frame: &[u8]) -> Result<FrameKind, ParseError> {
    let Some(&first) = frame.first() else {
        return Err(ParseError::Empty);
    };
    let version = first >> 4;
    if version != VERSION {
        return Err(ParseError::UnsupportedVersion { version });
    }
    let (kind, length_ok) = match first & 0x0f {
        TYPE_INITIATION => (FrameKind::Initiation, frame.len() == INITIATION_LEN),
        TYPE_RESPONSE => (FrameKind::Response, frame.len() == RESPONSE_LEN),
        t if t & !1 == TYPE_TRANSPORT => (
            FrameKind::Transport { phase: t & 1 },
            frame.len() >= TRANSPORT_OVERHEAD && frame.len() <= MAX_FRAME_LEN,
        ),
        _ => return Err(ParseError::UnknownType { type_byte: first }),
    };
    if !length_ok {
        return Err(ParseError::BadLength { len: frame.len() });
    }
    Ok(kind)
}

/// Cleartext header of an initiation. Nothing in it is authenticated until mac1 and
/// then the Noise payload tag verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitiationHeader {
    /// Key id the device claims.
    pub key_id: u32,
    /// Initiation counter the device claims.
    pub counter: u32,
}

/// Parses the cleartext header of an initiation frame.
pub fn parse_initiation(frame: &[u8]) -> Result<InitiationHeader, ParseError> {
    if frame_kind(frame)? != FrameKind::Initiation {
        return Err(ParseError::UnknownType {
            type_byte: frame[0],
        });
    }
    Ok(InitiationHeader {
        key_id: read_u32(frame, 1),
        counter: read_u32(frame, 5),
    })
}

/// Reads the truncated counter of a transport frame whose kind was checked.
pub(crate) fn transport_counter(frame: &[u8]) -> u32 {
    read_u32(frame, 1)
}

/// Reads a little-endian u32 at `offset`; the caller checked the frame length.
fn read_u32(frame: &[u8], offset: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&frame[offset..offset + 4]);
    u32::from_le_bytes(bytes)
}
