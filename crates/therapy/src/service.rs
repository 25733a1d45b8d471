//! The therapy service: change requests through policy, review and co-signature, and
//! signing of approved commands into the outbox that the gateway delivers.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use medtunnel_audit::{CheckpointKey, Outcome, CHECKPOINT_KEY_FILE, CHECKPOINT_PUBLIC_KEY_FILE};
use medtunnel_command::envelope::MAX_SIGNED_COMMAND_LEN;
use medtunnel_command::{CommandEnvelope, Risk};
use medtunnel_policy::{
    ChangeRequest, CurrentSettings, Decision, PatientPolicy, Person, PolicyContext, PumpSettings,
    RecentChange, Role,
};
use medtunnel_records::{command_device_id, StatusSettings};
use rand_core::{OsRng, RngCore};
use rusqlite::params;
use serde_json::json;

use crate::db::{entry, Db};
use crate::error::{TherapyError, TherapyResult};
use crate::model::{kind, summarize, RequestState, RequestView, Requester};
use crate::rows::{self, DeviceRow, RequestRow};
use crate::{defaults, keys, DATABASE_FILE};

/// Audit actor of the signing step.
const SIGNER_ACTOR: &str = "service:therapy";
/// Window of the policy's recent-change history: one day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Settings of the therapy service.
#[derive(Debug, Clone)]
pub struct TherapyConfig {
    /// Lifetime of a signed command, on the device's session clock and on the cloud's
    /// clock.
    pub command_lifetime_ms: u64,
    /// Oldest device challenge the service signs with. The device keeps a challenge for
    /// 60 s, so the default of 30 s leaves the command 30 s to arrive.
    pub challenge_max_age_ms: u64,
    /// Approved requests not signed within this time expire.
    pub approval_timeout_ms: u64,
    /// The audit log signs a checkpoint every this many entries.
    pub checkpoint_interval: NonZeroU64,
}

impl Default for TherapyConfig {
    /// Commands live 5 minutes, challenges are used up to 30 s old, approvals wait at
    /// most an hour for a device status, and checkpoints follow every 16 entries.
    fn default() -> Self {
        Self {
            command_lifetime_ms: 5 * 60 * 1000,
            challenge_max_age_ms: 30_000,
            approval_timeout_ms: 60 * 60 * 1000,
            checkpoint_interval: NonZeroU64::MIN.saturating_add(15),
        }
    }
}

/// The cloud's therapy service, called by the HTTP API.
///
/// It has the command-signing key, so it runs apart from the tunnel gateway, which
/// delivers the signed commands from the outbox without being able to sign any.
/// Call [`TherapyService::sign_pending`] on a timer (every few hundred milliseconds):
/// it signs approved requests once the device's status or a fresh challenge is in.
pub struct TherapyService {
    db: Db,
    dir: PathBuf,
    key: SigningKey,
    config: TherapyConfig,
}

impl TherapyService {
    /// Opens the service on the cloud directory `dir`: the database `DIR/cloud.db`, the
    /// audit checkpoint key `DIR/audit-key` and the command-signing key
    /// `DIR/command-key`, each key created with mode 0600 and its public key file on
    /// first use.
    pub fn open(dir: &Path, config: TherapyConfig, now_ms: i64) -> TherapyResult<Self> {
        let checkpoint_key = load_or_create_checkpoint_key(dir)?;
        let key = keys::load_or_create_signing_key(dir)?;
        let db = Db::open(
            &dir.join(DATABASE_FILE),
            Some(checkpoint_key),
            config.checkpoint_interval,
            now_ms,
        )?;
        Ok(Self {
            db,
            dir: dir.to_owned(),
            key,
            config,
        })
    }

    /// Public half of the command-signing key, which every pump and pacemaker trusts.
    pub fn command_public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Path of the command-signing public key file.
    pub fn command_public_key_path(&self) -> PathBuf {
        self.dir.join(keys::COMMAND_PUBLIC_KEY_FILE)
    }

