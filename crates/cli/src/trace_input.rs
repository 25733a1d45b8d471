//! Turning a trace file into the readings of each simulated CGM.

use std::collections::BTreeMap;
use std::path::Path;

use medtunnel_records::trace::TraceReading;
use medtunnel_records::CgmMeasurement;

/// Readings of one trace subject, in file order, as a CGM would measure them.
pub struct SubjectTrace {
    /// Subject id from the file.
    pub subject: String,
    /// Readings.
    pub readings: Vec<CgmMeasurement>,
}

/// Reads an iglu CSV file (`id,time,gl`) or, for a `.json` file, Nightscout entries.
pub fn read_trace_file(
    path: &Path,
) -> Result<Vec<TraceReading>, Box<dyn std::error::Error + Send + Sync>> {
    let file = std::fs::File::open(path)
        .map_err(|error| format!("cannot open trace file {}: {error}", path.display()))?;
    let reader = std::io::BufReader::new(file);
    let readings = if path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
    {
        medtunnel_records::trace::read_nightscout_entries(reader)
    } else {
        medtunnel_records::trace::read_iglu_csv(reader)
    }
    .map_err(|error| format!("trace file {}: {error}", path.display()))?;
    Ok(readings)
}

/// Groups readings by subject, keeping each subject's file order. The sensor session
/// starts at the subject's first reading.
pub fn by_subject(readings: &[TraceReading]) -> Result<Vec<SubjectTrace>, String> {
    let mut groups: BTreeMap<&str, Vec<&TraceReading>> = BTreeMap::new();
    let mut order = Vec::new();
    for reading in readings {
        let group = groups.entry(&reading.subject).or_default();
        if group.is_empty() {
            order.push(reading.subject.as_str());
        }
        group.push(reading);
    }
    order
        .into_iter()
        .map(|subject| {
            let group = &groups[subject];
            let start = group
                .iter()
                .map(|reading| reading.time_s)
                .min()
                .unwrap_or(0);
            let readings = group
                .iter()
                .map(|reading| measurement(subject, start, reading))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SubjectTrace {
                subject: subject.to_owned(),
                readings,
            })
        })
        .collect()
}

fn measurement(
    subject: &str,
    start: i64,
    reading: &TraceReading,
) -> Result<CgmMeasurement, String> {
    let offset = u32::try_from(reading.time_s - start).map_err(|_| {
        format!(
            "subject {subject:?}: reading at {} lies more than 136 years after the first one",
            medtunnel_records::trace::format_time(reading.time_s)
        )
    })?;
    Ok(CgmMeasurement {
        session_start_s: start,
        time_offset_s: offset,
        glucose_mg_dl: reading.glucose_mg_dl,
        trend_mg_dl_per_min: None,
        quality_percent: None,
        status: 0,
    })
}
