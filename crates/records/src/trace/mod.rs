//! Glucose traces that a simulated CGM replays: readers for the iglu CSV format and for
//! Nightscout `entries` JSON, and a generated trace for runs without a data file.
//!
//! Times are Unix seconds. The iglu files carry naive timestamps, which are read as UTC,
//! and [`format_time`] writes them back in the same form.

mod generated;
mod iglu;
mod nightscout;
mod time;

pub use generated::generated_trace;
pub use iglu::{read_iglu_csv, read_iglu_csv_with_summary, IgluCsv};
pub use nightscout::read_nightscout_entries;
pub use time::{format_time, parse_time};

use crate::cgm::MAX_GLUCOSE_MG_DL;

/// One glucose reading of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceReading {
    /// Person or device the reading belongs to, for example `Subject 1`.
    pub subject: String,
    /// Time of the reading in Unix seconds.
    pub time_s: i64,
    /// Glucose concentration in mg/dL. Readers accept only values that a
    /// [`crate::CgmMeasurement`] can carry.
    pub glucose_mg_dl: u16,
}

/// Rejection of a trace file. The file is to blame, and the message names the line or
/// entry, the column or field, the value and what is expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Reading from the source failed.
    #[error("reading the trace failed: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not valid UTF-8.
    #[error("line {line}: the text is not valid UTF-8; save the trace as UTF-8")]
    NotUtf8 {
        /// Line number, starting at 1.
        line: usize,
    },
    /// The CSV file has no header line.
    #[error("the trace is empty; expected a header line \"id\",\"time\",\"gl\"")]
    MissingHeader,
    /// The first line is not an iglu header.
    #[error(
        "line {line}: header {found} is not an iglu trace header; expected \"id\",\"time\",\"gl\", \
         optionally after an unnamed row-number column"
    )]
    InvalidHeader {
        /// Line number, starting at 1.
        line: usize,
        /// The header as read.
        found: String,
    },
    /// A line breaks the CSV quoting rules.
    #[error("line {line}: {problem}")]
    MalformedLine {
        /// Line number, starting at 1.
        line: usize,
        /// Which quoting rule the line breaks.
        problem: &'static str,
    },
    /// A line has a different number of fields than the header.
    #[error("line {line}: found {found} fields but the header has {expected}")]
    FieldCount {
        /// Line number, starting at 1.
        line: usize,
        /// Number of header fields.
        expected: usize,
        /// Number of fields on the line.
        found: usize,
    },
    /// A CSV field has an invalid value.
    #[error("line {line}, column \"{column}\": \"{value}\" {problem}")]
    InvalidField {
        /// Line number, starting at 1.
        line: usize,
        /// Column name from the header.
        column: &'static str,
        /// The value, shortened if long.
        value: String,
        /// Problem with the value, and the expected form.
        problem: String,
    },
    /// The JSON text does not parse.
    #[error("the trace is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The JSON document is not an array.
    #[error("the trace is a JSON {found}; expected an array of Nightscout entries")]
    NotAnArray {
        /// Kind of JSON value found.
        found: &'static str,
    },
    /// A Nightscout entry has an invalid field.
    #[error("entry {index}, field \"{field}\": {value} {problem}")]
    InvalidEntry {
        /// Index of the entry in the array, starting at 0.
        index: usize,
        /// Field name.
        field: &'static str,
        /// The value as JSON, shortened if long.
        value: String,
        /// Problem with the value, and the expected form.
        problem: String,
    },
}

/// Maximum length of a value quoted in an error message, in characters.
const MAX_QUOTED_CHARS: usize = 60;

/// Shortens a value for an error message.
fn quote_value(value: &str) -> String {
    if value.chars().count() <= MAX_QUOTED_CHARS {
        return value.to_owned();
    }
    let mut short: String = value.chars().take(MAX_QUOTED_CHARS).collect();
    short.push_str("...");
    short
}

/// Checks that a whole glucose value fits a CGM measurement. On failure, returns the
/// problem for an error message.
fn check_glucose(value: u64) -> Result<u16, String> {
    let in_range = u16::try_from(value)
        .ok()
        .filter(|value| *value <= MAX_GLUCOSE_MG_DL);
    let Some(value) = in_range else {
        return Err(format!("is outside 0 to {MAX_GLUCOSE_MG_DL} mg/dL"));
    };
    if crate::sfloat::from_whole(value).is_none() {
        return Err(
            "has no exact encoding in a CGM measurement; above 2045 mg/dL use a multiple of 10"
                .to_owned(),
        );
    }
    Ok(value)
}