    /// Enrolls a registered pump or pacemaker for therapy commands of `patient_id`, and
    /// gives the patient the example policy for its model if the policy has no bounds
    /// for it yet. Enrolling again for the same patient changes nothing.
    pub fn enroll_device(
        &mut self,
        operator: &Requester,
        device_id: &str,
        patient_id: &str,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let model = registered_model(&self.dir, device_id)?;
        if let Some(existing) = rows::load_device(self.db.conn(), device_id)? {
            if existing.patient_id == patient_id {
                return Ok(());
            }
            return Err(TherapyError::DevicePatientMismatch {
                device_id: device_id.to_owned(),
                patient_id: patient_id.to_owned(),
            });
        }
        self.db.conn().execute(
            "INSERT INTO therapy_devices (device_id, patient_id, model, enrolled_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![device_id, patient_id, model, now_ms],
        )?;
        let mut policy = rows::load_policy(self.db.conn(), patient_id)?
            .unwrap_or_else(|| defaults::empty_policy(patient_id));
        defaults::add_example_bounds(&mut policy, model);
        rows::store_policy(self.db.conn(), &policy, &operator.actor(), now_ms)?;
        let audit = entry(
            now_ms,
            operator.actor(),
            "device.enroll",
            Outcome::Success,
            device_id,
        )
        .actor_role(rows::role_name(operator.role))
        .target(patient_id)
        .detail(json!({ "model": model, "example_policy": true }));
        self.db.audit(with_source(audit, operator))
    }

    /// Replaces a patient's policy. Only clinicians may.
    pub fn set_policy(
        &mut self,
        clinician: &Requester,
        policy: PatientPolicy,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let patient_id = policy.patient_id.clone();
        if clinician.role != Role::Clinician {
            self.audit_denied(
                clinician,
                "therapy.policy_set",
                &patient_id,
                None,
                "role",
                now_ms,
            )?;
            return Err(TherapyError::NotPermitted(format!(
                "only clinicians set policies, and {} is a {}",
                clinician.account_id,
                rows::role_name(clinician.role)
            )));
        }
        rows::store_policy(self.db.conn(), &policy, &clinician.actor(), now_ms)?;
        let audit = entry(
            now_ms,
            clinician.actor(),
            "therapy.policy_set",
            Outcome::Success,
            &patient_id,
        )
        .actor_role("clinician");
        self.db.audit(with_source(audit, clinician))
    }

    /// Returns a patient's policy.
    pub fn policy(&self, patient_id: &str) -> TherapyResult<Option<PatientPolicy>> {
        rows::load_policy(self.db.conn(), patient_id)
    }

