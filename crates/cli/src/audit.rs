//! `medtunnel audit`: verification and export of the cloud's audit log.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use medtunnel_audit::{CheckpointPublicKey, CHECKPOINT_PUBLIC_KEY_FILE};

/// File name of the cloud database inside the cloud directory.
const DATABASE_FILE: &str = "cloud.db";

/// Arguments of `medtunnel audit`.
#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and check every signed checkpoint; exit non-zero and
    /// name the first bad entry if the log was altered.
    Verify(VerifyArgs),
    /// Write audit entries to standard output, as stored and without verifying them.
    Export(ExportArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Cloud directory with cloud.db and the checkpoint public key audit-key.pub.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Trusted checkpoint public key file, repeatable for rotated keys
    /// (default: DIR/audit-key.pub).
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Cloud directory with cloud.db.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// First sequence number to export.
    #[arg(long, default_value_t = 1)]
    from_seq: u64,
    /// Last sequence number to export (default: the last entry).
    #[arg(long)]
    to_seq: Option<u64>,
    /// Output format: a FHIR R4 Bundle of AuditEvent resources, or one JSON entry per line.
    #[arg(long, value_enum)]
    format: ExportFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// A FHIR R4 Bundle of AuditEvent resources.
    Fhir,
    /// One entry per line, as stored, with hashes in hex.
    Jsonl,
}

/// Runs an `audit` subcommand.
pub fn run(args: AuditArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match args.command {
        AuditCommand::Verify(args) => run_verify(args),
        AuditCommand::Export(args) => run_export(args),
    }
}

fn run_verify(args: VerifyArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let key_files = if args.public_keys.is_empty() {
        vec![args.dir.join(CHECKPOINT_PUBLIC_KEY_FILE)]
    } else {
        args.public_keys
    };
    // Read-only, so neither command can change the log.
    let connection = medtunnel_audit::open_read_only(&database_path(&args.dir)?)?;
    let keys = key_files
        .iter()
        .map(|path| CheckpointPublicKey::load_file(path))
        .collect::<Result<Vec<_>, _>>()?;
    let report = medtunnel_audit::verify(&connection, &keys)?;
    match report.first_bad {
        None => {
            println!(
                "audit log intact: {} entries, {} checkpoints",
                report.entries, report.checkpoints
            );
            Ok(())
        }
        Some(bad) => Err(format!("audit log broken at {bad}").into()),
    }
}

fn run_export(args: ExportArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let to_seq = args.to_seq.unwrap_or(u64::MAX);
    if args.from_seq > to_seq {
        return Err(format!(
            "--from-seq {} is after --to-seq {to_seq}; swap them",
            args.from_seq
        )
        .into());
    }
    // Read-only, so neither command can change the log.
    let connection = medtunnel_audit::open_read_only(&database_path(&args.dir)?)?;
    let mut output = BufWriter::new(io::stdout().lock());
    match args.format {
        ExportFormat::Fhir => {
            // NOTE: the Bundle is built in memory, so a very large range needs as much
            // memory as its JSON; export it in parts with --from-seq and --to-seq.
            let entries = medtunnel_audit::read_entries(&connection, args.from_seq, to_seq)?;
            serde_json::to_writer_pretty(&mut output, &medtunnel_audit::to_fhir_bundle(&entries))?;
            writeln!(output)?;
        }
        ExportFormat::Jsonl => {
            medtunnel_audit::for_each_entry(
                &connection,
                args.from_seq,
                to_seq,
                |entry| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                    serde_json::to_writer(&mut output, &entry)?;
                    writeln!(output)?;
                    Ok(())
                },
            )?;
        }
    }
    output.flush()?;
    Ok(())
}

/// Returns DIR/cloud.db, or an error naming the directory to pass when it does not exist.
fn database_path(dir: &Path) -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let path = dir.join(DATABASE_FILE);
    if !path.is_file() {
        return Err(format!(
            "no cloud database at {}; pass the directory given to `medtunnel provision`",
            path.display()
        )
        .into());
    }
    Ok(path)
}
