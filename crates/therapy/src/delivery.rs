//! The gateway's side of therapy commands: status reports, telemetry and
//! acknowledgements in, queued signed commands out.
//!
//! The gateway holds no command-signing key. What it can do with the outbox is send the
//! commands the service signed, so a compromised gateway can delay, withhold or repeat
//! them, and the device's executor rejects repeats, stale epochs and expired commands.

use std::num::NonZeroU64;
use std::path::Path;

use medtunnel_audit::{CheckpointKey, Outcome, CHECKPOINT_KEY_FILE};
use medtunnel_command::{Acknowledgement, RejectReason};
use medtunnel_records::{CommandBytes, DeviceStatus, Record, StatusRequest};
use rusqlite::{params, OptionalExtension};
use serde_json::json;

use crate::db::{entry, Db};
use crate::error::{TherapyError, TherapyResult};
use crate::model::{reject_reason_name, RequestState};
use crate::rows::{self, to_i64};
use crate::DATABASE_FILE;

/// Audit actor of the gateway's steps.
const GATEWAY_ACTOR: &str = "service:gateway";

/// A signed command waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCommand {
    /// Outbox row id.
    pub outbox_id: i64,
    /// Change request the command belongs to.
    pub request_id: i64,
    /// The signed command as the device receives it.
    pub command: CommandBytes,
}

/// What the gateway should send a device now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Commands to send, in sequence order.
    pub commands: Vec<OutboxCommand>,
    /// A status request, when the service waits for a status or a fresh challenge.
    pub status_request: Option<StatusRequest>,
}

/// The therapy tables and the audit log as the gateway uses them.
pub struct CommandDelivery {
    db: Db,
}

/// An outbox row that a status report may settle.
struct OpenCommand {
    outbox_id: i64,
    request_id: i64,
    command_id: Vec<u8>,
    sequence: u64,
    epoch: u32,
    challenge: Option<Vec<u8>>,
}

impl CommandDelivery {
    /// Opens the therapy tables and audit log in `DIR/cloud.db`, signing audit
    /// checkpoints with `DIR/audit-key` when that file exists.
    pub fn open_dir(dir: &Path, now_ms: i64) -> TherapyResult<Self> {
        Self::open_beside(&dir.join(DATABASE_FILE), now_ms)
    }

    /// Opens the therapy tables and audit log in the database at `db_path`, signing
    /// audit checkpoints with the `audit-key` file in the same directory when it exists.
    /// Without it, entries are chained but no checkpoint is signed.
    pub fn open_beside(db_path: &Path, now_ms: i64) -> TherapyResult<Self> {
        let key_path = db_path.with_file_name(CHECKPOINT_KEY_FILE);
        let key = if key_path.exists() {
            Some(CheckpointKey::load_file(&key_path)?)
        } else {
            None
        };
        Self::open(db_path, key, now_ms)
    }

    /// Opens the therapy tables and audit log in the database at `path`.
    pub fn open(path: &Path, key: Option<CheckpointKey>, now_ms: i64) -> TherapyResult<Self> {
        let interval = NonZeroU64::MIN.saturating_add(15);
        Ok(Self {
            db: Db::open(path, key, interval, now_ms)?,
        })
    }

    /// Whether the device is enrolled for therapy commands.
    pub fn is_enrolled(&self, device_id: &str) -> TherapyResult<bool> {
        Ok(rows::load_device(self.db.conn(), device_id)?.is_some())
    }