    /// Records a change request, evaluates it against the patient's policy and, when it
    /// is approved, signs the command if the device's status allows.
    pub fn submit(
        &mut self,
        requester: &Requester,
        patient_id: &str,
        device_id: &str,
        body: medtunnel_command::CommandBody,
        now_ms: i64,
    ) -> TherapyResult<RequestView> {
        let device = self.enrolled_device(requester, device_id, patient_id, now_ms)?;
        let change = ChangeRequest {
            requester_id: requester.account_id.clone(),
            requester_role: requester.role,
            patient_id: patient_id.to_owned(),
            body,
            requested_at_ms: u64::try_from(now_ms).unwrap_or(0),
        };
        let decision = self.evaluate(&change, &device, None)?;
        let mut encoded = [0u8; medtunnel_command::body::MAX_BODY_LEN];
        // MAX_BODY_LEN is the longest body encoding.
        let len = body.encode(&mut encoded).unwrap_or(0);
        let state = state_of(&decision);
        self.db.conn().execute(
            "INSERT INTO change_requests (device_id, patient_id, requester_id, requester_role,
                 body, summary, state, reason, decision, reasons, created_at_ms, updated_at_ms,
                 approved_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11,
                 CASE WHEN ?7 = 'approved' THEN ?11 END)",
            params![
                device_id,
                patient_id,
                requester.account_id,
                rows::role_name(requester.role),
                &encoded[..len],
                summarize(&body),
                state.as_str(),
                rejection_reason(&decision),
                to_json(&decision),
                to_json(&vec![decision.reason().clone()]),
                now_ms,
            ],
        )?;
        let id = self.db.conn().last_insert_rowid();
        let audit = entry(
            now_ms,
            requester.actor(),
            "therapy.request",
            Outcome::Success,
            device_id,
        )
        .actor_role(rows::role_name(requester.role))
        .target(id.to_string())
        .detail(json!({ "patient_id": patient_id, "command": kind(&body) }));
        self.db.audit(with_source(audit, requester))?;
        self.audit_decision(id, device_id, &decision, now_ms)?;
        self.sign_if_approved(id, now_ms)
    }

    /// Records a clinician's review of a request that waits for one. Approving runs the
    /// policy again without the review-only rules; rejecting ends the request.
    pub fn review(
        &mut self,
        reviewer: &Requester,
        request_id: i64,
        approve: bool,
        now_ms: i64,
    ) -> TherapyResult<RequestView> {
        let request = self.load(request_id)?;
        let waiting = match request.state {
            RequestState::PendingReview => true,
            RequestState::NeedsCosign => !approve,
            _ => false,
        };
        if !waiting {
            return Err(invalid_state(&request, "reviewed"));
        }
        if reviewer.role != Role::Clinician || reviewer.account_id == request.requester_id {
            let why = "reviewer must be a clinician other than the requester";
            self.audit_denied(
                reviewer,
                "therapy.review",
                &request.device_id,
                Some(request_id),
                why,
                now_ms,
            )?;
            return Err(TherapyError::NotPermitted(format!(
                "{why}; {} may not review request {request_id}",
                reviewer.account_id
            )));
        }
        if !approve {
            rows::set_state(
                self.db.conn(),
                request_id,
                RequestState::Rejected,
                Some("rejected_by_reviewer"),
                now_ms,
            )?;
            self.db.conn().execute(
                "UPDATE change_requests SET reviewed_by = ?2 WHERE id = ?1",
                params![request_id, reviewer.account_id],
            )?;
            self.audit_action(
                reviewer,
                "therapy.review",
                &request,
                Outcome::Denied,
                json!({ "approve": false }),
                now_ms,
            )?;
            return self.request(request_id);
        }
        let device = self.device_row(&request.device_id)?;
        let change = change_of(&request);
        let person = person_of(reviewer);
        let decision = self.evaluate(&change, &device, Some(&person))?;
        self.audit_action(
            reviewer,
            "therapy.review",
            &request,
            Outcome::Success,
            json!({ "approve": true }),
            now_ms,
        )?;
        self.apply_decision(
            &request,
            &decision,
            Some(&reviewer.account_id),
            None,
            now_ms,
        )?;
        self.sign_if_approved(request_id, now_ms)
    }

    /// Records a second clinician's co-signature of a high-risk request, evaluates the
    /// request again with the current context, and signs it when still within policy.
    pub fn cosign(
        &mut self,
        cosigner: &Requester,
        request_id: i64,
        now_ms: i64,
    ) -> TherapyResult<RequestView> {
        let request = self.load(request_id)?;
        if request.state != RequestState::NeedsCosign {
            return Err(invalid_state(&request, "co-signed"));
        }
        let person = person_of(cosigner);
        let cosigned = match medtunnel_policy::cosign(&request.decision, &person) {
            Ok(decision) => decision,
            Err(error) => {
                let why = error.to_string();
                self.audit_denied(
                    cosigner,
                    "therapy.cosign",
                    &request.device_id,
                    Some(request_id),
                    &why,
                    now_ms,
                )?;
                return Err(TherapyError::NotPermitted(why));
            }
        };
        self.audit_action(
            cosigner,
            "therapy.cosign",
            &request,
            Outcome::Success,
            json!({}),
            now_ms,
        )?;
        // The co-signature does not re-run the rules, so evaluate again with today's
        // context; the co-signing clinician counts as the reviewer if no clinician reviewed it.
        let device = self.device_row(&request.device_id)?;
        let reviewer = request
            .reviewed_by
            .clone()
            .map(|id| Person {
                id,
                role: Role::Clinician,
            })
            .unwrap_or_else(|| person.clone());
        let fresh = self.evaluate(&change_of(&request), &device, Some(&reviewer))?;
        let decision = match fresh {
            Decision::Rejected { .. } => fresh,
            _ => cosigned,
        };
        self.apply_decision(
            &request,
            &decision,
            None,
            Some(&cosigner.account_id),
            now_ms,
        )?;
        self.sign_if_approved(request_id, now_ms)
    }

    /// Returns the device's last status report and when it arrived (Unix milliseconds),
    /// or `None` before the first report.
    pub fn device_status(
        &self,
        device_id: &str,
    ) -> TherapyResult<Option<(medtunnel_records::DeviceStatus, i64)>> {
        let device = self.device_row(device_id)?;
        Ok(device.status.zip(device.status_at_ms))
    }

    /// Returns one request.
    pub fn request(&self, request_id: i64) -> TherapyResult<RequestView> {
        Ok(self.load(request_id)?.view())
    }

    /// Returns a device's requests, oldest first.
    pub fn list(&self, device_id: &str) -> TherapyResult<Vec<RequestView>> {
        let requests = rows::list_requests(self.db.conn(), "device_id = ?1", &device_id)?;
        Ok(requests.iter().map(RequestRow::view).collect())
    }

    /// Signs every approved request that has no command in the outbox yet and whose
    /// device status (and, for high-risk changes, fresh challenge) is in; asks the
    /// gateway for a status where it is not. Approved requests older than the approval
    /// timeout expire. Returns the number of commands signed.
    pub fn sign_pending(&mut self, now_ms: i64) -> TherapyResult<usize> {
        let approved = rows::list_requests(self.db.conn(), "state = ?1", &"approved")?;
        let mut signed = 0;
        for request in approved {
            if self.has_live_command(request.id)? {
                continue;
            }
            let approved_at = request.approved_at_ms.unwrap_or(request.updated_at_ms);
            if now_ms.saturating_sub(approved_at) > rows::to_i64(self.config.approval_timeout_ms) {
                self.expire_unsigned(&request, now_ms)?;
                continue;
            }
            if self.try_sign(&request, now_ms)? {
                signed += 1;
            }
        }
        Ok(signed)
    }

    fn sign_if_approved(&mut self, request_id: i64, now_ms: i64) -> TherapyResult<RequestView> {
        let request = self.load(request_id)?;
        if request.state == RequestState::Approved && !self.has_live_command(request_id)? {
            self.try_sign(&request, now_ms)?;
        }
        self.request(request_id)
    }

    /// Signs the request's command and queues it, or records why it has to wait.
    fn try_sign(&mut self, request: &RequestRow, now_ms: i64) -> TherapyResult<bool> {
        let device = self.device_row(&request.device_id)?;
        let (Some(status), Some(status_at)) = (device.status, device.status_at_ms) else {
            rows::want_status(self.db.conn(), &device.device_id, 1)?;
            return Ok(false);
        };
        let pump_max = match &status.settings {
            StatusSettings::Pump(pump) => Some(pump.max),
            _ => None,
        };
        let challenge = if request.body.risk(pump_max.as_ref()) == Risk::High {
            let age = now_ms.saturating_sub(status_at);
            match status.challenge {
                Some(c)
                    if !device.challenge_used
                        && age <= rows::to_i64(self.config.challenge_max_age_ms) =>
                {
                    Some(c)
                }
                _ => {
                    rows::want_status(self.db.conn(), &device.device_id, 2)?;
                    return Ok(false);
                }
            }
        } else {
            None
        };

        // The device clock advanced by at least the time since its report arrived, so
        // this estimate lags the device and the command lives at most its lifetime.
        let elapsed = u64::try_from(now_ms.saturating_sub(status_at)).unwrap_or(0);
        let device_now = status.session_clock_ms.saturating_add(elapsed);
        let sequence = device.next_sequence.max(status.last_executed_sequence + 1);
        let mut command_id = [0u8; 16];
        OsRng.fill_bytes(&mut command_id);
        let envelope = CommandEnvelope {
            device_id: command_device_id(&device.device_id),
            command_id,
            sequence,
            epoch: status.epoch,
            expires_at_ms: device_now.saturating_add(self.config.command_lifetime_ms),
            challenge,
            body: request.body,
        };
        let mut encoded = [0u8; MAX_SIGNED_COMMAND_LEN];
        // MAX_SIGNED_COMMAND_LEN is the longest signed command encoding.
        let len = envelope.sign(&self.key).encode(&mut encoded).unwrap_or(0);

        let audit = entry(
            now_ms,
            SIGNER_ACTOR,
            "command.sign",
            Outcome::Success,
            &device.device_id,
        )
        .target(request.id.to_string())
        .detail(json!({
            "command_id": hex::encode(command_id),
            "sequence": sequence,
            "epoch": status.epoch,
            "challenge": challenge.is_some(),
            "lifetime_ms": self.config.command_lifetime_ms,
        }));
        self.db.audit(audit)?;
        let expires_at = now_ms.saturating_add(rows::to_i64(self.config.command_lifetime_ms));
        let transaction = self.db.conn().unchecked_transaction()?;
        transaction.execute(
            "INSERT INTO command_outbox (request_id, device_id, command_id, sequence, epoch,
                 challenge, signed_command, expires_at_ms, state, queued_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9)",
            params![
                request.id,
                device.device_id,
                command_id.as_slice(),
                rows::to_i64(sequence),
                status.epoch,
                challenge.as_ref().map(|c| c.as_slice()),
                &encoded[..len],
                expires_at,
                now_ms,
            ],
        )?;
        transaction.execute(
            "UPDATE therapy_devices SET next_sequence = ?2,
                 challenge_used = CASE WHEN ?3 THEN 1 ELSE challenge_used END
             WHERE device_id = ?1",
            params![
                device.device_id,
                rows::to_i64(sequence + 1),
                challenge.is_some()
            ],
        )?;
        transaction.commit()?;
        Ok(true)
    }

    fn expire_unsigned(&mut self, request: &RequestRow, now_ms: i64) -> TherapyResult<()> {
        rows::set_state(
            self.db.conn(),
            request.id,
            RequestState::Expired,
            Some("not_signed_in_time"),
            now_ms,
        )?;
        let audit = entry(
            now_ms,
            SIGNER_ACTOR,
            "command.expire",
            Outcome::Failure,
            &request.device_id,
        )
        .target(request.id.to_string())
        .detail(json!({ "reason": "not_signed_in_time" }));
        self.db.audit(audit)
    }

    fn has_live_command(&self, request_id: i64) -> TherapyResult<bool> {
        let live: bool = self.db.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM command_outbox WHERE request_id = ?1
                 AND state IN ('queued', 'sent', 'delivered', 'done'))",
            [request_id],
            |row| row.get(0),
        )?;
        Ok(live)
    }

    fn evaluate(
        &self,
        change: &ChangeRequest,
        device: &DeviceRow,
        reviewer: Option<&Person>,
    ) -> TherapyResult<Decision> {
        let policy = rows::load_policy(self.db.conn(), &device.patient_id)?
            .unwrap_or_else(|| defaults::empty_policy(&device.patient_id));
        let context = self.context(device, change.requested_at_ms)?;
        Ok(match reviewer {
            None => medtunnel_policy::evaluate(change, &policy, &context),
            Some(person) => medtunnel_policy::evaluate_reviewed(change, person, &policy, &context)
                .map_err(|error| TherapyError::NotPermitted(error.to_string()))?,
        })
    }

    /// Builds the policy context: the settings and daily insulin from the device's last
    /// status, the hard limits of its model, and the patient's approved changes of the
    /// last day.
    fn context(&self, device: &DeviceRow, now_ms: u64) -> TherapyResult<PolicyContext> {
        let mut current = CurrentSettings::default();
        let mut delivered_today = 0;
        match device.status.as_ref().map(|s| s.settings) {
            Some(StatusSettings::Pump(pump)) => {
                current.pump = Some(PumpSettings {
                    basal_profile: pump.basal_profile,
                    max: pump.max,
                });
                delivered_today = pump.delivered_today;
            }
            Some(StatusSettings::Pacemaker(settings)) => current.pacemaker = Some(settings),
            Some(StatusSettings::Cgm(thresholds)) => current.cgm = Some(thresholds),
            None => {}
        }
        let since = rows::to_i64(now_ms).saturating_sub(DAY_MS);
        let mut statement = self.db.conn().prepare(
            "SELECT created_at_ms, requester_id FROM change_requests
             WHERE patient_id = ?1 AND created_at_ms > ?2
               AND state IN ('approved', 'sent', 'acknowledged')",
        )?;
        let recent_changes = statement
            .query_map(params![device.patient_id, since], |row| {
                Ok(RecentChange {
                    requested_at_ms: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                    requester_id: row.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicyContext {
            delivered_today,
            recent_changes,
            current,
            device_limits: defaults::device_limits(&device.model),
        })
    }

    fn apply_decision(
        &mut self,
        request: &RequestRow,
        decision: &Decision,
        reviewed_by: Option<&str>,
        cosigned_by: Option<&str>,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let mut reasons = request.reasons.clone();
        reasons.push(decision.reason().clone());
        self.db.conn().execute(
            "UPDATE change_requests SET decision = ?2, reasons = ?3,
                 reviewed_by = coalesce(?4, reviewed_by), cosigned_by = coalesce(?5, cosigned_by)
             WHERE id = ?1",
            params![
                request.id,
                to_json(decision),
                to_json(&reasons),
                reviewed_by,
                cosigned_by
            ],
        )?;
        let state = state_of(decision);
        rows::set_state(
            self.db.conn(),
            request.id,
            state,
            rejection_reason(decision).as_deref(),
            now_ms,
        )?;
        self.audit_decision(request.id, &request.device_id, decision, now_ms)
    }

    fn audit_decision(
        &mut self,
        id: i64,
        device_id: &str,
        decision: &Decision,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let outcome = match decision {
            Decision::Rejected { .. } => Outcome::Denied,
            _ => Outcome::Success,
        };
        let audit = entry(
            now_ms,
            "service:policy",
            "therapy.decision",
            outcome,
            device_id,
        )
        .target(id.to_string())
        .detail(json!({
            "state": state_of(decision).as_str(),
            "reason": decision.reason().code,
        }));
        self.db.audit(audit)
    }

    fn audit_action(
        &mut self,
        person: &Requester,
        action: &str,
        request: &RequestRow,
        outcome: Outcome,
        detail: serde_json::Value,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let audit = entry(now_ms, person.actor(), action, outcome, &request.device_id)
            .actor_role(rows::role_name(person.role))
            .target(request.id.to_string())
            .detail(detail);
        self.db.audit(with_source(audit, person))
    }

    fn audit_denied(
        &mut self,
        person: &Requester,
        action: &str,
        subject: &str,
        request_id: Option<i64>,
        why: &str,
        now_ms: i64,
    ) -> TherapyResult<()> {
        let mut audit = entry(now_ms, person.actor(), action, Outcome::Denied, subject)
            .actor_role(rows::role_name(person.role))
            .detail(json!({ "reason": why }));
        if let Some(id) = request_id {
            audit = audit.target(id.to_string());
        }
        self.db.audit(with_source(audit, person))
    }

    fn enrolled_device(
        &mut self,
        requester: &Requester,
        device_id: &str,
        patient_id: &str,
        now_ms: i64,
    ) -> TherapyResult<DeviceRow> {
        let device = rows::load_device(self.db.conn(), device_id)?;
        match device {
            Some(device) if device.patient_id == patient_id => Ok(device),
            Some(_) => {
                self.audit_denied(
                    requester,
                    "therapy.request",
                    device_id,
                    None,
                    "device_patient_mismatch",
                    now_ms,
                )?;
                Err(TherapyError::DevicePatientMismatch {
                    device_id: device_id.to_owned(),
                    patient_id: patient_id.to_owned(),
                })
            }
            None => {
                self.audit_denied(
                    requester,
                    "therapy.request",
                    device_id,
                    None,
                    "device_not_enrolled",
                    now_ms,
                )?;
                Err(TherapyError::DeviceNotEnrolled(device_id.to_owned()))
            }
        }
    }

    fn device_row(&self, device_id: &str) -> TherapyResult<DeviceRow> {
        rows::load_device(self.db.conn(), device_id)?
            .ok_or_else(|| TherapyError::DeviceNotEnrolled(device_id.to_owned()))
    }

    fn load(&self, request_id: i64) -> TherapyResult<RequestRow> {
        rows::load_request(self.db.conn(), request_id)?
            .ok_or(TherapyError::RequestNotFound(request_id))
    }
}

fn load_or_create_checkpoint_key(dir: &Path) -> TherapyResult<CheckpointKey> {
    let path = dir.join(CHECKPOINT_KEY_FILE);
    if path.exists() {
        return Ok(CheckpointKey::load_file(&path)?);
    }
    let key = CheckpointKey::create_file(&path)?;
    let public_path = dir.join(CHECKPOINT_PUBLIC_KEY_FILE);
    if !public_path.exists() {
        key.public_key().write_file(&public_path)?;
    }
    Ok(key)
}

/// Returns the registry's model name of a pump or pacemaker.
fn registered_model(dir: &Path, device_id: &str) -> TherapyResult<&'static str> {
    let not_enrollable = |problem: &str| TherapyError::NotEnrollable {
        device_id: device_id.to_owned(),
        problem: problem.to_owned(),
    };
    let store = medtunnel_store::Store::open(dir.join(DATABASE_FILE))
        .map_err(|error| not_enrollable(&format!("the registry cannot be opened: {error}")))?;
    let record = store
        .device(device_id)
        .map_err(|error| not_enrollable(&format!("the registry lookup failed: {error}")))?
        .ok_or_else(|| not_enrollable("it is not registered; provision it first"))?;
    match record.model {
        medtunnel_store::DeviceModel::InsulinPump => Ok("insulin_pump"),
        medtunnel_store::DeviceModel::Pacemaker => Ok("pacemaker"),
        medtunnel_store::DeviceModel::Cgm => Err(not_enrollable("a CGM takes no therapy commands")),
    }
}

fn with_source(entry: medtunnel_audit::NewEntry, person: &Requester) -> medtunnel_audit::NewEntry {
    match &person.source {
        Some(source) => entry.source(source.clone()),
        None => entry,
    }
}

fn state_of(decision: &Decision) -> RequestState {
    match decision {
        Decision::Approved { .. } => RequestState::Approved,
        Decision::NeedsReview { .. } => RequestState::PendingReview,
        Decision::NeedsCosign { .. } => RequestState::NeedsCosign,
        Decision::Rejected { .. } => RequestState::Rejected,
    }
}

fn rejection_reason(decision: &Decision) -> Option<String> {
    match decision {
        Decision::Rejected { reason } => Some(to_json(&reason.code).trim_matches('"').to_owned()),
        _ => None,
    }
}

fn change_of(request: &RequestRow) -> ChangeRequest {
    ChangeRequest {
        requester_id: request.requester_id.clone(),
        requester_role: request.requester_role,
        patient_id: request.patient_id.clone(),
        body: request.body,
        requested_at_ms: u64::try_from(request.created_at_ms).unwrap_or(0),
    }
}

fn person_of(requester: &Requester) -> Person {
    Person {
        id: requester.account_id.clone(),
        role: requester.role,
    }
}

fn invalid_state(request: &RequestRow, action: &'static str) -> TherapyError {
    TherapyError::InvalidState {
        request_id: request.id,
        state: request.state.as_str(),
        action,
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // The serialized types are plain structs and enums of strings and integers.
    serde_json::to_string(value).unwrap_or_default()
}
