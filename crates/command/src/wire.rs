//! Bounds-checked reading and writing of the big-endian binary encodings in this crate.
//!
//! Every read checks the remaining length first, so no input can make decoding panic.

use core::fmt;

/// Why bytes from the network do not decode. The bytes are malformed: a broken or
/// hostile sender, or a relay that changed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends before the structure does.
    Truncated,
    /// Bytes remain after a complete structure.
    TrailingBytes,
    /// The version byte names an encoding this build does not implement.
    UnsupportedVersion(u8),
    /// A tag byte names no known command, mode or variant.
    UnknownTag(u8),
    /// A field is outside the values its encoding allows.
    InvalidField(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input is truncated"),
            Self::TrailingBytes => f.write_str("input has trailing bytes"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported encoding version {v}"),
            Self::UnknownTag(t) => write!(f, "unknown tag 0x{t:02x}"),
            Self::InvalidField(name) => write!(f, "invalid value in field `{name}`"),
        }
    }
}

/// The caller's output buffer is too small. Nothing useful was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the encoding needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output buffer too small: {} bytes needed", self.needed)
    }
}

/// Cursor over input bytes.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Ends decoding: every input byte must have been consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Cursor over an output buffer. The caller checks the total size first with
/// [`Writer::new`], so the individual writes cannot run out of room.
pub(crate) struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing `needed` bytes into `out`, or returns the error if `out` is shorter.
    pub(crate) fn new(out: &'a mut [u8], needed: usize) -> Result<Self, BufferTooSmall> {
        if out.len() < needed {
            return Err(BufferTooSmall { needed });
        }
        Ok(Self { out, pos: 0 })
    }

    pub(crate) fn bytes(&mut self, data: &[u8]) {
        // The caller sized the buffer with the exact encoded length in `new`, so the
        // range is in bounds whenever the length computation matches the writes; the
        // tests check that for every command type.
        self.out[self.pos..self.pos + data.len()].copy_from_slice(data);
        self.pos += data.len();
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes(&[value]);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.bytes(&value.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes(&value.to_be_bytes());
    }

    /// Bytes written so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}
