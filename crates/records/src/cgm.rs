//! CGM measurement record, shaped like the measurement of the Bluetooth CGM Service.
//!
//! # Layout
//!
//! All multi-byte fields are little-endian. A record is 19 to 22 bytes long:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 1 | record type, `0x01` ([`RecordType::CgmMeasurement`]) |
//! | 1 | 1 | flags: bit 0 set if the trend follows, bit 1 set if the quality follows, bits 2 to 7 zero |
//! | 2 | 8 | `session_start_s`, signed Unix seconds, 0 to 253402300799 (9999-12-31 23:59:59 UTC) |
//! | 10 | 4 | `time_offset_s`, unsigned seconds since the session start |
//! | 14 | 2 | `glucose_mg_dl` as SFLOAT, a whole number 0 to 4000 |
//! | 16 | 3 | `status`, the 24-bit sensor status annunciation (octets Status, Cal/Temp, Warning) |
//! | 19 | 2 | `trend_mg_dl_per_min` as SFLOAT, present only if flag bit 0 is set |
//! | 19 or 21 | 1 | `quality_percent`, 0 to 100, present only if flag bit 1 is set |
//!
//! The decoder accepts exactly this length for the given flags: a shorter record, a
//! trailing byte and an unknown flag bit are all rejected. SFLOAT is the 16-bit float of
//! ISO/IEEE 11073-20601 (4-bit exponent, 12-bit mantissa, value = mantissa × 10^exponent).

use crate::sfloat;
use crate::{EncodeError, RecordError, RecordType};

/// Largest glucose value, in mg/dL, that a record may carry. Sensors report 40 to 400.
pub const MAX_GLUCOSE_MG_DL: u16 = 4000;
/// Largest sensor status annunciation: the field is 3 octets wide.
pub const MAX_STATUS: u32 = 0x00FF_FFFF;
/// Largest session start, 9999-12-31 23:59:59 UTC in Unix seconds, so that every device
/// time fits the `YYYY-MM-DD HH:MM:SS` format.
pub const MAX_SESSION_START_S: i64 = 253_402_300_799;
/// Largest quality, in percent.
pub const MAX_QUALITY_PERCENT: u8 = 100;

const FLAG_TREND: u8 = 0x01;
const FLAG_QUALITY: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_TREND | FLAG_QUALITY;
/// Length without the optional fields: type, flags, session start, offset, glucose, status.
const FIXED_LEN: usize = 1 + 1 + 8 + 4 + 2 + 3;
const TREND_LEN: usize = 2;
const QUALITY_LEN: usize = 1;

/// Length in bytes of the longest CGM measurement record.
pub const MAX_ENCODED_LEN: usize = FIXED_LEN + TREND_LEN + QUALITY_LEN;

/// One glucose reading of a continuous glucose monitor.
///
/// A value decoded from bytes has every field within the limits above. A value built by
/// hand may not, and [`CgmMeasurement::encode_into`] rejects it then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgmMeasurement {
    /// Unix seconds at which the sensor session started, as the collector wrote it into
    /// the CGM Session Start Time.
    pub session_start_s: i64,
    /// Seconds from the session start to this reading.
    pub time_offset_s: u32,
    /// Glucose concentration in mg/dL.
    pub glucose_mg_dl: u16,
    /// Rate of change in mg/dL per minute. It travels as an SFLOAT, so about four
    /// significant digits survive encoding.
    pub trend_mg_dl_per_min: Option<f32>,
    /// Sensor quality in percent.
    pub quality_percent: Option<u8>,
    /// Sensor status annunciation, 24 bits.
    pub status: u32,
}

impl CgmMeasurement {
    /// Returns the device time of the reading: session start plus time offset, in Unix
    /// seconds. Saturates at `i64::MAX` for a hand-built value with an impossible start.
    pub fn device_time_s(&self) -> i64 {
        self.session_start_s
            .saturating_add(i64::from(self.time_offset_s))
    }

    /// Returns the number of bytes that [`CgmMeasurement::encode_into`] appends.
    pub fn encoded_len(&self) -> usize {
        let mut len = FIXED_LEN;
        if self.trend_mg_dl_per_min.is_some() {
            len += TREND_LEN;
        }
        if self.quality_percent.is_some() {
            len += QUALITY_LEN;
        }
        len
    }

    /// Appends the record, type byte first, to `out`.
    ///
    /// Checks every field first, so on error `out` is left unchanged.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let glucose = self.checked_glucose()?;
        self.check_limits()?;

        let mut flags = 0u8;
        if self.trend_mg_dl_per_min.is_some() {
            flags |= FLAG_TREND;
        }
        if self.quality_percent.is_some() {
            flags |= FLAG_QUALITY;
        }

