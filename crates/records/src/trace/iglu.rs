//! Reader for CGM traces in the CSV format of the iglu example data.
//!
//! The header is `"","id","time","gl"` (a leading unnamed row-number column) or
//! `id,time,gl`. Each row contains a subject id, a time `YYYY-MM-DD HH:MM:SS` read as UTC
//! and a glucose value in mg/dL. Fields may be quoted with `"`, and `""` inside quotes is
//! one quote. A quoted field cannot span lines. Rows whose glucose is `NA` are skipped
//! and counted. Blank lines are skipped.

use std::io::BufRead;

use super::time::parse_time;
use super::{check_glucose, quote_value, TraceError, TraceReading};

/// Readings of an iglu CSV file, with the count of rows skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgluCsv {
    /// Readings in file order.
    pub readings: Vec<TraceReading>,
    /// Rows whose glucose value is `NA`.
    pub skipped_na_rows: usize,
}

/// Reads an iglu CSV trace and returns its readings in file order.
///
/// Rows with glucose `NA` are skipped; [`read_iglu_csv_with_summary`] also returns their
/// count.
pub fn read_iglu_csv(reader: impl BufRead) -> Result<Vec<TraceReading>, TraceError> {
    let csv = read_iglu_csv_with_summary(reader)?;
    if csv.skipped_na_rows > 0 {
        tracing::debug!(
            skipped_na_rows = csv.skipped_na_rows,
            "skipped trace rows without glucose"
        );
    }
    Ok(csv.readings)
}

/// Reads an iglu CSV trace, returning the readings and the number of `NA` rows skipped.
pub fn read_iglu_csv_with_summary(mut reader: impl BufRead) -> Result<IgluCsv, TraceError> {
    let mut lines = LineReader::default();
    let (header_line, header) = loop {
        let Some(line) = lines.next_line(&mut reader)? else {
            return Err(TraceError::MissingHeader);
        };
        if !line.trim().is_empty() {
            let text = line.strip_prefix('\u{feff}').unwrap_or(&line);
            break (lines.number, split_line(text, lines.number)?);
        }
    };
    let layout = Layout::from_header(&header).ok_or_else(|| TraceError::InvalidHeader {
        line: header_line,
        found: quote_value(&header.join(",")),
    })?;

    let mut csv = IgluCsv {
        readings: Vec::new(),
        skipped_na_rows: 0,
    };
    while let Some(line) = lines.next_line(&mut reader)? {
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_line(&line, lines.number)?;
        match layout.parse_row(&fields, lines.number)? {
            Some(reading) => csv.readings.push(reading),
            None => csv.skipped_na_rows += 1,
        }
    }
    Ok(csv)
}

/// Positions of the columns, as found in the header.
struct Layout {
    field_count: usize,
    id: usize,
    time: usize,
    glucose: usize,
}

impl Layout {
    fn from_header(header: &[String]) -> Option<Self> {
        let names: Vec<&str> = header.iter().map(|name| name.trim()).collect();
        match names.as_slice() {
            ["id", "time", "gl"] => Some(Layout {
                field_count: 3,
                id: 0,
                time: 1,
                glucose: 2,
            }),
            ["", "id", "time", "gl"] => Some(Layout {
                field_count: 4,
                id: 1,
                time: 2,
                glucose: 3,
            }),
            _ => None,
        }
    }

    /// Parses one row; returns `None` for a row whose glucose is `NA`.
    fn parse_row(
        &self,
        fields: &[String],
        line: usize,
    ) -> Result<Option<TraceReading>, TraceError> {
        if fields.len() != self.field_count {
            return Err(TraceError::FieldCount {
                line,
                expected: self.field_count,
                found: fields.len(),
            });
        }
        let invalid =
            |column: &'static str, value: &str, problem: String| TraceError::InvalidField {
                line,
                column,
                value: quote_value(value),
                problem,
            };

        // `fields` has exactly `field_count` entries, and every index is below it.
        let subject = fields[self.id].trim();
        let time = fields[self.time].trim();
        let glucose = fields[self.glucose].trim();

        if subject.is_empty() {
            return Err(invalid(
                "id",
                subject,
                "is empty; expected a subject identifier".to_owned(),
            ));
        }
        let time_s = parse_time(time).map_err(|reason| {
            invalid(
                "time",
                time,
                format!("is not a valid timestamp because {reason}"),
            )
        })?;
        if glucose == "NA" {
            return Ok(None);
        }
        let glucose_mg_dl =
            parse_glucose(glucose).map_err(|problem| invalid("gl", glucose, problem))?;

