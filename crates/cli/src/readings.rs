//! `medtunnel readings`: what the cloud stored for one device.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use medtunnel_records::trace::format_time;
use medtunnel_store::Store;

use crate::provision::DATABASE_FILE;
use crate::CommandResult;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// `device_id,seq,time,gl`: the time and glucose columns match the iglu trace format.
    Csv,
    /// One JSON array of readings with provenance.
    Json,
}

#[derive(Args)]
pub struct ReadingsArgs {
    /// Data directory holding cloud.db.
    #[arg(long)]
    dir: PathBuf,
    /// Device id, as printed by `medtunnel provision`.
    #[arg(long)]
    device: String,
    /// First device time to include: `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds.
    #[arg(long, value_parser = parse_time_arg)]
    from: Option<i64>,
    /// Device time to stop before: `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds.
    #[arg(long, value_parser = parse_time_arg)]
    to: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
}

fn parse_time_arg(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    medtunnel_records::trace::parse_time(text)
        .map_err(|error| format!("{error}; use YYYY-MM-DD HH:MM:SS or Unix seconds"))
}

pub fn run(args: ReadingsArgs) -> CommandResult {
    match print_readings(args) {
        // A reader such as `head` that stops early is not an error.
        Err(error) if is_broken_pipe(error.as_ref()) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    let io_kind = error
        .downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind)
        .or_else(|| {
            error
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
        });
    io_kind == Some(std::io::ErrorKind::BrokenPipe)
}

fn print_readings(args: ReadingsArgs) -> CommandResult {
    let path = args.dir.join(DATABASE_FILE);
    if !path.exists() {
        return Err(format!(
            "no database at {}; run `medtunnel provision` first",
            path.display()
        )
        .into());
    }
    let store = Store::open(&path)?;
    if store.device(&args.device)?.is_none() {
        return Err(format!(
            "device {:?} is not registered in {}",
            args.device,
            path.display()
        )
        .into());
    }
    let readings = store.readings(&args.device, args.from, args.to)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Csv => {
            writeln!(out, "device_id,seq,time,gl")?;
            for reading in &readings {
                writeln!(
                    out,
                    "{},{},{},{}",
                    reading.device_id,
                    reading.seq,
                    format_time(reading.device_time_s),
                    reading.measurement.glucose_mg_dl
                )?;
            }
        }
        Format::Json => {
            let rows: Vec<serde_json::Value> = readings
                .iter()
                .map(|reading| {
                    serde_json::json!({
                        "device_id": reading.device_id,
                        "seq": reading.seq,
                        "time": format_time(reading.device_time_s),
                        "device_time_s": reading.device_time_s,
                        "glucose_mg_dl": reading.measurement.glucose_mg_dl,
                        "key_id": reading.key_id,
                        "received_at_ms": reading.received_at_ms,
                        "relay": reading.relay,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}
