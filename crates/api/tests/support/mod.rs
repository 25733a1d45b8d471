//! Test support: a populated API with one account per role, a request helper, and a
//! secret scanner that reads every response body and every log line of the tests.
//!
//! Every response that goes through [`send`] is recorded, and every `tracing` event of
//! the process is written into a buffer. [`assert_no_secrets`] fails if any of them
//! contains a password, an argon2 hash, a bearer token issued in the tests (other than
//! in the sign-in response that delivers it), a TOTP secret, or a device key or PSK.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support"
)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use medtunnel_api::admin::create_account;
use medtunnel_api::{
    AccessStore, Account, ApiConfig, ApiState, ManualClock, PasswordCost, Role, SqliteAccessStore,
    StoreHealthData,
};
use medtunnel_command::body::BasalProfile;
use medtunnel_command::limits::PumpMaxSettings;
use medtunnel_command::{Insulin, InsulinRate};
use medtunnel_records::{CgmMeasurement, DeviceStatus, PumpStatus, StatusSettings};
use medtunnel_store::provision::{
    provision_cloud, provision_devices, CloudIdentity, DeviceIdentityFile,
};
use medtunnel_store::{DeviceModel, IncomingReading, NewDevice, Store};
use medtunnel_therapy::{CommandDelivery, Requester, TherapyConfig, TherapyService};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

/// Start of the test clock: 2024-01-01 00:00:00 UTC.
pub const START_S: i64 = 1_704_067_200;
/// Glucose readings stored for the first CGM of the patient.
pub const READING_COUNT: u64 = 12;
/// Device time of the first reading; readings follow every 5 minutes.
pub const FIRST_READING_S: i64 = START_S - 3600;

/// Everything the scanner has seen and must look for.
#[derive(Default)]
struct Capture {
    bodies: Vec<String>,
    secrets: Vec<String>,
}

fn capture() -> &'static Mutex<Capture> {
    static CAPTURE: OnceLock<Mutex<Capture>> = OnceLock::new();
    CAPTURE.get_or_init(Mutex::default)
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer_buffer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            // Plain text, whatever features the workspace build enables (`ansi`).
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || BufferWriter(Arc::clone(&writer_buffer)))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test code installs a global subscriber");
        buffer
    })
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the log capture. Every test calls it first, through [`World::new`].
pub fn init_capture() {
    log_buffer();
}

/// Adds a value that must appear in no response body and no log line.
pub fn register_secret(secret: impl Into<String>) {
    let secret = secret.into();
    assert!(
        secret.len() >= PREFIX_LEN,
        "a secret this short would match by chance"
    );
    capture().lock().unwrap().secrets.push(secret);
}

/// Returns the captured log text.
pub fn logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

/// Returns the places where a secret, or `$argon2`, occurs in `texts`.
///
/// Secrets are indexed by their first [`PREFIX_LEN`] bytes, so each text is read once
/// however many secrets there are.
pub fn find_secrets(texts: &[String], secrets: &[String]) -> Vec<String> {
    let mut by_prefix: HashMap<&[u8], Vec<&str>> = HashMap::new();
    for secret in secrets {
        by_prefix
            .entry(&secret.as_bytes()[..PREFIX_LEN])
            .or_default()
            .push(secret);
    }
    let mut findings = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        if text.contains("$argon2") {
            findings.push(format!("text {index} contains an argon2 hash"));
        }
        let bytes = text.as_bytes();
        for (offset, window) in bytes.windows(PREFIX_LEN).enumerate() {
            for secret in by_prefix.get(window).into_iter().flatten() {
                if bytes[offset..].starts_with(secret.as_bytes()) {
                    findings.push(format!(
                        "text {index} contains the secret starting {:.4}",
                        secret
                    ));
                }
            }
        }
    }
    findings
}

/// Length of the prefix by which [`find_secrets`] indexes secrets; shorter secrets are
/// rejected by [`register_secret`].
const PREFIX_LEN: usize = 8;

/// Fails if any recorded body or log line contains a secret.
pub fn assert_no_secrets() {
    let (bodies, secrets) = {
        let capture = capture().lock().unwrap();
        (capture.bodies.clone(), capture.secrets.clone())
    };
    assert!(
        !secrets.is_empty(),
        "the scanner has no secrets to look for"
    );
    let body_findings = find_secrets(&bodies, &secrets);
    assert!(
        body_findings.is_empty(),
        "secrets in response bodies: {body_findings:?}"
    );
    let log_findings = find_secrets(&[logs()], &secrets);
    assert!(log_findings.is_empty(), "secrets in logs: {log_findings:?}");
}