    /// Stores a status report of an enrolled device and settles the outbox against it:
    /// a command the device reports as executed is acknowledged, a command of an earlier
    /// boot epoch or with a replaced challenge goes back to signing, and a command
    /// passed over by a later one fails. Reports of devices not enrolled are ignored.
    pub fn record_status(
        &mut self,
        device_id: &str,
        status: &DeviceStatus,
        now_ms: i64,
        source: &str,
    ) -> TherapyResult<()> {
        let Some(device) = rows::load_device(self.db.conn(), device_id)? else {
            return Ok(());
        };
        let previous_epoch = device.status.map(|s| s.epoch);
        if previous_epoch != Some(status.epoch) {
            let audit = entry(
                now_ms,
                device_actor(device_id),
                "device.boot",
                Outcome::Success,
                device_id,
            )
            .source(source)
            .detail(json!({ "epoch": status.epoch, "previous_epoch": previous_epoch }));
            self.db.audit(audit)?;
        }
        for open in self.open_commands(device_id)? {
            self.settle(device_id, &open, status, now_ms, source)?;
        }
        let mut bytes = Vec::new();
        Record::DeviceStatus(*status)
            .encode_into(&mut bytes)
            .map_err(|e| TherapyError::Corrupt {
                column: "therapy_devices.last_status",
                problem: e.to_string(),
            })?;
        let fresh_challenge = status.challenge.is_some();
        self.db.conn().execute(
            "UPDATE therapy_devices SET last_status = ?2, status_at_ms = ?3,
                 challenge_used = CASE WHEN ?4 THEN 0 ELSE challenge_used END,
                 status_wanted = CASE WHEN ?4 OR status_wanted = 1 THEN 0 ELSE status_wanted END
             WHERE device_id = ?1",
            params![device_id, bytes, now_ms, fresh_challenge],
        )?;
        Ok(())
    }

    /// Stores the latest telemetry record of an enrolled device. Telemetry carries health
    /// values, so it is not audited.
    pub fn record_telemetry(
        &mut self,
        device_id: &str,
        record: &Record,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let mut bytes = Vec::new();
        record
            .encode_into(&mut bytes)
            .map_err(|e| TherapyError::Corrupt {
                column: "therapy_devices.last_telemetry",
                problem: e.to_string(),
            })?;
        self.db.conn().execute(
            "UPDATE therapy_devices SET last_telemetry = ?2, telemetry_at_ms = ?3 WHERE device_id = ?1",
            params![device_id, bytes, now_ms],
        )?;
        Ok(())
    }

