//! Application records that travel inside the medtunnel channel, and readers for the CGM
//! traces that the simulated devices replay.
//!
//! Every record starts with a [`RecordType`] byte, so a receiver decodes with
//! [`Record::decode`] without knowing the kind in advance. The [`cgm`] module documents
//! the byte layout of the CGM measurement, the [`therapy`] module those of the pump and
//! pacemaker records and of signed commands and their acknowledgements. Decoding is strict and never panics: a record
//! has exactly the length its flags imply, and every field is checked against its limits.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cgm;
mod sfloat;
pub mod therapy;
pub mod trace;

pub use cgm::CgmMeasurement;
pub use medtunnel_command::Acknowledgement;
pub use therapy::{
    command_device_id, CommandBytes, DeviceStatus, PacemakerReport, PumpStatus, PumpTelemetry,
    StatusModel, StatusRequest, StatusSettings,
};

/// Kind of an application record: the first byte of its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum RecordType {
    /// A glucose reading of a continuous glucose monitor, [`CgmMeasurement`].
    CgmMeasurement = 0x01,
    /// A therapy device's status report, [`DeviceStatus`].
    DeviceStatus = 0x02,
    /// A signed command from the cloud, [`CommandBytes`].
    SignedCommand = 0x03,
    /// A device's acknowledgement of a command, [`Acknowledgement`].
    CommandAck = 0x04,
    /// Pump measurements, [`PumpTelemetry`].
    PumpTelemetry = 0x05,
    /// Pacemaker measurements, [`PacemakerReport`].
    PacemakerTelemetry = 0x06,
    /// The cloud's request for a status report, [`StatusRequest`].
    StatusRequest = 0x07,
}

impl RecordType {
    /// Returns the record type for a type byte, or `None` for an unknown one.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(RecordType::CgmMeasurement),
            0x02 => Some(RecordType::DeviceStatus),
            0x03 => Some(RecordType::SignedCommand),
            0x04 => Some(RecordType::CommandAck),
            0x05 => Some(RecordType::PumpTelemetry),
            0x06 => Some(RecordType::PacemakerTelemetry),
            0x07 => Some(RecordType::StatusRequest),
            _ => None,
        }
    }

    /// Returns the type byte.
    pub const fn as_byte(self) -> u8 {
        self as u8
    }
}

/// Any application record.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// A CGM glucose reading.
    CgmMeasurement(CgmMeasurement),
    /// A therapy device's status report.
    DeviceStatus(DeviceStatus),
    /// A signed command, not yet decoded or verified.
    SignedCommand(CommandBytes),
    /// A device's acknowledgement of a command.
    CommandAck(Acknowledgement),
    /// Pump measurements.
    PumpTelemetry(PumpTelemetry),
    /// Pacemaker measurements.
    PacemakerTelemetry(PacemakerReport),
    /// A request for a status report.
    StatusRequest(StatusRequest),
}

impl Record {
    /// Decodes one record, choosing the kind by its first byte.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let type_byte = *bytes.first().ok_or(RecordError::Truncated)?;
        match RecordType::from_byte(type_byte) {
            Some(RecordType::CgmMeasurement) => {
                CgmMeasurement::decode(bytes).map(Record::CgmMeasurement)
            }
            Some(RecordType::DeviceStatus) => DeviceStatus::decode(bytes).map(Record::DeviceStatus),
            Some(RecordType::SignedCommand) => {
                CommandBytes::decode(bytes).map(Record::SignedCommand)
            }
            Some(RecordType::CommandAck) => therapy::decode_ack(bytes).map(Record::CommandAck),
            Some(RecordType::PumpTelemetry) => {
                PumpTelemetry::decode(bytes).map(Record::PumpTelemetry)
            }
            Some(RecordType::PacemakerTelemetry) => {
                PacemakerReport::decode(bytes).map(Record::PacemakerTelemetry)
            }
            Some(RecordType::StatusRequest) => {
                StatusRequest::decode(bytes).map(Record::StatusRequest)
            }
            None => Err(RecordError::UnknownType(type_byte)),
        }
    }

    /// Returns the kind of the record.
    pub fn record_type(&self) -> RecordType {
        match self {
            Record::CgmMeasurement(_) => RecordType::CgmMeasurement,
            Record::DeviceStatus(_) => RecordType::DeviceStatus,
            Record::SignedCommand(_) => RecordType::SignedCommand,
            Record::CommandAck(_) => RecordType::CommandAck,
            Record::PumpTelemetry(_) => RecordType::PumpTelemetry,
            Record::PacemakerTelemetry(_) => RecordType::PacemakerTelemetry,
            Record::StatusRequest(_) => RecordType::StatusRequest,
        }
    }

    /// Appends the encoded record to `out`, leaving `out` unchanged on error.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Record::CgmMeasurement(measurement) => return measurement.encode_into(out),
            Record::DeviceStatus(status) => status.encode_into(out),
            Record::SignedCommand(command) => command.encode_into(out),
            Record::CommandAck(ack) => therapy::encode_ack(ack, out),
            Record::PumpTelemetry(telemetry) => telemetry.encode_into(out),
            Record::PacemakerTelemetry(report) => report.encode_into(out),
            Record::StatusRequest(request) => request.encode_into(out),
        }
        Ok(())
    }

    /// Returns the number of bytes that [`Record::encode_into`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Record::CgmMeasurement(measurement) => measurement.encoded_len(),
            Record::DeviceStatus(status) => status.encoded_len(),
            Record::SignedCommand(command) => command.encoded_len(),
            Record::CommandAck(ack) => 2 + ack.encoded_len(),
            other => therapy::fixed_len(other.record_type()),
        }
    }

    /// Returns the time the device assigned to the record, in Unix seconds, for records
    /// that carry one (the CGM measurement). Therapy records carry the device's session
    /// clock instead, which is not a Unix time.
    pub fn device_time_s(&self) -> Option<i64> {
        match self {
            Record::CgmMeasurement(measurement) => Some(measurement.device_time_s()),
            _ => None,
        }
    }
}