/// A response with its parsed JSON body (`Value::Null` for an empty body).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Returns the error code of an error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    /// Returns the error message of an error body.
    pub fn error_message(&self) -> &str {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("<no error message>")
    }
}

/// Sends one request through the router and records the response body for the scanner.
/// A bearer token in a sign-in response is registered as a secret and recorded masked.
pub async fn send(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = Request::builder().method(method.clone()).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    send_request(
        router,
        request,
        method == Method::POST && path == "/v1/sessions",
    )
    .await
}

/// Sends a prepared request; see [`send`].
pub async fn send_request(router: &Router, request: Request<Body>, is_sign_in: bool) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    let mut text = String::from_utf8(bytes.to_vec()).expect("every body is UTF-8");
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("every body is JSON")
    };
    if is_sign_in {
        if let Some(token) = body["token"].as_str() {
            register_secret(token);
            text = text.replace(token, "<issued token>");
        }
    }
    capture().lock().unwrap().bodies.push(text);
    Reply {
        status,
        headers,
        body,
    }
}

/// An account of the test world with its credentials.
#[derive(Clone)]
pub struct Person {
    pub account: Account,
    pub password: String,
    pub totp: Option<medtunnel_api::totp::TotpSecret>,
}

impl Person {
    pub fn username(&self) -> &str {
        &self.account.username
    }

    pub fn id(&self) -> i64 {
        self.account.id.0
    }
}

/// An API with a patient, one account of every other role, devices and readings.
pub struct World {
    pub router: Router,
    pub state: ApiState,
    pub clock: Arc<ManualClock>,
    pub patient: Person,
    pub caregiver: Person,
    pub clinician: Person,
    pub researcher: Person,
    pub operator: Person,
    pub auditor: Person,
    /// The patient's first CGM, which has [`READING_COUNT`] readings.
    pub cgm: String,
    /// The patient's second CGM, without readings.
    pub second_cgm: String,
    /// The patient's insulin pump.
    pub pump: String,
    /// A CGM of no patient.
    pub unlinked_cgm: String,
    /// A pacemaker, enrolled for the patient's therapy but not linked to the patient.
    pub pacemaker: String,
    /// Directory of the therapy service's `cloud.db` and keys, where the pump and the
    /// pacemaker are registered.
    pub therapy_dir: TempDir,
}

impl World {
    pub fn new() -> World {
        World::build(None)
    }

    /// Builds a world whose access tables live in the SQLite file `access_db`, so that a
    /// test can damage them through another connection.
    pub fn with_access_file(access_db: &std::path::Path) -> World {
        World::build(Some(access_db))
    }

    fn build(access_db: Option<&std::path::Path>) -> World {
        init_capture();
        let mut store = Store::open_in_memory().unwrap();
        let template = device_template();
        store
            .register_cloud_key(template.cloud.cloud_key_id, &template.cloud.public)
            .unwrap();
        for identity in &template.devices {
            store
                .register_device(&NewDevice {
                    device_id: identity.device_id.clone(),
                    model: identity.model,
                    key_id: identity.key_id,
                    static_public: identity.device_public,
                    psk: identity.psk.clone(),
                    cloud_key_id: identity.cloud_key_id,
                })
                .unwrap();
        }
        let device_id = |index: usize| template.devices[index].device_id.clone();
        let (cgm, second_cgm, unlinked_cgm, pump, pacemaker) = (
            device_id(0),
            device_id(1),
            device_id(2),
            device_id(3),
            device_id(4),
        );
        store.ingest(&cgm, &readings(READING_COUNT)).unwrap();
        store.ingest(&unlinked_cgm, &readings(3)).unwrap();

        let clock = Arc::new(ManualClock::new(START_S));
        let access = Arc::new(match access_db {
            Some(path) => SqliteAccessStore::open(path, START_S).unwrap(),
            None => SqliteAccessStore::open_in_memory(START_S).unwrap(),
        });
        let config = ApiConfig {
            password_cost: PasswordCost::insecure_for_tests(),
            ..ApiConfig::default()
        };
        let state = ApiState::new(
            access,
            Arc::new(StoreHealthData::new(store)),
            clock.clone(),
            config,
        );
        let patient = make_person(state.access(), "pat", Role::Patient);
        let therapy_dir = tempfile::tempdir().unwrap();
        let therapy = open_therapy(therapy_dir.path(), patient.id(), &[&pump, &pacemaker]);
        let state = state.with_therapy(therapy);
        let person = |username: &str, role: Role| make_person(state.access(), username, role);
        let world = World {
            router: medtunnel_api::router(state.clone()),
            patient,
            caregiver: person("carl-caregiver", Role::Caregiver),
            clinician: person("dr-clara", Role::Clinician),
            researcher: person("rita-research", Role::Researcher),
            operator: person("otto-ops", Role::Operator),
            auditor: person("audrey", Role::Auditor),
            state,
            clock,
            cgm,
            second_cgm,
            pump,
            unlinked_cgm,
            pacemaker,
            therapy_dir,
        };
        for device in [&world.cgm, &world.second_cgm, &world.pump] {
            medtunnel_api::admin::link_device(&world.state, world.patient.username(), device)
                .unwrap();
        }
        world
    }

