//! Round trips, byte layout and strict rejections of the command, acknowledgement and
//! execution-record encodings.

mod common;

use common::{command_key, envelope, signed_bytes, DEVICE_ID, EPOCH};
use medtunnel_command::ack::{PumpSummary, MAX_ACK_LEN};
use medtunnel_command::body::{
    BasalProfile, BasalSegment, CgmCommand, PacemakerCommand, PacingMode, PumpCommand,
    TempBasalRate, MAX_BASAL_SEGMENTS, MAX_BODY_LEN,
};
use medtunnel_command::cgm::CgmThresholds;
use medtunnel_command::envelope::{MAX_SIGNED_COMMAND_LEN, SIGNATURE_DOMAIN};
use medtunnel_command::limits::{LimitViolation, PumpMaxSettings};
use medtunnel_command::wire::{BufferTooSmall, DecodeError};
use medtunnel_command::{
    Acknowledgement, CommandBody, ExecutionRecord, Insulin, InsulinRate, Outcome, RejectReason,
    SignedCommand, StateSummary,
};

fn full_profile() -> BasalProfile {
    let segments: Vec<BasalSegment> = (0..MAX_BASAL_SEGMENTS as u16)
        .map(|hour| BasalSegment {
            start_minute: hour * 60,
            rate: InsulinRate(50 + hour),
        })
        .collect();
    BasalProfile::new(&segments).unwrap()
}

fn every_body() -> Vec<CommandBody> {
    vec![
        CommandBody::Pump(PumpCommand::SetBasalProfile(BasalProfile::flat(
            InsulinRate(75),
        ))),
        CommandBody::Pump(PumpCommand::SetBasalProfile(full_profile())),
        CommandBody::Pump(PumpCommand::TempBasal {
            rate: TempBasalRate::Percent(150),
            duration_minutes: 90,
        }),
        CommandBody::Pump(PumpCommand::TempBasal {
            rate: TempBasalRate::Absolute(InsulinRate(240)),
            duration_minutes: 30,
        }),
        CommandBody::Pump(PumpCommand::Bolus(Insulin(425))),
        CommandBody::Pump(PumpCommand::Suspend),
        CommandBody::Pump(PumpCommand::Resume),
        CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(1000))),
        CommandBody::Pump(PumpCommand::SetMaxBasal(InsulinRate(300))),
        CommandBody::Pump(PumpCommand::SetMaxInsulinOnBoard(Insulin(2000))),
        CommandBody::Pacemaker(PacemakerCommand::SetPacingMode(PacingMode::Vvir)),
        CommandBody::Pacemaker(PacemakerCommand::SetLowerRateLimit(55)),
        CommandBody::Pacemaker(PacemakerCommand::SetUpperTrackingRate(140)),
        CommandBody::Pacemaker(PacemakerCommand::SetAvDelay(200)),
        CommandBody::Pacemaker(PacemakerCommand::SetOutputAmplitude(25)),
        CommandBody::Cgm(CgmCommand::SetAlertThresholds {
            low_mg_dl: 65,
            high_mg_dl: 240,
        }),
    ]
}

#[test]
fn every_body_round_trips() {
    for body in every_body() {
        let mut out = [0u8; MAX_BODY_LEN];
        let len = body.encode(&mut out).unwrap();
        assert_eq!(len, body.encoded_len(), "{body:?}");
        assert_eq!(CommandBody::decode(&out[..len]), Ok(body), "{body:?}");
    }
}

#[test]
fn largest_body_fills_max_body_len() {
    let body = CommandBody::Pump(PumpCommand::SetBasalProfile(full_profile()));
    assert_eq!(body.encoded_len(), MAX_BODY_LEN);
}

#[test]
fn body_rejects_every_truncation_and_trailing_byte() {
    for body in every_body() {
        let mut out = [0u8; MAX_BODY_LEN + 1];
        let len = body.encode(&mut out).unwrap();
        for cut in 0..len {
            assert!(
                CommandBody::decode(&out[..cut]).is_err(),
                "{body:?} cut at {cut}"
            );
        }
        assert_eq!(
            CommandBody::decode(&out[..len + 1]),
            Err(DecodeError::TrailingBytes)
        );
    }
}

