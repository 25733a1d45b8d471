//! The cloud, relay and device as separate processes: a cloud killed with SIGKILL, a
//! revoked device, an unknown device and what the relay writes to its log.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use medtunnel_store::Store;
use support::{binary, describe, run};

/// A child process that is killed when the test ends, whatever happens.
struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `medtunnel ARGS` and waits for the stdout line that contains `ready`,
/// returning the service and that line.
fn start(args: &[&str], stderr_file: Option<&Path>, ready: &str) -> (Service, String) {
    let stderr = match stderr_file {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let mut child = Command::new(binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("medtunnel starts");
    let stdout: ChildStdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let service = Service { child };
    let line = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{args:?} exited before printing {ready:?}"))
            .unwrap();
        if line.contains(ready) {
            break line;
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (service, line)
}

/// Picks the address after `marker` in `line`, e.g. "wss://127.0.0.1:1234/tunnel".
fn address_after(line: &str, marker: &str) -> String {
    let rest = &line[line.find(marker).unwrap() + marker.len()..];
    rest.split(|c: char| c == '/' || c == ';' || c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

fn provision(dir: &Path, devices: usize) {
    let count = devices.to_string();
    let output = run(&[
        "provision",
        "--dir",
        dir.to_str().unwrap(),
        "--devices",
        &count,
    ]);
    assert!(output.status.success(), "{}", describe(&output));
}

fn start_cloud(dir: &Path, listen: &str, log: Option<&Path>) -> (Service, String) {
    let (service, addr, _) = start_cloud_with_api(dir, listen, log);
    (service, addr)
}

/// Starts `medtunnel cloud` and returns the tunnel and API addresses.
fn start_cloud_with_api(dir: &Path, listen: &str, log: Option<&Path>) -> (Service, String, String) {
    let (service, line) = start(
        &[
            "--log",
            "debug",
            "cloud",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            listen,
            "--api-listen",
            "127.0.0.1:0",
        ],
        log,
        "cloud gateway on",
    );
    let addr = address_after(&line, "wss://");
    let api = address_after(&line, "API on http://");
    (service, addr, api)
}

fn start_relay(dir: &Path, cloud_addr: &str, log: Option<&Path>) -> (Service, String) {
    let cloud = format!("wss://{cloud_addr}/tunnel");
    let ca = dir.join("tls").join("gateway-cert.pem");
    let (service, line) = start(
        &[
            "--log",
            "trace",
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--cloud",
            &cloud,
            "--ca",
            ca.to_str().unwrap(),
            "--mtu",
            "40",
        ],
        log,
        "relay listening on",
    );
    let addr = address_after(&line, "relay listening on ");
    (service, addr)
}

fn device_command(dir: &Path, device: &str, relay: &str, extra: &[&str]) -> Command {
    let identity: PathBuf = dir.join("devices").join(format!("{device}.json"));
    let mut command = Command::new(binary());
    command
        .args([
            "device",
            "--identity",
            identity.to_str().unwrap(),
            "--relay",
            relay,
            "--mtu",
            "40",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn stored_count(dir: &Path, device: &str) -> u64 {
    Store::open(dir.join("cloud.db"))
        .and_then(|store| store.reading_count(device))
        .unwrap_or(0)
}

#[test]
fn cloud_killed_mid_replay_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    provision(dir, 1);
    let (cloud, cloud_addr) = start_cloud(dir, "127.0.0.1:0", None);
    let (_relay, relay_addr) = start_relay(dir, &cloud_addr, None);
    let readings = 600u64;
    let mut device = device_command(
        dir,
        "cgm-0001",
        &relay_addr,
        &[
            "--generated-readings",
            "600",
            "--speed",
            "40000",
            "--deadline-s",
            "120",
        ],
    )
    .spawn()
    .unwrap();

    // Kill the cloud once part of the trace is stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_count(dir, "cgm-0001") < 150 {
        assert!(Instant::now() < deadline, "nothing stored within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cloud = cloud;
    cloud.child.kill().unwrap(); // SIGKILL
    cloud.child.wait().unwrap();

    // Everything the device saw acknowledged is in the database after the kill.
    let state_path = dir.join("devices").join("cgm-0001.state.json");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let acked_before_kill = state["tx_acked"].as_u64().unwrap();
    let stored_after_kill = stored_count(dir, "cgm-0001");
    assert!(
        stored_after_kill >= acked_before_kill,
        "device saw {acked_before_kill} acknowledged but only {stored_after_kill} are stored"
    );
    assert!(
        stored_after_kill < readings,
        "the kill came too late to test anything"
    );

    std::thread::sleep(Duration::from_millis(300));
    let (_cloud, _) = start_cloud(dir, &cloud_addr, None);
    let status = device.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(device.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "device failed: {stderr}");

    let store = Store::open(dir.join("cloud.db")).unwrap();
    let stored = store.readings("cgm-0001", None, None).unwrap();
    assert_eq!(stored.len() as u64, readings);
    let mut seqs: Vec<u64> = stored.iter().map(|reading| reading.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len() as u64, readings, "a reading was stored twice");
}

#[test]
fn revoked_device_stores_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    provision(dir, 1);
    let output = run(&[
        "revoke",
        "--dir",
        dir.to_str().unwrap(),
        "--device",
        "cgm-0001",
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let cloud_log = dir.join("cloud.log");
    let (_cloud, cloud_addr) = start_cloud(dir, "127.0.0.1:0", Some(&cloud_log));
    let (_relay, relay_addr) = start_relay(dir, &cloud_addr, None);
    let output = device_command(
        dir,
        "cgm-0001",
        &relay_addr,
        &["--generated-readings", "5", "--deadline-s", "3"],
    )
    .output()
    .unwrap();
    assert!(!output.status.success(), "{}", describe(&output));
    assert_eq!(stored_count(dir, "cgm-0001"), 0);
    let log = std::fs::read_to_string(&cloud_log).unwrap();
    assert!(
        log.contains("revoked"),
        "cloud log names the revoked device:\n{log}"
    );
}

#[test]
fn unknown_device_stores_nothing() {
    let work = tempfile::tempdir().unwrap();
    let cloud_dir = work.path().join("cloud");
    let other_dir = work.path().join("other");
    provision(&cloud_dir, 1);
    provision(&other_dir, 1);
    // The other device trusts this cloud's key, but the cloud never registered it.
    std::fs::copy(
        cloud_dir.join("cloud-key.json"),
        other_dir.join("cloud-key.json"),
    )
    .unwrap();
    let cloud_log = work.path().join("cloud.log");
    let (_cloud, cloud_addr) = start_cloud(&cloud_dir, "127.0.0.1:0", Some(&cloud_log));
    let (_relay, relay_addr) = start_relay(&cloud_dir, &cloud_addr, None);
    let output = device_command(
        &other_dir,
        "cgm-0001",
        &relay_addr,
        &["--generated-readings", "5", "--deadline-s", "3"],
    )
    .output()
    .unwrap();
    assert!(!output.status.success(), "{}", describe(&output));
    assert_eq!(stored_count(&cloud_dir, "cgm-0001"), 0);
    let log = std::fs::read_to_string(&cloud_log).unwrap();
    assert!(
        log.contains("unknown"),
        "cloud log names the unknown key id:\n{log}"
    );
}

#[test]
fn relay_log_holds_no_plaintext() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    provision(dir, 1);
    let (_cloud, cloud_addr) = start_cloud(dir, "127.0.0.1:0", None);
    let relay_log = dir.join("relay.log");
    let (relay, relay_addr) = start_relay(dir, &cloud_addr, Some(&relay_log));
    let output = device_command(
        dir,
        "cgm-0001",
        &relay_addr,
        &["--generated-readings", "50", "--deadline-s", "60"],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    drop(relay);
    let log = std::fs::read_to_string(&relay_log).unwrap();
    assert!(
        log.contains("relay started"),
        "relay logged at trace level:\n{log}"
    );

    let trace = medtunnel_records::trace::generated_trace(1, 50, 7);
    let start = trace[0].time_s;
    for reading in &trace {
        let record = medtunnel_records::CgmMeasurement {
            session_start_s: start,
            time_offset_s: u32::try_from(reading.time_s - start).unwrap(),
            glucose_mg_dl: reading.glucose_mg_dl,
            trend_mg_dl_per_min: None,
            quality_percent: None,
            status: 0,
        }
        .encode()
        .unwrap();
        let as_hex = hex_lower(&record);
        assert!(!log.contains(&as_hex), "relay log holds a plaintext record");
        assert!(
            !log.contains(&as_hex.to_uppercase()),
            "relay log holds a plaintext record"
        );
        assert!(
            !log.contains(&format!("{record:?}")),
            "relay log holds a plaintext record"
        );
        let time = medtunnel_records::trace::format_time(reading.time_s);
        assert!(!log.contains(&time), "relay log holds a reading time");
    }
    assert!(!log.contains("glucose"), "relay log mentions glucose");
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Sends one HTTP/1.1 request to `addr` and returns the status code and JSON body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    let auth = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status: u16 = response[9..12].parse().unwrap();
    let json_start = response.find("\r\n\r\n").unwrap() + 4;
    let text = &response[json_start..];
    let value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    (status, value)
}

#[test]
fn phone_reads_stored_values_through_api() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    provision(dir, 1);
    let password = "correct horse battery staple";
    let mut create = Command::new(binary())
        .args([
            "user",
            "create",
            "--dir",
            dir.to_str().unwrap(),
            "--username",
            "alice",
            "--role",
            "patient",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        create.stdin.as_mut().unwrap(),
        format!("{password}\n").as_bytes(),
    )
    .unwrap();
    drop(create.stdin.take());
    assert!(create.wait().unwrap().success());
    let output = run(&[
        "user",
        "link-device",
        "--dir",
        dir.to_str().unwrap(),
        "--patient",
        "alice",
        "--device",
        "cgm-0001",
    ]);
    assert!(output.status.success(), "{}", describe(&output));

    let (_cloud, cloud_addr, api_addr) = start_cloud_with_api(dir, "127.0.0.1:0", None);
    let (_relay, relay_addr) = start_relay(dir, &cloud_addr, None);
    let output = device_command(
        dir,
        "cgm-0001",
        &relay_addr,
        &["--generated-readings", "20", "--deadline-s", "60"],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", describe(&output));

    let (status, _) = http(&api_addr, "GET", "/v1/patients/1/readings", None, None);
    assert_eq!(status, 401, "anonymous read");
    let sign_in = format!(r#"{{"username":"alice","password":"{password}"}}"#);
    let (status, session) = http(&api_addr, "POST", "/v1/sessions", None, Some(&sign_in));
    assert_eq!(status, 201, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let (status, me) = http(&api_addr, "GET", "/v1/me", Some(&token), None);
    assert_eq!(status, 200, "{me}");
    let patient_id = me["account"]["id"].as_i64().unwrap();
    let path = format!("/v1/patients/{patient_id}/readings?limit=1000");
    let (status, page) = http(&api_addr, "GET", &path, Some(&token), None);
    assert_eq!(status, 200, "{page}");
    let readings = page["readings"].as_array().unwrap();
    assert_eq!(readings.len(), 20, "{page}");
    let expected = medtunnel_records::trace::generated_trace(1, 20, 7);
    for (reading, wanted) in readings.iter().zip(&expected) {
        assert_eq!(
            reading["glucose_mg_dl"].as_u64().unwrap(),
            u64::from(wanted.glucose_mg_dl)
        );
        assert_eq!(reading["device_time_s"].as_i64().unwrap(), wanted.time_s);
    }
}

/// Every key and PSK of a data directory, as lowercase hex: the cloud's static secret and
/// each device's secret and PSK.
fn key_material(dir: &Path) -> Vec<String> {
    let mut secrets = Vec::new();
    let cloud: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cloud-key.json")).unwrap())
            .unwrap();
    for value in cloud.as_object().unwrap().values() {
        if let Some(text) = value.as_str().filter(|text| text.len() == 64) {
            secrets.push(text.to_owned());
        }
    }
    for entry in std::fs::read_dir(dir.join("devices")).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".json")
            || path.to_string_lossy().ends_with(".state.json")
        {
            continue;
        }
        let identity: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for field in ["device_secret", "psk"] {
            secrets.push(identity[field].as_str().unwrap().to_owned());
        }
    }
    assert!(!secrets.is_empty());
    secrets
}

/// Fails if `log` contains any key of `dir`, in lowercase or uppercase hex.
fn assert_no_key_material(log: &str, dir: &Path) {
    for secret in key_material(dir) {
        assert!(!log.contains(&secret), "log contains key material");
        assert!(
            !log.contains(&secret.to_uppercase()),
            "log contains key material"
        );
    }
}

#[test]
fn service_logs_hold_no_key_material() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    provision(dir, 1);
    let cloud_log = work.path().join("cloud.log");
    let relay_log = work.path().join("relay.log");
    let (cloud, cloud_addr) = start_cloud(dir, "127.0.0.1:0", Some(&cloud_log));
    let (relay, relay_addr) = start_relay(dir, &cloud_addr, Some(&relay_log));
    let output = device_command(
        dir,
        "cgm-0001",
        &relay_addr,
        &[
            "--log",
            "trace",
            "--generated-readings",
            "30",
            "--deadline-s",
            "60",
        ],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    drop(relay);
    drop(cloud);
    let device_log = String::from_utf8_lossy(&output.stderr).into_owned();
    let cloud_text = std::fs::read_to_string(&cloud_log).unwrap();
    let relay_text = std::fs::read_to_string(&relay_log).unwrap();
    assert!(
        cloud_text.contains("handshake"),
        "cloud logged at debug level:\n{cloud_text}"
    );
    for log in [&cloud_text, &relay_text, &device_log] {
        assert_no_key_material(log, dir);
    }
}

#[test]
fn relay_survives_bad_and_idle_clients() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    provision(dir, 1);
    let (_cloud, cloud_addr) = start_cloud(dir, "127.0.0.1:0", None);
    let (_relay, relay_addr) = start_relay(dir, &cloud_addr, None);

    // A packet length of 0 is invalid, and a link that closes inside a packet is cut short.
    for bytes in [&b"\x00"[..], &b"\xff"[..], &b"\x05ab"[..]] {
        let mut bad = std::net::TcpStream::connect(&relay_addr).unwrap();
        std::io::Write::write_all(&mut bad, bytes).unwrap();
        drop(bad);
        std::thread::sleep(Duration::from_millis(100));
    }
    // A client that connects and stays silent must not hold the relay.
    let idle = std::net::TcpStream::connect(&relay_addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let output = device_command(
        dir,
        "cgm-0001",
        &relay_addr,
        &["--generated-readings", "10", "--deadline-s", "30"],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stored_count(dir, "cgm-0001"), 10);
    drop(idle);
}