        Ok(Some(TraceReading {
            subject: subject.to_owned(),
            time_s,
            glucose_mg_dl,
        }))
    }
}

/// Parses a glucose value: an integer, or a decimal whose fraction is zero (`153.0`).
fn parse_glucose(text: &str) -> Result<u16, String> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let (negative, digits) = match whole.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, whole),
    };
    let is_number = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && fraction.is_none_or(|fraction| fraction.bytes().all(|byte| byte.is_ascii_digit()));
    if !is_number {
        return Err(
            "is not an integer glucose value in mg/dL (or NA for a missing value)".to_owned(),
        );
    }
    if fraction.is_some_and(|fraction| fraction.bytes().any(|byte| byte != b'0')) {
        return Err("is not a whole number; glucose values must be integers in mg/dL".to_owned());
    }
    // A digit string too long for u64 is out of range as well.
    let value = digits.parse::<u64>().unwrap_or(u64::MAX);
    if negative && value != 0 {
        return Err("is negative; expected 0 to 4000 mg/dL".to_owned());
    }
    check_glucose(value)
}

/// Splits one CSV line into fields.
fn split_line(line: &str, line_number: usize) -> Result<Vec<String>, TraceError> {
    let malformed = |problem| TraceError::MalformedLine {
        line: line_number,
        problem,
    };
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        let quoted = chars.next_if_eq(&'"').is_some();
        let at_end = if quoted {
            loop {
                match chars.next() {
                    None => return Err(malformed("a quoted field has no closing quote")),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(other) => field.push(other),
                }
            }
            match chars.next() {
                None => true,
                Some(',') => false,
                Some(_) => {
                    return Err(malformed(
                        "a closing quote is followed by text instead of a comma",
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => break true,
                    Some(',') => break false,
                    Some('"') => {
                        return Err(malformed(
                            "a quote appears inside an unquoted field; quote the whole field",
                        ))
                    }
                    Some(other) => field.push(other),
                }
            }
        };
        fields.push(field);
        if at_end {
            return Ok(fields);
        }
    }
}

/// Reads lines one by one, counting them and dropping the line ending.
#[derive(Default)]
struct LineReader {
    number: usize,
    buffer: Vec<u8>,
}

impl LineReader {
    fn next_line(&mut self, reader: &mut impl BufRead) -> Result<Option<String>, TraceError> {
        self.buffer.clear();
        if reader.read_until(b'\n', &mut self.buffer)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        while matches!(self.buffer.last(), Some(b'\n' | b'\r')) {
            self.buffer.pop();
        }
        let text = std::str::from_utf8(&self.buffer)
            .map_err(|_| TraceError::NotUtf8 { line: self.number })?;
        Ok(Some(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<IgluCsv, TraceError> {
        read_iglu_csv_with_summary(text.as_bytes())
    }

    fn error_text(text: &str) -> String {
        match read(text) {
            Ok(csv) => panic!("expected an error, got {csv:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn reads_quoted_header_with_row_numbers() {
        let csv = read(
            "\"\",\"id\",\"time\",\"gl\"\n\
             \"1\",\"Subject 1\",2015-06-06 16:50:27,153\n\
             \"2\",\"Subject 1\",\"2015-06-06 17:05:27\",\"137\"\n",
        )
        .expect("valid trace");
        assert_eq!(csv.skipped_na_rows, 0);
        assert_eq!(
            csv.readings,
            [
                TraceReading {
                    subject: "Subject 1".to_owned(),
                    time_s: 1_433_609_427,
                    glucose_mg_dl: 153,
                },
                TraceReading {
                    subject: "Subject 1".to_owned(),
                    time_s: 1_433_610_327,
                    glucose_mg_dl: 137,
                },
            ]
        );
    }

    #[test]
    fn reads_plain_header_crlf_and_bom() {
        let csv =
            read("\u{feff}id,time,gl\r\nA,2020-01-01 00:00:00,100.0\r\n\r\n").expect("valid trace");
        assert_eq!(csv.readings.len(), 1);
        assert_eq!(csv.readings[0].subject, "A");
        assert_eq!(csv.readings[0].glucose_mg_dl, 100);
    }

    #[test]
    fn quoted_fields_keep_commas_and_quotes() {
        let csv =
            read("id,time,gl\n\"Smith, \"\"J\"\"\",2020-01-01 00:00:00,99\n").expect("valid trace");
        assert_eq!(csv.readings[0].subject, "Smith, \"J\"");
    }

    #[test]
    fn na_rows_are_skipped_and_counted() {
        let csv = read(
            "id,time,gl\nA,2020-01-01 00:00:00,NA\nA,2020-01-01 00:05:00,101\nA,2020-01-01 00:10:00,NA\n",
        )
        .expect("valid trace");
        assert_eq!(csv.skipped_na_rows, 2);
        assert_eq!(csv.readings.len(), 1);
        assert_eq!(
            read_iglu_csv("id,time,gl\nA,2020-01-01 00:00:00,NA\n".as_bytes())
                .expect("valid trace"),
            []
        );
    }

    #[test]
    fn malformed_lines_name_line_column_and_value() {
        let header = "\"\",\"id\",\"time\",\"gl\"\n";
        let good = "\"1\",\"S\",2015-06-06 16:50:27,153\n";
        let cases = [
            (
                "\"2\",\"S\",2015-06-06 16:55:27,abc\n",
                "line 3, column \"gl\": \"abc\" is not an integer glucose value in mg/dL (or NA for a missing value)",
            ),
            (
                "\"2\",\"S\",2015-06-06 16:55:27,153.5\n",
                "line 3, column \"gl\": \"153.5\" is not a whole number; glucose values must be integers in mg/dL",
            ),
            (
                "\"2\",\"S\",2015-06-06 16:55:27,-4\n",
                "line 3, column \"gl\": \"-4\" is negative; expected 0 to 4000 mg/dL",
            ),
            (
                "\"2\",\"S\",2015-06-06 16:55:27,4001\n",
                "line 3, column \"gl\": \"4001\" is outside 0 to 4000 mg/dL",
            ),
            (
                "\"2\",\"S\",2015-06-06 16:55:27,2051\n",
                "line 3, column \"gl\": \"2051\" has no exact encoding in a CGM measurement; above 2045 mg/dL use a multiple of 10",
            ),
            (
                "\"2\",\"S\",2015-06-06 16:55:27,\n",
                "line 3, column \"gl\": \"\" is not an integer glucose value in mg/dL (or NA for a missing value)",
            ),
            (
                "\"2\",\"S\",2015-02-30 16:55:27,150\n",
                "line 3, column \"time\": \"2015-02-30 16:55:27\" is not a valid timestamp because day 30 is not 01 to 28 in 2015-02",
            ),
            (
                "\"2\",\"S\",06/06/2015 16:55,150\n",
                "line 3, column \"time\": \"06/06/2015 16:55\" is not a valid timestamp because it does not have the form YYYY-MM-DD HH:MM:SS",
            ),
            (
                "\"2\",\"\",2015-06-06 16:55:27,150\n",
                "line 3, column \"id\": \"\" is empty; expected a subject identifier",
            ),
            (
                "\"2\",\"S\",2015-06-06 16:55:27\n",
                "line 3: found 3 fields but the header has 4",
            ),
            (
                "\"2\",\"S,2015-06-06 16:55:27,150\n",
                "line 3: a quoted field has no closing quote",
            ),
            (
                "\"2\",\"S\"x,2015-06-06 16:55:27,150\n",
                "line 3: a closing quote is followed by text instead of a comma",
            ),
            (
                "\"2\",S\"x,2015-06-06 16:55:27,150\n",
                "line 3: a quote appears inside an unquoted field; quote the whole field",
            ),
        ];
        for (row, expected) in cases {
            let text = format!("{header}{good}{row}");
            assert_eq!(error_text(&text), expected, "row {row:?}");
        }
    }

    #[test]
    fn header_errors_are_clear() {
        assert_eq!(error_text(""), TraceError::MissingHeader.to_string());
        assert_eq!(
            error_text("subject,timestamp,glucose\n"),
            "line 1: header subject,timestamp,glucose is not an iglu trace header; \
             expected \"id\",\"time\",\"gl\", optionally after an unnamed row-number column"
        );
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let mut bytes = b"id,time,gl\nA,2020-01-01 00:00:00,1".to_vec();
        bytes.push(0xFF);
        let error = read_iglu_csv_with_summary(bytes.as_slice()).expect_err("invalid UTF-8");
        assert_eq!(
            error.to_string(),
            "line 2: the text is not valid UTF-8; save the trace as UTF-8"
        );
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "9".repeat(500);
        let text = format!("id,time,gl\nA,2020-01-01 00:00:00,{long}\n");
        let message = error_text(&text);
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("is outside 0 to 4000 mg/dL"), "{message}");
    }
}