#[test]
fn body_rejects_unknown_tags() {
    for tag in [0x00, 0x0F, 0x18, 0x1F, 0x25, 0x2F, 0x31, 0xFF] {
        let input = [tag, 0, 0, 0, 0];
        assert_eq!(
            CommandBody::decode(&input),
            Err(DecodeError::UnknownTag(tag))
        );
    }
}

#[test]
fn body_rejects_unknown_variants() {
    assert_eq!(
        CommandBody::decode(&[0x11, 2, 0, 100, 0, 30]),
        Err(DecodeError::UnknownTag(2)),
        "temporary basal kind"
    );
    assert_eq!(
        CommandBody::decode(&[0x20, 0]),
        Err(DecodeError::UnknownTag(0)),
        "pacing mode 0"
    );
    assert_eq!(
        CommandBody::decode(&[0x20, 7]),
        Err(DecodeError::UnknownTag(7)),
        "pacing mode 7"
    );
}

#[test]
fn basal_profile_rejects_bad_segments() {
    let cases: [(&str, Vec<u8>); 5] = [
        ("no segment", vec![0x10, 0]),
        ("25 segments", {
            let mut v = vec![0x10, 25];
            for i in 0..25u16 {
                v.extend_from_slice(&(i * 50).to_be_bytes());
                v.extend_from_slice(&[0, 80]);
            }
            v
        }),
        ("first not at midnight", vec![0x10, 1, 0, 1, 0, 80]),
        ("not increasing", vec![0x10, 2, 0, 0, 0, 80, 0, 0, 0, 90]),
        (
            "start at minute 1440",
            vec![0x10, 2, 0, 0, 0, 80, 0x05, 0xA0, 0, 90],
        ),
    ];
    for (name, input) in cases {
        assert!(
            matches!(
                CommandBody::decode(&input),
                Err(DecodeError::InvalidField(_))
            ),
            "{name}"
        );
    }
}

#[test]
fn signed_command_round_trips() {
    for (index, body) in every_body().into_iter().enumerate() {
        let mut env = envelope(index as u64 + 1, body);
        if index % 2 == 0 {
            env.challenge = Some([index as u8; 16]);
        }
        let bytes = signed_bytes(&env);
        let decoded = SignedCommand::decode(&bytes).unwrap();
        assert_eq!(decoded.envelope(), &env);
        assert_eq!(decoded.encoded_len(), bytes.len());
        assert_eq!(decoded.verify(&command_key().verifying_key()), Ok(&env));
    }
}

#[test]
fn signed_command_layout_is_pinned() {
    let mut env = envelope(
        0x0102,
        CommandBody::Pump(PumpCommand::Bolus(Insulin(0x01F4))),
    );
    env.expires_at_ms = 0x0A0B;
    let bytes = signed_bytes(&env);

    assert_eq!(bytes.len(), 54 + 1 + 3 + 64);
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(&bytes[1..17], &DEVICE_ID, "device id");
    assert_eq!(&bytes[17..33], &env.command_id, "command id");
    assert_eq!(&bytes[33..41], &[0, 0, 0, 0, 0, 0, 1, 2], "sequence");
    assert_eq!(&bytes[41..45], &EPOCH.to_be_bytes(), "epoch");
    assert_eq!(&bytes[45..53], &[0, 0, 0, 0, 0, 0, 0x0A, 0x0B], "expiry");
    assert_eq!(bytes[53], 0, "challenge flag");
    assert_eq!(bytes[54], 3, "body length");
    assert_eq!(&bytes[55..58], &[0x12, 0x01, 0xF4], "bolus body");

    let mut message = SIGNATURE_DOMAIN.to_vec();
    message.extend_from_slice(&bytes[..58]);
    let signature = ed25519_dalek::Signature::from_bytes(bytes[58..].try_into().unwrap());
    let key = command_key().verifying_key();
    assert!(
        key.verify_strict(&message, &signature).is_ok(),
        "signed message is domain || fields"
    );
}