    /// Creates one more account.
    pub fn add_person(&self, username: &str, role: Role) -> Person {
        make_person(self.state.access(), username, role)
    }

    /// Signs in and returns the token; clinicians and operators give their TOTP code.
    /// Moves the clock one TOTP step on, so that the next sign-in gets a fresh code.
    pub async fn sign_in(&self, person: &Person) -> String {
        let mut body =
            serde_json::json!({ "username": person.username(), "password": person.password });
        if let Some(secret) = &person.totp {
            body["totp"] = Value::from(secret.code_at(self.clock_now()));
        }
        let reply = send(
            &self.router,
            Method::POST,
            "/v1/sessions",
            None,
            Some(&body),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "sign-in of {}: {:?}",
            person.username(),
            reply.body
        );
        self.clock.advance(medtunnel_api::totp::STEP_S);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    pub fn clock_now(&self) -> i64 {
        use medtunnel_api::Clock;
        self.clock.now_s()
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        send(&self.router, Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        send(&self.router, Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        send(&self.router, Method::DELETE, path, Some(token), None).await
    }

    /// Grants `grantee` read access to every data type of the patient; returns the id.
    pub async fn grant_all(&self, patient_token: &str, grantee: &Person) -> i64 {
        self.grant(
            patient_token,
            grantee,
            &["glucose", "insulin", "cardiac", "device_status"],
            &["read"],
        )
        .await
    }

    /// Grants `grantee` the `actions` on the patient's `data_types`; returns the id.
    pub async fn grant(
        &self,
        patient_token: &str,
        grantee: &Person,
        data_types: &[&str],
        actions: &[&str],
    ) -> i64 {
        let body = serde_json::json!({
            "grantee": grantee.username(),
            "data_types": data_types,
            "actions": actions,
        });
        let reply = self
            .post(
                &format!("/v1/patients/{}/grants", self.patient.id()),
                patient_token,
                &body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["grant"]["id"].as_i64().unwrap()
    }
}

impl World {
    /// Opens the gateway's side of the therapy tables, as the tunnel gateway does.
    pub fn delivery(&self) -> CommandDelivery {
        CommandDelivery::open_dir(self.therapy_dir.path(), self.clock_now() * 1000).unwrap()
    }

    /// Stores a status report of the pump, without which the policy rejects every pump
    /// change; a `challenge` lets high-risk changes be signed at once.
    pub fn report_pump_status(&self, challenge: Option<[u8; 16]>) {
        let now_ms = self.clock_now() * 1000;
        self.delivery()
            .record_status(&self.pump, &pump_status(challenge), now_ms, "test#1")
            .unwrap();
    }
}

/// Builds a status report of a pump in epoch 1 with a flat basal of 1 U/h, maximum bolus 15 U,
/// maximum basal 5 U/h and maximum insulin on board 30 U.
pub fn pump_status(challenge: Option<[u8; 16]>) -> DeviceStatus {
    DeviceStatus {
        epoch: 1,
        session_clock_ms: 10_000,
        last_executed_sequence: 0,
        last_executed_command_id: [0; 16],
        challenge,
        settings: StatusSettings::Pump(PumpStatus {
            suspended: false,
            max: PumpMaxSettings {
                max_bolus: Insulin(1500),
                max_basal: InsulinRate(500),
                max_insulin_on_board: Insulin(3000),
            },
            delivered_today: 0,
            basal_profile: BasalProfile::flat(InsulinRate(100)),
        }),
    }
}

/// Opens a therapy service in `dir` with `devices` registered there and enrolled for
/// the patient.
fn open_therapy(dir: &std::path::Path, patient_id: i64, devices: &[&str]) -> TherapyService {
    let template = device_template();
    let mut store = Store::open(dir.join(medtunnel_therapy::DATABASE_FILE)).unwrap();
    store
        .register_cloud_key(template.cloud.cloud_key_id, &template.cloud.public)
        .unwrap();
    for identity in template
        .devices
        .iter()
        .filter(|identity| devices.contains(&identity.device_id.as_str()))
    {
        store
            .register_device(&NewDevice {
                device_id: identity.device_id.clone(),
                model: identity.model,
                key_id: identity.key_id,
                static_public: identity.device_public,
                psk: identity.psk.clone(),
                cloud_key_id: identity.cloud_key_id,
            })
            .unwrap();
    }
    drop(store);
    let now_ms = START_S * 1000;
    let mut therapy = TherapyService::open(dir, TherapyConfig::default(), now_ms).unwrap();
    let operator = Requester::new("operator", medtunnel_therapy::Role::Operator);
    for device_id in devices {
        therapy
            .enroll_device(&operator, device_id, &patient_id.to_string(), now_ms)
            .unwrap();
    }
    therapy
}

/// Identities provisioned once per test binary, because key generation and the writing of
/// identity files would otherwise dominate the time of each world.
struct DeviceTemplate {
    cloud: CloudIdentity,
    /// Three CGMs, one insulin pump, then one pacemaker.
    devices: Vec<DeviceIdentityFile>,
}

fn device_template() -> &'static DeviceTemplate {
    static TEMPLATE: OnceLock<DeviceTemplate> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_in_memory().unwrap();
        let cloud = provision_cloud(dir.path(), &mut store).unwrap();
        register_secret(hex::encode(cloud.secret.expose_secret()));
        let mut devices = Vec::new();
        for (model, prefix, count) in [
            (DeviceModel::Cgm, "cgm-", 3),
            (DeviceModel::InsulinPump, "pump-", 1),
            (DeviceModel::Pacemaker, "pacemaker-", 1),
        ] {
            for identity in provision_devices(dir.path(), &mut store, model, count, prefix).unwrap()
            {
                register_secret(hex::encode(identity.psk.expose_secret()));
                register_secret(hex::encode(identity.device_secret.expose_secret()));
                devices.push(identity);
            }
        }
        DeviceTemplate { cloud, devices }
    })
}

fn make_person(access: &dyn AccessStore, username: &str, role: Role) -> Person {
    let password = format!("{username}-Pa55word-{}", rand_suffix());
    register_secret(password.clone());
    let created = create_account(
        access,
        username,
        role,
        &password,
        PasswordCost::insecure_for_tests(),
        START_S,
    )
    .unwrap();
    if let Some(secret) = &created.totp_secret {
        register_secret(secret.expose_base32().as_str());
        register_secret(hex::encode(secret.expose_secret()));
    }
    Person {
        account: created.account,
        password,
        totp: created.totp_secret,
    }
}

fn rand_suffix() -> String {
    use rand_core::{OsRng, RngCore};
    format!("{:08x}", OsRng.next_u32())
}

/// Readings 0..count, 5 minutes apart from [`FIRST_READING_S`], glucose 100 + seq.
pub fn readings(count: u64) -> Vec<IncomingReading> {
    (0..count)
        .map(|seq| IncomingReading {
            seq,
            measurement: CgmMeasurement {
                session_start_s: FIRST_READING_S,
                time_offset_s: (seq * 300) as u32,
                glucose_mg_dl: 100 + seq as u16,
                trend_mg_dl_per_min: None,
                quality_percent: None,
                status: 0,
            },
            key_id: 1,
            received_at_ms: START_S * 1000,
            relay: "test".to_owned(),
        })
        .collect()
}
