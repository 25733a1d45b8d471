//! Encoding and strict decoding of the therapy records.

use medtunnel_command::ack::{Outcome, RejectReason};
use medtunnel_command::body::{BasalProfile, BasalSegment, PacingMode};
use medtunnel_command::cgm::CgmThresholds;
use medtunnel_command::limits::PumpMaxSettings;
use medtunnel_command::pacemaker::{PacemakerSettings, PacemakerTelemetry};
use medtunnel_command::{Acknowledgement, Insulin, InsulinRate};
use medtunnel_records::{
    command_device_id, CommandBytes, DeviceStatus, PacemakerReport, PumpStatus, PumpTelemetry,
    Record, RecordError, StatusRequest, StatusSettings,
};

fn encode(record: &Record) -> Vec<u8> {
    let mut bytes = Vec::new();
    record
        .encode_into(&mut bytes)
        .expect("record within limits");
    assert_eq!(
        bytes.len(),
        record.encoded_len(),
        "encoded_len of {record:?}"
    );
    bytes
}

fn pump_status(challenge: Option<[u8; 16]>) -> DeviceStatus {
    let profile = BasalProfile::new(&[
        BasalSegment {
            start_minute: 0,
            rate: InsulinRate(80),
        },
        BasalSegment {
            start_minute: 360,
            rate: InsulinRate(120),
        },
    ])
    .expect("ordered profile");
    DeviceStatus {
        epoch: 3,
        session_clock_ms: 12_345,
        last_executed_sequence: 9,
        last_executed_command_id: [0x77; 16],
        challenge,
        settings: StatusSettings::Pump(PumpStatus {
            suspended: false,
            max: PumpMaxSettings {
                max_bolus: Insulin(1500),
                max_basal: InsulinRate(500),
                max_insulin_on_board: Insulin(3000),
            },
            delivered_today: 420,
            basal_profile: profile,
        }),
    }
}

fn pacemaker_status() -> DeviceStatus {
    DeviceStatus {
        epoch: 1,
        session_clock_ms: 5,
        last_executed_sequence: 0,
        last_executed_command_id: [0; 16],
        challenge: None,
        settings: StatusSettings::Pacemaker(PacemakerSettings {
            mode: PacingMode::Ddd,
            lower_rate_ppm: 60,
            upper_tracking_ppm: 130,
            av_delay_ms: 180,
            amplitude_decivolts: 35,
        }),
    }
}

fn every_record() -> Vec<Record> {
    let ack = Acknowledgement {
        command_id: [5; 16],
        sequence: 4,
        outcome: Outcome::Rejected(RejectReason::Expired),
    };
    vec![
        Record::DeviceStatus(pump_status(Some([0xC4; 16]))),
        Record::DeviceStatus(pump_status(None)),
        Record::DeviceStatus(pacemaker_status()),
        Record::DeviceStatus(DeviceStatus {
            settings: StatusSettings::Cgm(CgmThresholds {
                low_mg_dl: 70,
                high_mg_dl: 250,
            }),
            ..pacemaker_status()
        }),
        Record::SignedCommand(CommandBytes::new(&[1, 2, 3]).expect("short command")),
        Record::CommandAck(ack),
        Record::PumpTelemetry(PumpTelemetry {
            session_clock_ms: 60_000,
            reservoir: Insulin(19_000),
            insulin_on_board: Insulin(250),
            basal_rate: InsulinRate(80),
            suspended: false,
            temp_basal_active: true,
        }),
        Record::PacemakerTelemetry(PacemakerReport {
            session_clock_ms: 60_000,
            telemetry: PacemakerTelemetry {
                heart_rate_bpm: 72,
                battery_millivolts: 2_800,
                lead_impedance_ohms: 540,
            },
        }),
        Record::StatusRequest(StatusRequest {
            challenge_wanted: true,
        }),
    ]
}

#[test]
fn therapy_records_round_trip() {
    for record in every_record() {
        let bytes = encode(&record);
        assert_eq!(Record::decode(&bytes), Ok(record), "{record:?}");
    }
}

#[test]
fn therapy_records_reject_truncation_and_trailing_bytes() {
    for record in every_record() {
        let bytes = encode(&record);
        for cut in 1..bytes.len() {
            assert!(
                Record::decode(&bytes[..cut]).is_err(),
                "{record:?} cut to {cut} bytes decoded"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            Record::decode(&longer).is_err(),
            "{record:?} with a trailing byte decoded"
        );
    }
}

#[test]
fn pump_telemetry_layout_is_pinned() {
    let record = Record::PumpTelemetry(PumpTelemetry {
        session_clock_ms: 0x0102,
        reservoir: Insulin(0x0304),
        insulin_on_board: Insulin(0x0506),
        basal_rate: InsulinRate(0x0708),
        suspended: true,
        temp_basal_active: false,
    });
    let expected = [
        0x05, // record type
        0x02, 0x01, 0, 0, 0, 0, 0, 0, // session clock, little-endian
        0x04, 0x03, // reservoir
        0x06, 0x05, // insulin on board
        0x08, 0x07, // basal rate
        0x01, // flags: suspended
    ];
    assert_eq!(encode(&record), expected);
}

#[test]
fn status_rejects_bad_flags_and_models() {
    let bytes = encode(&Record::DeviceStatus(pump_status(None)));
    let mut bad_challenge_flag = bytes.clone();
    bad_challenge_flag[38] = 2;
    assert_eq!(
        Record::decode(&bad_challenge_flag),
        Err(RecordError::InvalidField("challenge flag"))
    );
    let mut bad_model = bytes.clone();
    bad_model[1] = 9;
    assert_eq!(
        Record::decode(&bad_model),
        Err(RecordError::InvalidField("device model"))
    );
    let mut bad_pump_flags = bytes;
    bad_pump_flags[39] = 0x80;
    assert_eq!(
        Record::decode(&bad_pump_flags),
        Err(RecordError::UnknownFlags { flags: 0x80 })
    );
}

#[test]
fn ack_record_rejects_undecodable_acknowledgement() {
    let bytes = [0x04, 2, 9, 9];
    assert_eq!(
        Record::decode(&bytes),
        Err(RecordError::InvalidField("acknowledgement"))
    );
}

#[test]
fn command_bytes_reject_empty_and_oversized() {
    assert!(CommandBytes::new(&[]).is_none());
    assert!(CommandBytes::new(&[0u8; 234]).is_none());
    assert_eq!(
        Record::decode(&[0x03, 0]),
        Err(RecordError::InvalidField("signed command length"))
    );
}

#[test]
fn command_device_id_differs_per_device() {
    assert_eq!(
        command_device_id("pump-0001"),
        command_device_id("pump-0001")
    );
    assert_ne!(
        command_device_id("pump-0001"),
        command_device_id("pump-0002")
    );
}