#[test]
fn challenge_occupies_sixteen_bytes_after_flag() {
    let mut env = envelope(1, CommandBody::Pump(PumpCommand::Suspend));
    env.challenge = Some([0xC5; 16]);
    let bytes = signed_bytes(&env);
    assert_eq!(bytes[53], 1);
    assert_eq!(&bytes[54..70], &[0xC5; 16]);
    assert_eq!(bytes[70], 1, "body length");
    assert_eq!(bytes.len(), 70 + 1 + 1 + 64);
}

#[test]
fn signed_command_rejects_malformed_input() {
    let bytes = signed_bytes(&envelope(
        1,
        CommandBody::Pump(PumpCommand::Bolus(Insulin(100))),
    ));

    for cut in 0..bytes.len() {
        assert!(
            SignedCommand::decode(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        SignedCommand::decode(&long),
        Err(DecodeError::TrailingBytes)
    );

    let mut version = bytes.clone();
    version[0] = 2;
    assert_eq!(
        SignedCommand::decode(&version),
        Err(DecodeError::UnsupportedVersion(2))
    );

    let mut flag = bytes.clone();
    flag[53] = 2;
    assert_eq!(
        SignedCommand::decode(&flag),
        Err(DecodeError::InvalidField("challenge flag"))
    );

    let mut empty_body = bytes.clone();
    empty_body[54] = 0;
    assert_eq!(
        SignedCommand::decode(&empty_body),
        Err(DecodeError::InvalidField("body length"))
    );

    let mut oversized_body = bytes.clone();
    oversized_body[54] = MAX_BODY_LEN as u8 + 1;
    assert_eq!(
        SignedCommand::decode(&oversized_body),
        Err(DecodeError::InvalidField("body length"))
    );

    // A body length one too long takes the first signature byte into the body.
    let mut long_body = bytes.clone();
    long_body[54] = 4;
    assert!(SignedCommand::decode(&long_body).is_err());
}

#[test]
fn signature_covers_every_bit() {
    let mut env = envelope(9, CommandBody::Pump(PumpCommand::Bolus(Insulin(1200))));
    env.challenge = Some([0x3C; 16]);
    let bytes = signed_bytes(&env);
    let key = command_key().verifying_key();

    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut changed = bytes.clone();
            changed[index] ^= 1 << bit;
            let accepted = SignedCommand::decode(&changed)
                .map(|c| c.verify(&key).is_ok())
                .unwrap_or(false);
            assert!(
                !accepted,
                "flipped bit {bit} of byte {index} still verifies"
            );
        }
    }
}

#[test]
fn signature_fails_for_each_changed_field() {
    let mut env = envelope(9, CommandBody::Pump(PumpCommand::Bolus(Insulin(1200))));
    env.challenge = Some([0x3C; 16]);
    let signed = env.sign(&command_key());
    let key = command_key().verifying_key();

    let mut variants = Vec::new();
    let mut e = env;
    e.device_id[15] ^= 1;
    variants.push(("device id", e));
    let mut e = env;
    e.command_id[0] ^= 1;
    variants.push(("command id", e));
    let mut e = env;
    e.sequence += 1;
    variants.push(("sequence", e));
    let mut e = env;
    e.epoch += 1;
    variants.push(("epoch", e));
    let mut e = env;
    e.expires_at_ms += 1;
    variants.push(("expiry", e));
    let mut e = env;
    e.challenge = None;
    variants.push(("challenge removed", e));
    let mut e = env;
    e.challenge = Some([0x3D; 16]);
    variants.push(("challenge changed", e));
    let mut e = env;
    e.body = CommandBody::Pump(PumpCommand::Bolus(Insulin(1201)));
    variants.push(("body", e));

    for (name, changed) in variants {
        let mut out = [0u8; MAX_SIGNED_COMMAND_LEN];
        // Re-encode the changed envelope with the original signature.
        let original_len = signed.encode(&mut out).unwrap();
        let signature = out[original_len - 64..original_len].to_vec();
        let resigned = changed.sign(&command_key());
        let len = resigned.encode(&mut out).unwrap();
        out[len - 64..len].copy_from_slice(&signature);
        let forged = SignedCommand::decode(&out[..len]).unwrap();
        assert!(forged.verify(&key).is_err(), "{name}");
    }
}

