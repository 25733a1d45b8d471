//! Records inside transport frames: sequence numbers, cumulative acknowledgements and
//! padding to size buckets.
//!
//! ```text
//! every record:
//!   0      kind: 0x01 data, 0x02 acknowledgement (also the heartbeat)
//!   1..9   ack, u64 LE: the next sequence number the sender expects, so every number
//!          below it was received and durably handled
//! data records only:
//!   9..17  sequence number of this message, u64 LE
//!  17..25  oldest, u64 LE: the lowest sequence number the sender still holds for
//!          retransmission; numbers below it were acknowledged or given up
//!  25..27  payload length, u16 LE
//!  27..    payload
//! then zero bytes up to the bucket size
//! ```
//!
//! The bucket sizes hide the type of a message from the relay: a glucose reading, an
//! acknowledgement and a small therapy command all travel as 64-byte records.

use crate::error::Error;

/// Record sizes after padding, in bytes.
pub const BUCKETS: [usize; 3] = [64, 256, 1024];
/// Kind byte of a data record.
const KIND_DATA: u8 = 0x01;
/// Kind byte of an acknowledgement record.
const KIND_ACK: u8 = 0x02;
/// Header length of an acknowledgement record.
const ACK_HEADER_LEN: usize = 9;
/// Header length of a data record.
pub const DATA_HEADER_LEN: usize = 27;
/// Largest payload of one data record.
pub const MAX_PAYLOAD_LEN: usize = BUCKETS[BUCKETS.len() - 1] - DATA_HEADER_LEN;

const _: () = assert!(BUCKETS[BUCKETS.len() - 1] == crate::wire::MAX_RECORD_LEN);
const _: () = assert!(MAX_PAYLOAD_LEN <= u16::MAX as usize);

/// Returns the padded size for `len` bytes of record content, if one bucket fits.
pub fn bucket_for(len: usize) -> Option<usize> {
    BUCKETS.iter().copied().find(|&bucket| bucket >= len)
}

/// A record decoded from a transport frame's plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// An acknowledgement (or heartbeat) without data.
    Ack {
        /// Next sequence number the peer expects from us.
        ack: u64,
    },
    /// An application message.
    Data {
        /// Next sequence number the peer expects from us.
        ack: u64,
        /// Sequence number of this message.
        seq: u64,
        /// Lowest sequence number the peer still holds for retransmission.
        oldest: u64,
        /// Application payload.
        payload: &'a [u8],
    },
}

/// Writes an acknowledgement record into `out` and returns the padded length.
pub fn encode_ack(ack: u64, out: &mut [u8]) -> Result<usize, Error> {
    let len = BUCKETS[0];
    if out.len() < len {
        return Err(Error::BufferTooSmall { needed: len });
    }
    out[0] = KIND_ACK;
    out[1..9].copy_from_slice(&ack.to_le_bytes());
    out[ACK_HEADER_LEN..len].fill(0);
    Ok(len)
}

/// Writes a data record into `out` and returns the padded length.
pub fn encode_data(
    ack: u64,
    seq: u64,
    oldest: u64,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let content = DATA_HEADER_LEN + payload.len();
    let Some(len) = bucket_for(content) else {
        return Err(Error::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    };
    if out.len() < len {
        return Err(Error::BufferTooSmall { needed: len });
    }
    out[0] = KIND_DATA;
    out[1..9].copy_from_slice(&ack.to_le_bytes());
    out[9..17].copy_from_slice(&seq.to_le_bytes());
    out[17..25].copy_from_slice(&oldest.to_le_bytes());
    // MAX_PAYLOAD_LEN fits in u16 (checked at compile time above).
    out[25..27].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    out[DATA_HEADER_LEN..content].copy_from_slice(payload);
    out[content..len].fill(0);
    Ok(len)
}

/// Decodes an authenticated record. The record must have a bucket size, a known kind,
/// a payload length within it and zero padding; anything else is
/// [`Error::MalformedRecord`].
pub fn decode(record: &[u8]) -> Result<Record<'_>, Error> {
    if !BUCKETS.contains(&record.len()) {
        return Err(Error::MalformedRecord);
    }
    let ack = read_u64(record, 1);
    let (decoded, content_end) = match record[0] {
        KIND_ACK => (Record::Ack { ack }, ACK_HEADER_LEN),
        KIND_DATA => {
            let payload_len = usize::from(u16::from_le_bytes([record[25], record[26]]));
            let end = DATA_HEADER_LEN + payload_len;
            if end > record.len() {
                return Err(Error::MalformedRecord);
            }
            let data = Record::Data {
                ack,
                seq: read_u64(record, 9),
                oldest: read_u64(record, 17),
                payload: &record[DATA_HEADER_LEN..end],
            };
            (data, end)
        }
        _ => return Err(Error::MalformedRecord),
    };
    if record[content_end..].iter().any(|&byte| byte != 0) {
        return Err(Error::MalformedRecord);
    }
    Ok(decoded)
}

/// Reads a little-endian u64 at `offset`; callers checked that the record is at least
/// as long as the smallest bucket, which covers every fixed field.
fn read_u64(record: &[u8], offset: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&record[offset..offset + 8]);
    u64::from_le_bytes(bytes)
}

const _: () = assert!(BUCKETS[0] >= DATA_HEADER_LEN);
