//! Helpers for tests that run the real `medtunnel` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_medtunnel")
}

/// Runs `medtunnel ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("medtunnel binary runs")
}

/// The real CGM trace beside the repository, or `None` with a printed reason outside CI.
pub fn real_trace() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cgm/iglu_example_5_subjects.csv");
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CGM trace missing at {}", path.display());
    }
    eprintln!("skipped: CGM trace not found at {}", path.display());
    None
}

/// Parses the summary JSON a demo run wrote.
pub fn read_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("summary written");
    serde_json::from_str(&text).expect("summary is JSON")
}

/// Reads a u64 field of the summary.
pub fn field(summary: &serde_json::Value, name: &str) -> u64 {
    summary[name]
        .as_u64()
        .unwrap_or_else(|| panic!("summary field {name} missing in {summary}"))
}

/// Returns stdout and stderr as text, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