        out.reserve(self.encoded_len());
        out.push(RecordType::CgmMeasurement.as_byte());
        out.push(flags);
        out.extend_from_slice(&self.session_start_s.to_le_bytes());
        out.extend_from_slice(&self.time_offset_s.to_le_bytes());
        out.extend_from_slice(&glucose.to_le_bytes());
        out.extend_from_slice(&self.status.to_le_bytes()[..3]);
        if let Some(trend) = self.trend_mg_dl_per_min {
            out.extend_from_slice(&sfloat::from_f32(trend).to_le_bytes());
        }
        if let Some(quality) = self.quality_percent {
            out.push(quality);
        }
        Ok(())
    }

    /// Encodes the record into a new vector.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decodes one record of exactly `bytes.len()` bytes, type byte included.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut reader = Reader { bytes };
        let [type_byte] = reader.take()?;
        if type_byte != RecordType::CgmMeasurement.as_byte() {
            return Err(RecordError::UnexpectedType {
                expected: RecordType::CgmMeasurement,
                found: type_byte,
            });
        }
        let [flags] = reader.take()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(RecordError::UnknownFlags { flags });
        }
        let expected_len = FIXED_LEN
            + if flags & FLAG_TREND != 0 {
                TREND_LEN
            } else {
                0
            }
            + if flags & FLAG_QUALITY != 0 {
                QUALITY_LEN
            } else {
                0
            };
        if bytes.len() != expected_len {
            return Err(RecordError::Length {
                expected: expected_len,
                found: bytes.len(),
            });
        }

        let session_start_s = i64::from_le_bytes(reader.take()?);
        if !(0..=MAX_SESSION_START_S).contains(&session_start_s) {
            return Err(RecordError::SessionStartOutOfRange(session_start_s));
        }
        let time_offset_s = u32::from_le_bytes(reader.take()?);
        let glucose_raw = u16::from_le_bytes(reader.take()?);
        let glucose_mg_dl = sfloat::to_whole(glucose_raw, MAX_GLUCOSE_MG_DL).map_err(|error| {
            RecordError::InvalidGlucose {
                raw: glucose_raw,
                reason: error.reason(),
            }
        })?;
        let [status_0, status_1, status_2] = reader.take()?;
        let status = u32::from_le_bytes([status_0, status_1, status_2, 0]);

        let trend_mg_dl_per_min = if flags & FLAG_TREND != 0 {
            let raw = u16::from_le_bytes(reader.take()?);
            Some(sfloat::to_f32(raw).ok_or(RecordError::ReservedTrend { raw })?)
        } else {
            None
        };
        let quality_percent = if flags & FLAG_QUALITY != 0 {
            let [quality] = reader.take()?;
            if quality > MAX_QUALITY_PERCENT {
                return Err(RecordError::QualityOutOfRange(quality));
            }
            Some(quality)
        } else {
            None
        };

        Ok(CgmMeasurement {
            session_start_s,
            time_offset_s,
            glucose_mg_dl,
            trend_mg_dl_per_min,
            quality_percent,
            status,
        })
    }

    fn checked_glucose(&self) -> Result<u16, EncodeError> {
        if self.glucose_mg_dl > MAX_GLUCOSE_MG_DL {
            return Err(EncodeError::GlucoseOutOfRange(self.glucose_mg_dl));
        }
        sfloat::from_whole(self.glucose_mg_dl)
            .ok_or(EncodeError::GlucoseNotRepresentable(self.glucose_mg_dl))
    }

    fn check_limits(&self) -> Result<(), EncodeError> {
        if !(0..=MAX_SESSION_START_S).contains(&self.session_start_s) {
            return Err(EncodeError::SessionStartOutOfRange(self.session_start_s));
        }
        if self.status > MAX_STATUS {
            return Err(EncodeError::StatusTooWide(self.status));
        }
        match self.quality_percent {
            Some(quality) if quality > MAX_QUALITY_PERCENT => {
                Err(EncodeError::QualityOutOfRange(quality))
            }
            _ => Ok(()),
        }
    }
}

