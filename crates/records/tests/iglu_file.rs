//! Reads the iglu example trace of five subjects from the shared data directory next to
//! the workspace.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use medtunnel_records::trace::{format_time, read_iglu_csv_with_summary};

fn data_file() -> Option<BufReader<File>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cgm/iglu_example_5_subjects.csv");
    match File::open(&path) {
        Ok(file) => Some(BufReader::new(file)),
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{} must exist in CI: {error}", path.display())
        }
        Err(error) => {
            eprintln!("skipping: {} is not readable: {error}", path.display());
            None
        }
    }
}

#[test]
fn iglu_example_reads_completely() {
    let Some(file) = data_file() else { return };
    let csv = read_iglu_csv_with_summary(file).expect("the example file is valid");
    let readings = csv.readings;

    assert_eq!(readings.len(), 13_866);
    assert_eq!(csv.skipped_na_rows, 0);

    let first = &readings[0];
    assert_eq!(first.subject, "Subject 1");
    assert_eq!(format_time(first.time_s), "2015-06-06 16:50:27");
    assert_eq!(first.glucose_mg_dl, 153);

    let mut subjects: Vec<&str> = readings.iter().map(|r| r.subject.as_str()).collect();
    subjects.dedup();
    assert_eq!(
        subjects,
        [
            "Subject 1",
            "Subject 2",
            "Subject 3",
            "Subject 4",
            "Subject 5"
        ]
    );

    assert!(readings
        .iter()
        .all(|r| (40..=400).contains(&r.glucose_mg_dl)));
}

#[test]
fn iglu_example_times_format_back_to_input() {
    let Some(file) = data_file() else { return };
    let readings = read_iglu_csv_with_summary(file)
        .expect("the example file is valid")
        .readings;
    let Some(text_file) = data_file() else { return };
    let text = std::io::read_to_string(text_file).expect("the example file is UTF-8");

    for (line, reading) in text.lines().skip(1).zip(&readings) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[2], format_time(reading.time_s), "line {line}");
        assert_eq!(fields[3], reading.glucose_mg_dl.to_string(), "line {line}");
    }
}