/// Rejection of record bytes. The sender is to blame: the bytes are malformed or a field
/// is out of its limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record ends before its fixed fields do.
    #[error("record is truncated")]
    Truncated,
    /// The first byte is not a known record type.
    #[error("unknown record type 0x{0:02x}")]
    UnknownType(u8),
    /// The first byte is a different record type than the decoder expects.
    #[error("record type 0x{found:02x} is not {expected:?} (0x{:02x})", expected.as_byte())]
    UnexpectedType {
        /// The type the decoder handles.
        expected: RecordType,
        /// The type byte found.
        found: u8,
    },
    /// The flags byte has a bit set that this version does not define.
    #[error("record flags 0x{flags:02x} have unknown bits set")]
    UnknownFlags {
        /// The flags byte found.
        flags: u8,
    },
    /// The record is not exactly as long as its flags imply.
    #[error("record is {found} bytes long but its flags imply {expected}")]
    Length {
        /// Length implied by the type and flags.
        expected: usize,
        /// Length received.
        found: usize,
    },
    /// The session start is negative or later than year 9999.
    #[error("session start {0} s is outside 0 to 253402300799 Unix seconds")]
    SessionStartOutOfRange(i64),
    /// The glucose SFLOAT is not a whole number from 0 to 4000 mg/dL.
    #[error("glucose SFLOAT 0x{raw:04x} is invalid because {reason}; expected a whole number of mg/dL from 0 to 4000")]
    InvalidGlucose {
        /// The raw SFLOAT.
        raw: u16,
        /// Which check failed.
        reason: &'static str,
    },
    /// The trend SFLOAT is the reserved value 0x801.
    #[error("trend SFLOAT 0x{raw:04x} is a reserved value")]
    ReservedTrend {
        /// The raw SFLOAT.
        raw: u16,
    },
    /// The quality is above 100 %.
    #[error("quality {0} % is above 100 %")]
    QualityOutOfRange(u8),
    /// A field of a therapy record is outside the values its layout allows.
    #[error("invalid value in field `{0}`")]
    InvalidField(&'static str),
}

/// Rejection of a record value that cannot be encoded. The caller is to blame: a field is
/// outside the limits that the wire format can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The glucose value is above [`cgm::MAX_GLUCOSE_MG_DL`].
    #[error("glucose {0} mg/dL is above the maximum of 4000 mg/dL")]
    GlucoseOutOfRange(u16),
    /// No SFLOAT equals the glucose value: above 2045 it must be a multiple of 10.
    #[error(
        "glucose {0} mg/dL has no exact SFLOAT encoding; above 2045 mg/dL use a multiple of 10"
    )]
    GlucoseNotRepresentable(u16),
    /// The status does not fit in 24 bits.
    #[error("status 0x{0:08x} does not fit the 24-bit status annunciation")]
    StatusTooWide(u32),
    /// The quality is above 100 %.
    #[error("quality {0} % is above 100 %")]
    QualityOutOfRange(u8),
    /// The session start is negative or later than year 9999.
    #[error("session start {0} s is outside 0 to 253402300799 Unix seconds")]
    SessionStartOutOfRange(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_decodes_by_type_byte() {
        let measurement = CgmMeasurement {
            session_start_s: 1_700_000_000,
            time_offset_s: 300,
            glucose_mg_dl: 98,
            trend_mg_dl_per_min: None,
            quality_percent: Some(100),
            status: 0,
        };
        let record = Record::CgmMeasurement(measurement);
        let mut bytes = Vec::new();
        record.encode_into(&mut bytes).expect("within limits");
        assert_eq!(bytes.len(), record.encoded_len());
        assert_eq!(Record::decode(&bytes), Ok(record));
        assert_eq!(record.record_type(), RecordType::CgmMeasurement);
        assert_eq!(record.device_time_s(), Some(1_700_000_300));
    }

    #[test]
    fn record_rejects_unknown_type_and_empty_input() {
        assert_eq!(Record::decode(&[]), Err(RecordError::Truncated));
        assert_eq!(
            Record::decode(&[0x7F, 0x00]),
            Err(RecordError::UnknownType(0x7F))
        );
    }

    #[test]
    fn record_type_byte_round_trips() {
        assert_eq!(RecordType::CgmMeasurement.as_byte(), 0x01);
        assert_eq!(
            RecordType::from_byte(0x01),
            Some(RecordType::CgmMeasurement)
        );
        assert_eq!(RecordType::from_byte(0x00), None);
    }
}