/// Bounds-checked reads from the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let (head, tail) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(RecordError::Truncated)?;
        self.bytes = tail;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> CgmMeasurement {
        CgmMeasurement {
            session_start_s: 1_433_608_227,
            time_offset_s: 900,
            glucose_mg_dl: 153,
            trend_mg_dl_per_min: Some(-1.5),
            quality_percent: Some(97),
            status: 0x00_04_02_01,
        }
    }

    fn minimal() -> CgmMeasurement {
        CgmMeasurement {
            trend_mg_dl_per_min: None,
            quality_percent: None,
            ..full()
        }
    }

    #[test]
    fn full_record_matches_layout() {
        let bytes = full().encode().expect("all fields are within limits");
        let expected: [u8; 22] = [
            0x01, // record type
            0x03, // flags: trend and quality follow
            0x23, 0x20, 0x73, 0x55, 0x00, 0x00, 0x00, 0x00, // 1433608227
            0x84, 0x03, 0x00, 0x00, // 900 s
            0x99, 0x00, // SFLOAT 153 × 10^0
            0x01, 0x02, 0x04, // status octets
            0xF1, 0xFF, // SFLOAT -15 × 10^-1
            0x61, // 97 %
        ];
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), full().encoded_len());
        assert_eq!(bytes.len(), MAX_ENCODED_LEN);
    }

    #[test]
    fn records_round_trip() {
        for measurement in [full(), minimal()] {
            let bytes = measurement.encode().expect("within limits");
            assert_eq!(bytes.len(), measurement.encoded_len());
            assert_eq!(CgmMeasurement::decode(&bytes), Ok(measurement));
        }
    }

    #[test]
    fn quality_without_trend_sits_at_offset_19() {
        let measurement = CgmMeasurement {
            trend_mg_dl_per_min: None,
            ..full()
        };
        let bytes = measurement.encode().expect("within limits");
        assert_eq!(bytes[1], 0x02);
        assert_eq!(bytes.len(), 20);
        assert_eq!(bytes[19], 97);
        assert_eq!(CgmMeasurement::decode(&bytes), Ok(measurement));
    }

    #[test]
    fn device_time_adds_offset() {
        assert_eq!(full().device_time_s(), 1_433_608_227 + 900);
    }

    #[test]
    fn decode_rejects_wrong_lengths() {
        let bytes = full().encode().expect("within limits");
        assert_eq!(CgmMeasurement::decode(&[]), Err(RecordError::Truncated));
        assert_eq!(
            CgmMeasurement::decode(&bytes[..21]),
            Err(RecordError::Length {
                expected: 22,
                found: 21
            })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            CgmMeasurement::decode(&long),
            Err(RecordError::Length {
                expected: 22,
                found: 23
            })
        );
    }

    #[test]
    fn decode_rejects_unknown_flags_and_type() {
        let mut bytes = minimal().encode().expect("within limits");
        bytes[1] = 0x04;
        assert_eq!(
            CgmMeasurement::decode(&bytes),
            Err(RecordError::UnknownFlags { flags: 0x04 })
        );
        bytes[0] = 0x02;
        assert_eq!(
            CgmMeasurement::decode(&bytes),
            Err(RecordError::UnexpectedType {
                expected: RecordType::CgmMeasurement,
                found: 0x02
            })
        );
    }

    #[test]
    fn decode_rejects_bad_field_values() {
        let good = full().encode().expect("within limits");

        let mut fractional = good.clone();
        fractional[14..16].copy_from_slice(&0xF5FFu16.to_le_bytes()); // 1535 × 10^-1
        assert!(matches!(
            CgmMeasurement::decode(&fractional),
            Err(RecordError::InvalidGlucose { raw: 0xF5FF, .. })
        ));

        let mut too_high = good.clone();
        too_high[14..16].copy_from_slice(&0x1191u16.to_le_bytes()); // 401 × 10^1
        assert!(matches!(
            CgmMeasurement::decode(&too_high),
            Err(RecordError::InvalidGlucose { raw: 0x1191, .. })
        ));

        let mut reserved_trend = good.clone();
        reserved_trend[19..21].copy_from_slice(&0x0801u16.to_le_bytes());
        assert_eq!(
            CgmMeasurement::decode(&reserved_trend),
            Err(RecordError::ReservedTrend { raw: 0x0801 })
        );

        let mut quality = good.clone();
        quality[21] = 101;
        assert_eq!(
            CgmMeasurement::decode(&quality),
            Err(RecordError::QualityOutOfRange(101))
        );

        let mut start = good;
        start[2..10].copy_from_slice(&(-1i64).to_le_bytes());
        assert_eq!(
            CgmMeasurement::decode(&start),
            Err(RecordError::SessionStartOutOfRange(-1))
        );
    }

    #[test]
    fn encode_rejects_values_out_of_limits() {
        let cases = [
            (
                CgmMeasurement {
                    glucose_mg_dl: 2051,
                    ..full()
                },
                EncodeError::GlucoseNotRepresentable(2051),
            ),
            (
                CgmMeasurement {
                    glucose_mg_dl: 4010,
                    ..full()
                },
                EncodeError::GlucoseOutOfRange(4010),
            ),
            (
                CgmMeasurement {
                    status: 0x0100_0000,
                    ..full()
                },
                EncodeError::StatusTooWide(0x0100_0000),
            ),
            (
                CgmMeasurement {
                    quality_percent: Some(101),
                    ..full()
                },
                EncodeError::QualityOutOfRange(101),
            ),
            (
                CgmMeasurement {
                    session_start_s: -5,
                    ..full()
                },
                EncodeError::SessionStartOutOfRange(-5),
            ),
        ];
        for (measurement, expected) in cases {
            let mut out = vec![0xAA];
            assert_eq!(measurement.encode_into(&mut out), Err(expected));
            assert_eq!(out, [0xAA], "output must stay unchanged on error");
        }
    }

    #[test]
    fn glucose_above_2045_needs_trailing_zero() {
        let measurement = CgmMeasurement {
            glucose_mg_dl: 2050,
            ..minimal()
        };
        let bytes = measurement.encode().expect("2050 is 205 × 10^1");
        assert_eq!(&bytes[14..16], &[0xCD, 0x10]);
        assert_eq!(CgmMeasurement::decode(&bytes), Ok(measurement));
    }
}
