//! Reader for the JSON array that the Nightscout `entries` API returns.
//!
//! Each entry of type `sgv` becomes one reading: `sgv` is the glucose in mg/dL, `date` is
//! Unix milliseconds (truncated to whole seconds toward the past) and `device`, when it
//! is a non-empty string, is the subject. `dateString`, `direction` and any other field
//! are ignored because `date` carries the same instant. Entries of any other type
//! (`mbg`, `cal`, ...) are skipped.

use std::io::Read;

use serde_json::Value;

use super::{check_glucose, quote_value, TraceError, TraceReading};
use crate::cgm::MAX_SESSION_START_S;

/// Subject of entries without a `device` field.
const DEFAULT_SUBJECT: &str = "nightscout";

/// Reads a Nightscout `entries` array and returns its glucose readings, oldest first.
///
/// Nightscout lists the newest entry first, so the readings are sorted by time; readings
/// with equal times keep their order in the array.
pub fn read_nightscout_entries(reader: impl Read) -> Result<Vec<TraceReading>, TraceError> {
    let document: Value = serde_json::from_reader(reader).map_err(TraceError::Json)?;
    let entries = match document {
        Value::Array(entries) => entries,
        other => {
            return Err(TraceError::NotAnArray {
                found: json_kind(&other),
            })
        }
    };

    let mut readings = Vec::new();
    let mut skipped = 0usize;
    for (index, entry) in entries.iter().enumerate() {
        match parse_entry(index, entry)? {
            Some(reading) => readings.push(reading),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::debug!(
            skipped_entries = skipped,
            "skipped non-sgv Nightscout entries"
        );
    }
    readings.sort_by_key(|reading| reading.time_s);
    Ok(readings)
}

/// Parses one entry; returns `None` for an entry that is not of type `sgv`.
fn parse_entry(index: usize, entry: &Value) -> Result<Option<TraceReading>, TraceError> {
    let invalid = |field: &'static str, value: &Value, problem: String| TraceError::InvalidEntry {
        index,
        field,
        value: quote_value(&value.to_string()),
        problem,
    };
    let Value::Object(fields) = entry else {
        return Err(invalid(
            "(entry)",
            entry,
            "is not a JSON object; expected an entry with \"type\", \"sgv\" and \"date\""
                .to_owned(),
        ));
    };
    if fields.get("type").and_then(Value::as_str) != Some("sgv") {
        return Ok(None);
    }

    let sgv = fields.get("sgv").unwrap_or(&Value::Null);
    let glucose_mg_dl = whole_number(sgv)
        .ok_or_else(|| "is not an integer glucose value in mg/dL".to_owned())
        .and_then(|value| {
            u64::try_from(value).map_err(|_| "is negative; expected 0 to 4000 mg/dL".to_owned())
        })
        .and_then(check_glucose)
        .map_err(|problem| invalid("sgv", sgv, problem))?;

    let date = fields.get("date").unwrap_or(&Value::Null);
    let max_date_ms = MAX_SESSION_START_S * 1000;
    let date_ms = whole_number(date)
        .filter(|ms| (0..=max_date_ms).contains(ms))
        .ok_or_else(|| {
            invalid(
                "date",
                date,
                format!("is not a time in Unix milliseconds from 0 to {max_date_ms}"),
            )
        })?;

    let subject = fields
        .get("device")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|device| !device.is_empty())
        .unwrap_or(DEFAULT_SUBJECT);

    Ok(Some(TraceReading {
        subject: subject.to_owned(),
        time_s: date_ms.div_euclid(1000),
        glucose_mg_dl,
    }))
}

/// Returns a JSON number as an integer if it is whole, including `153.0`.
fn whole_number(value: &Value) -> Option<i64> {
    if let Some(integer) = value.as_i64() {
        return Some(integer);
    }
    let float = value.as_f64()?;
    // Floats beyond ±2^63 saturate in the cast, and the range checks of the callers
    // reject them.
    (float.fract() == 0.0 && float.is_finite()).then_some(float as i64)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[
        {"_id": "a3", "type": "sgv", "sgv": 142, "date": 1700000600000,
         "dateString": "2023-11-14T22:23:20.000Z", "direction": "Flat", "device": "xDrip-DexcomG6"},
        {"_id": "m1", "type": "mbg", "mbg": 150, "date": 1700000500000},
        {"_id": "a2", "type": "sgv", "sgv": 138.0, "date": 1700000300999, "direction": "FortyFiveUp"},
        {"_id": "a1", "type": "sgv", "sgv": 131, "date": 1700000000000, "device": ""}
    ]"#;

    #[test]
    fn sgv_entries_become_readings_oldest_first() {
        let readings = read_nightscout_entries(SAMPLE.as_bytes()).expect("valid sample");
        assert_eq!(
            readings,
            [
                TraceReading {
                    subject: "nightscout".to_owned(),
                    time_s: 1_700_000_000,
                    glucose_mg_dl: 131,
                },
                TraceReading {
                    subject: "nightscout".to_owned(),
                    time_s: 1_700_000_300,
                    glucose_mg_dl: 138,
                },
                TraceReading {
                    subject: "xDrip-DexcomG6".to_owned(),
                    time_s: 1_700_000_600,
                    glucose_mg_dl: 142,
                },
            ]
        );
    }

    #[test]
    fn invalid_entries_name_index_field_and_value() {
        let cases = [
            (
                r#"[{"type": "sgv", "sgv": "high", "date": 1}]"#,
                "entry 0, field \"sgv\": \"high\" is not an integer glucose value in mg/dL",
            ),
            (
                r#"[{"type": "mbg"}, {"type": "sgv", "sgv": 120.5, "date": 1}]"#,
                "entry 1, field \"sgv\": 120.5 is not an integer glucose value in mg/dL",
            ),
            (
                r#"[{"type": "sgv", "sgv": -3, "date": 1}]"#,
                "entry 0, field \"sgv\": -3 is negative; expected 0 to 4000 mg/dL",
            ),
            (
                r#"[{"type": "sgv", "sgv": 9000, "date": 1}]"#,
                "entry 0, field \"sgv\": 9000 is outside 0 to 4000 mg/dL",
            ),
            (
                r#"[{"type": "sgv", "sgv": 100}]"#,
                "entry 0, field \"date\": null is not a time in Unix milliseconds from 0 to 253402300799000",
            ),
            (
                r#"[{"type": "sgv", "sgv": 100, "date": "2023-11-14"}]"#,
                "entry 0, field \"date\": \"2023-11-14\" is not a time in Unix milliseconds from 0 to 253402300799000",
            ),
            (
                r#"[7]"#,
                "entry 0, field \"(entry)\": 7 is not a JSON object; expected an entry with \"type\", \"sgv\" and \"date\"",
            ),
            (
                r#"{"type": "sgv"}"#,
                "the trace is a JSON object; expected an array of Nightscout entries",
            ),
        ];
        for (json, expected) in cases {
            let error = read_nightscout_entries(json.as_bytes()).expect_err(json);
            assert_eq!(error.to_string(), expected, "{json}");
        }
    }

    #[test]
    fn malformed_json_is_rejected() {
        let error = read_nightscout_entries("[{\"type\": ".as_bytes()).expect_err("truncated");
        assert!(matches!(error, TraceError::Json(_)), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("the trace is not valid JSON: "),
            "{error}"
        );
    }
}
