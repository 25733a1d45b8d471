//! The demo on real and generated traces, with and without a misbehaving relay.

mod support;

use std::collections::BTreeMap;

use support::{describe, field, read_summary, real_trace, run};

#[test]
fn real_trace_stored_exactly_once() {
    let Some(trace) = real_trace() else { return };
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let summary_path = work.path().join("summary.json");
    let output = run(&[
        "demo",
        "--cgm",
        trace.to_str().unwrap(),
        "--dir",
        data.to_str().unwrap(),
        "--summary-json",
        summary_path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = read_summary(&summary_path);
    assert_eq!(field(&summary, "devices"), 5);
    assert_eq!(field(&summary, "readings_sent"), 13_866);
    assert_eq!(field(&summary, "readings_stored"), 13_866);
    assert_eq!(field(&summary, "readings_lost"), 0);
    assert_eq!(field(&summary, "readings_unexpected"), 0);
    assert_eq!(field(&summary, "duplicates_suppressed"), 0);
    assert_eq!(field(&summary, "frames_rejected"), 0);

    // Every stored value and device timestamp equals the file's, subject by subject.
    let expected = rows_by_subject(&std::fs::read_to_string(&trace).unwrap());
    for mapping in summary["subjects"].as_array().unwrap() {
        let subject = mapping["subject"].as_str().unwrap();
        let device = mapping["device_id"].as_str().unwrap();
        let output = run(&[
            "readings",
            "--dir",
            data.to_str().unwrap(),
            "--device",
            device,
        ]);
        assert!(output.status.success(), "{}", describe(&output));
        let stored: Vec<(String, String)> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                (fields[2].to_owned(), fields[3].to_owned())
            })
            .collect();
        let mut wanted = expected[subject].clone();
        wanted.sort();
        let mut got = stored.clone();
        got.sort();
        assert_eq!(got.len(), wanted.len(), "subject {subject}");
        assert_eq!(got, wanted, "subject {subject}");
    }
}

/// Rows of the iglu CSV as (time, glucose) per subject.
fn rows_by_subject(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut rows: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let subject = fields[1].trim_matches('"').to_owned();
        rows.entry(subject)
            .or_default()
            .push((fields[2].to_owned(), fields[3].to_owned()));
    }
    rows
}

/// Runs the demo on a small generated trace with the given extra arguments.
fn run_small_demo(extra: &[&str], readings: usize) -> serde_json::Value {
    let work = tempfile::tempdir().unwrap();
    let summary_path = work.path().join("summary.json");
    let data = work.path().join("data");
    let readings = readings.to_string();
    let mut args = vec![
        "demo",
        "--subjects",
        "2",
        "--readings-per-subject",
        &readings,
        "--mtu",
        "23",
        "--dir",
        data.to_str().unwrap(),
        "--summary-json",
        summary_path.to_str().unwrap(),
        "--deadline-s",
        "120",
    ];
    args.extend_from_slice(extra);
    let output = run(&args);
    assert!(output.status.success(), "{}", describe(&output));
    read_summary(&summary_path)
}

fn assert_data_intact(summary: &serde_json::Value, readings: u64) {
    assert_eq!(field(summary, "readings_stored"), readings, "{summary}");
    assert_eq!(field(summary, "readings_lost"), 0, "{summary}");
    assert_eq!(field(summary, "readings_unexpected"), 0, "{summary}");
}

#[test]
fn each_relay_fault_alone_is_survived() {
    // The therapy scenario runs once, in its own test.
    let kinds = [
        ("--fault-drop", "drop"),
        ("--fault-duplicate", "duplicate"),
        ("--fault-reorder", "reorder"),
        ("--fault-delay", "delay"),
        ("--fault-truncate", "truncate"),
        ("--fault-flip-bits", "flip_bits"),
        ("--fault-replay", "replay"),
    ];
    for (flag, kind) in kinds {
        let summary = run_small_demo(&[flag, "0.2", "--no-therapy"], 60);
        assert_data_intact(&summary, 120);
        let injected = summary["faults_by_kind"][kind].as_u64().unwrap();
        assert!(injected > 0, "{kind}: no fault injected: {summary}");
        // A changed or repeated frame can never be accepted: each one is rejected by the
        // gateway, a device or a reassembler, and counted.
        if matches!(kind, "truncate" | "flip_bits" | "replay" | "duplicate") {
            let rejected = field(&summary, "frames_rejected");
            assert!(
                rejected >= injected,
                "{kind}: {injected} tampered frames but {rejected} rejections: {summary}"
            );
        }
    }
}

#[test]
fn all_relay_faults_mixed_are_survived() {
    let summary = run_small_demo(
        &[
            "--no-therapy",
            "--fault-drop",
            "0.03",
            "--fault-duplicate",
            "0.03",
            "--fault-reorder",
            "0.03",
            "--fault-delay",
            "0.03",
            "--fault-truncate",
            "0.03",
            "--fault-flip-bits",
            "0.03",
            "--fault-replay",
            "0.03",
        ],
        100,
    );
    assert_data_intact(&summary, 200);
    assert!(field(&summary, "faults_injected") > 0, "{summary}");
    assert!(field(&summary, "frames_rejected") > 0, "{summary}");
}

#[test]
fn malformed_csv_line_is_named() {
    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("bad.csv");
    std::fs::write(
        &csv,
        "id,time,gl\nA,2020-01-01 00:00:00,100\nA,2020-01-01 00:05:00,abc\n",
    )
    .unwrap();
    let data = work.path().join("data");
    let output = run(&[
        "demo",
        "--cgm",
        csv.to_str().unwrap(),
        "--dir",
        data.to_str().unwrap(),
    ]);
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("abc"), "{stderr}");
    assert!(
        !data.join("cloud.db").exists(),
        "nothing is provisioned for a bad trace"
    );
}

#[test]
fn therapy_scenario_outcomes_reported() {
    let summary = run_small_demo(&[], 10);
    let therapy = &summary["therapy"];
    let outcomes = therapy["outcomes"].as_array().expect("therapy outcomes");
    let state = |name: &str| {
        outcomes
            .iter()
            .find(|outcome| outcome["name"] == name)
            .unwrap_or_else(|| panic!("no outcome {name}: {therapy}"))["state"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(state("basal_change"), "acknowledged");
    assert_eq!(state("bolus_above_limit"), "rejected");
    assert_eq!(state("pacemaker_cosign"), "acknowledged");
    assert_eq!(state("relay_replay"), "acknowledged");
    let replayed = therapy["frames_replayed"].as_u64().unwrap();
    let rejected = therapy["pump_frames_rejected"].as_u64().unwrap();
    assert!(replayed > 0, "the relay replayed nothing: {therapy}");
    assert!(
        rejected >= replayed,
        "{replayed} replayed but {rejected} rejected: {therapy}"
    );
    assert_eq!(therapy["audit_intact"], true);
}