#[test]
fn signature_fails_under_another_key() {
    let signed = envelope(1, CommandBody::Pump(PumpCommand::Suspend)).sign(&command_key());
    let other = ed25519_dalek::SigningKey::from_bytes(&[0x43; 32]).verifying_key();
    assert!(signed.verify(&other).is_err());
}

#[test]
fn encode_reports_small_buffer() {
    let signed = envelope(1, CommandBody::Pump(PumpCommand::Suspend)).sign(&command_key());
    let mut out = [0u8; 10];
    assert_eq!(
        signed.encode(&mut out),
        Err(BufferTooSmall {
            needed: signed.encoded_len()
        })
    );
}

fn every_ack() -> Vec<Acknowledgement> {
    let summaries = [
        StateSummary::Pump(PumpSummary {
            suspended: true,
            temp_basal_active: true,
            reservoir: Insulin(15_000),
            insulin_on_board: Insulin(320),
            delivered_today: 3_456,
            max: PumpMaxSettings {
                max_bolus: Insulin(1000),
                max_basal: InsulinRate(400),
                max_insulin_on_board: Insulin(2500),
            },
        }),
        StateSummary::Pacemaker(common::pacemaker_settings()),
        StateSummary::Cgm(CgmThresholds {
            low_mg_dl: 70,
            high_mg_dl: 250,
        }),
    ];
    let mut outcomes: Vec<Outcome> = summaries.into_iter().map(Outcome::Executed).collect();
    for code in 0..=u8::MAX {
        if let Some(reason) = RejectReason::from_code(code) {
            outcomes.push(Outcome::Rejected(reason));
        }
    }
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| Acknowledgement {
            command_id: [i as u8; 16],
            sequence: i as u64 * 1000,
            outcome,
        })
        .collect()
}

#[test]
fn every_reason_code_round_trips() {
    let mut count = 0;
    for code in 0..=u8::MAX {
        if let Some(reason) = RejectReason::from_code(code) {
            assert_eq!(reason.code(), code);
            count += 1;
        }
    }
    assert_eq!(count, 14 + LimitViolation::ALL.len());
}

#[test]
fn acknowledgement_round_trips() {
    for ack in every_ack() {
        let mut out = [0u8; MAX_ACK_LEN];
        let len = ack.encode(&mut out).unwrap();
        assert_eq!(len, ack.encoded_len());
        assert_eq!(Acknowledgement::decode(&out[..len]), Ok(ack));
    }
}

#[test]
fn acknowledgement_rejects_malformed_input() {
    for ack in every_ack() {
        let mut out = [0u8; MAX_ACK_LEN + 1];
        let len = ack.encode(&mut out).unwrap();
        for cut in 0..len {
            assert!(
                Acknowledgement::decode(&out[..cut]).is_err(),
                "{ack:?} cut at {cut}"
            );
        }
        assert_eq!(
            Acknowledgement::decode(&out[..len + 1]),
            Err(DecodeError::TrailingBytes)
        );
    }
    let mut rejected = [0u8; 26];
    rejected[0] = 1;
    rejected[25] = 0x3F;
    assert_eq!(
        Acknowledgement::decode(&rejected),
        Err(DecodeError::UnknownTag(0x3F))
    );
    rejected[0] = 9;
    assert_eq!(
        Acknowledgement::decode(&rejected),
        Err(DecodeError::UnsupportedVersion(9))
    );

    let pump_ack = &every_ack()[0];
    let mut out = [0u8; MAX_ACK_LEN];
    let len = pump_ack.encode(&mut out).unwrap();
    out[27] |= 0b100;
    assert_eq!(
        Acknowledgement::decode(&out[..len]),
        Err(DecodeError::InvalidField("pump summary flags"))
    );
}

#[test]
fn execution_record_round_trips() {
    let record = ExecutionRecord {
        sequence: 0x0102_0304_0506_0708,
        command_id: [0xAB; 16],
    };
    let bytes = record.to_bytes();
    assert_eq!(&bytes[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(ExecutionRecord::from_bytes(&bytes), record);
}