    /// Returns the latest telemetry record of a device and when it arrived.
    pub fn latest_telemetry(&self, device_id: &str) -> TherapyResult<Option<(Record, i64)>> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> = self
            .db
            .conn()
            .query_row(
                "SELECT last_telemetry, telemetry_at_ms FROM therapy_devices WHERE device_id = ?1",
                [device_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((Some(bytes), Some(at))) = row else {
            return Ok(None);
        };
        let record = Record::decode(&bytes).map_err(|e| TherapyError::Corrupt {
            column: "therapy_devices.last_telemetry",
            problem: e.to_string(),
        })?;
        Ok(Some((record, at)))
    }

    /// Records the device's acknowledgement of a command: the request becomes
    /// `acknowledged` or `failed` with the device's reason. An acknowledgement of a
    /// command whose request is final (a repeated command the device rejected) changes
    /// no request and is audited as a rejected replay.
    pub fn record_ack(
        &mut self,
        device_id: &str,
        ack: &Acknowledgement,
        now_ms: i64,
        source: &str,
    ) -> TherapyResult<()> {
        let row: Option<(i64, i64)> = self
            .db
            .conn()
            .query_row(
                "SELECT id, request_id FROM command_outbox
                 WHERE device_id = ?1 AND command_id = ?2
                 ORDER BY state IN ('sent', 'delivered', 'queued') DESC, id DESC LIMIT 1",
                params![device_id, ack.command_id.as_slice()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let reason = match ack.outcome {
            medtunnel_command::ack::Outcome::Executed(_) => None,
            medtunnel_command::ack::Outcome::Rejected(reason) => Some(reason),
        };
        let detail = json!({
            "command_id": hex::encode(ack.command_id),
            "sequence": ack.sequence,
            "outcome": reason.map_or("executed".to_owned(), reject_reason_name),
        });
        let Some((outbox_id, request_id)) = row else {
            let audit = entry(
                now_ms,
                device_actor(device_id),
                "command.ack",
                Outcome::Failure,
                device_id,
            )
            .source(source)
            .detail(json!({ "unknown_command": true, "ack": detail }));
            return self.db.audit(audit);
        };
        self.db.conn().execute(
            "UPDATE command_outbox SET state = 'done' WHERE id = ?1 AND state != 'expired'",
            [outbox_id],
        )?;
        let (state, text) = match reason {
            None | Some(RejectReason::AlreadyExecuted) => (RequestState::Acknowledged, None),
            Some(reason) => (RequestState::Failed, Some(reject_reason_name(reason))),
        };
        let changed = rows::set_state(self.db.conn(), request_id, state, text.as_deref(), now_ms)?;
        let (action, outcome) = match (changed, reason) {
            (true, None) => ("command.ack", Outcome::Success),
            (true, Some(RejectReason::AlreadyExecuted)) => ("command.ack", Outcome::Success),
            (true, Some(_)) => ("command.ack", Outcome::Failure),
            (false, None) => ("command.ack", Outcome::Success),
            (false, Some(_)) => ("command.replay_rejected", Outcome::Denied),
        };
        let audit = entry(now_ms, device_actor(device_id), action, outcome, device_id)
            .source(source)
            .target(request_id.to_string())
            .detail(detail);
        self.db.audit(audit)
    }

    /// Expires commands past their expiry that the device has not received, and returns
    /// what to send the device on connection `connection`: queued commands, and commands
    /// sent on an earlier connection that the device did not confirm receiving.
    pub fn due(&mut self, device_id: &str, connection: &str, now_ms: i64) -> TherapyResult<Due> {
        self.expire_overdue(device_id, now_ms)?;
        let Some(device) = rows::load_device(self.db.conn(), device_id)? else {
            return Ok(Due::default());
        };
        let mut statement = self.db.conn().prepare(
            "SELECT id, request_id, signed_command FROM command_outbox
             WHERE device_id = ?1
               AND (state = 'queued' OR (state = 'sent' AND connection IS NOT ?2))
             ORDER BY sequence, id",
        )?;
        let raw = statement
            .query_map(params![device_id, connection], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut commands = Vec::with_capacity(raw.len());
        for (outbox_id, request_id, bytes) in raw {
            let command = CommandBytes::new(&bytes).ok_or(TherapyError::Corrupt {
                column: "command_outbox.signed_command",
                problem: format!("{} bytes", bytes.len()),
            })?;
            commands.push(OutboxCommand {
                outbox_id,
                request_id,
                command,
            });
        }
        let status_request = (device.status_wanted > 0).then_some(StatusRequest {
            challenge_wanted: device.status_wanted == 2,
        });
        Ok(Due {
            commands,
            status_request,
        })
    }

    /// Records that a command is about to leave on connection `connection` under tunnel
    /// sequence number `tunnel_seq`. Call it before sending, so the audit log never
    /// misses a delivery.
    pub fn mark_sent(
        &mut self,
        device_id: &str,
        command: &OutboxCommand,
        connection: &str,
        tunnel_seq: u64,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let audit = entry(
            now_ms,
            GATEWAY_ACTOR,
            "command.send",
            Outcome::Success,
            device_id,
        )
        .source(connection)
        .target(command.request_id.to_string())
        .detail(json!({ "tunnel_seq": tunnel_seq }));
        self.db.audit(audit)?;
        self.db.conn().execute(
            "UPDATE command_outbox SET state = 'sent', sent_at_ms = coalesce(sent_at_ms, ?2),
                 connection = ?3, tunnel_seq = ?4
             WHERE id = ?1 AND state IN ('queued', 'sent')",
            params![command.outbox_id, now_ms, connection, to_i64(tunnel_seq)],
        )?;
        let request = rows::load_request(self.db.conn(), command.request_id)?;
        if request.is_some_and(|r| r.state == RequestState::Approved) {
            rows::set_state(
                self.db.conn(),
                command.request_id,
                RequestState::Sent,
                None,
                now_ms,
            )?;
        }
        Ok(())
    }

    /// Records that the tunnel acknowledged receipt of the outbox rows `outbox_ids`.
    pub fn mark_delivered(
        &mut self,
        device_id: &str,
        outbox_ids: &[i64],
        now_ms: i64,
    ) -> TherapyResult<()> {
        for &outbox_id in outbox_ids {
            let changed = self.db.conn().execute(
                "UPDATE command_outbox SET state = 'delivered' WHERE id = ?1 AND state = 'sent'",
                [outbox_id],
            )?;
            if changed > 0 {
                let audit = entry(
                    now_ms,
                    GATEWAY_ACTOR,
                    "command.deliver",
                    Outcome::Success,
                    device_id,
                )
                .detail(json!({ "outbox_id": outbox_id }));
                self.db.audit(audit)?;
            }
        }
        Ok(())
    }

    fn open_commands(&self, device_id: &str) -> TherapyResult<Vec<OpenCommand>> {
        let mut statement = self.db.conn().prepare(
            "SELECT id, request_id, command_id, sequence, epoch, challenge FROM command_outbox
             WHERE device_id = ?1 AND state IN ('queued', 'sent', 'delivered') ORDER BY id",
        )?;
        let rows = statement
            .query_map([device_id], |row| {
                Ok(OpenCommand {
                    outbox_id: row.get(0)?,
                    request_id: row.get(1)?,
                    command_id: row.get(2)?,
                    sequence: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                    epoch: row.get(4)?,
                    challenge: row.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Settles one open command against a status report.
    fn settle(
        &mut self,
        device_id: &str,
        open: &OpenCommand,
        status: &DeviceStatus,
        now_ms: i64,
        source: &str,
    ) -> TherapyResult<()> {
        let executed = status.last_executed_sequence >= open.sequence;
        let (state, outbox_state, why) = if executed
            && status.last_executed_command_id.as_slice() == open.command_id.as_slice()
        {
            (RequestState::Acknowledged, "done", "executed_per_status")
        } else if executed {
            (RequestState::Failed, "done", "passed_by_later_command")
        } else if open.epoch != status.epoch {
            // The device rebooted before running the command, so it can never run;
            // signing it again for the new epoch is safe.
            (RequestState::Approved, "superseded", "device_rebooted")
        } else if open.challenge.is_some()
            && status.challenge.is_some()
            && open.challenge.as_deref() != status.challenge.as_ref().map(|c| c.as_slice())
        {
            // The device replaced the challenge this command carries, so it can never
            // run; signing it again with the new challenge is safe.
            (RequestState::Approved, "superseded", "challenge_replaced")
        } else {
            return Ok(());
        };
        self.db.conn().execute(
            "UPDATE command_outbox SET state = ?2 WHERE id = ?1",
            params![open.outbox_id, outbox_state],
        )?;
        let reason = (state == RequestState::Failed).then_some(why);
        if state == RequestState::Approved {
            self.db.conn().execute(
                "UPDATE change_requests SET state = 'approved', updated_at_ms = ?2
                 WHERE id = ?1 AND state IN ('approved', 'sent')",
                params![open.request_id, now_ms],
            )?;
        } else {
            rows::set_state(self.db.conn(), open.request_id, state, reason, now_ms)?;
        }
        let (action, outcome) = match state {
            RequestState::Acknowledged => ("command.ack", Outcome::Success),
            RequestState::Failed => ("command.fail", Outcome::Failure),
            _ => ("command.supersede", Outcome::Success),
        };
        let audit = entry(now_ms, device_actor(device_id), action, outcome, device_id)
            .source(source)
            .target(open.request_id.to_string())
            .detail(json!({ "command_id": hex::encode(&open.command_id), "reason": why }));
        self.db.audit(audit)
    }

    fn expire_overdue(&mut self, device_id: &str, now_ms: i64) -> TherapyResult<()> {
        let mut statement = self.db.conn().prepare(
            "SELECT id, request_id, hex(command_id) FROM command_outbox
             WHERE device_id = ?1 AND state IN ('queued', 'sent') AND expires_at_ms < ?2",
        )?;
        let overdue = statement
            .query_map(params![device_id, now_ms], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(statement);
        for (outbox_id, request_id, command_id) in overdue {
            self.db.conn().execute(
                "UPDATE command_outbox SET state = 'expired' WHERE id = ?1",
                [outbox_id],
            )?;
            rows::set_state(
                self.db.conn(),
                request_id,
                RequestState::Expired,
                Some("expired_before_delivery"),
                now_ms,
            )?;
            let audit = entry(
                now_ms,
                GATEWAY_ACTOR,
                "command.expire",
                Outcome::Failure,
                device_id,
            )
            .target(request_id.to_string())
            .detail(json!({ "command_id": command_id.to_lowercase() }));
            self.db.audit(audit)?;
        }
        Ok(())
    }
}

fn device_actor(device_id: &str) -> String {
    format!("device:{device_id}")
}
