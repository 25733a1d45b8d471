//! The `medtunnel` command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod audit;
mod cloud;
mod demo;
mod faults;
mod provision;
mod readings;
mod services;
mod therapy_demo;
mod trace_input;
mod user;

/// medtunnel: an end-to-end encrypted, authenticated tunnel from medical devices to
/// their cloud, through an untrusted phone.
#[derive(Parser)]
#[command(name = "medtunnel", version, about, long_about = None)]
struct Cli {
    /// Log filter, as in RUST_LOG (for example `info`, `debug`, `medtunnel_cloud=debug`).
    #[arg(long, global = true, default_value = "warn", env = "MEDTUNNEL_LOG")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the cloud's static key, its database and a batch of device identities.
    Provision(provision::ProvisionArgs),
    /// Run the cloud gateway: terminate device tunnels and store readings.
    Cloud(services::CloudArgs),
    /// Run a relay (the phone): forward opaque frames between one device and the cloud.
    Relay(services::RelayArgs),
    /// Run a simulated CGM that replays a glucose trace through a relay.
    Device(services::DeviceArgs),
    /// Revoke a device: the cloud rejects its handshakes from then on.
    Revoke(provision::RevokeArgs),
    /// Print the readings the cloud stored for one device.
    Readings(readings::ReadingsArgs),
    /// Manage people's accounts of the cloud API (patients, clinicians, operators...).
    User(user::UserArgs),
    /// Verify or export the tamper-evident audit trail.
    Audit(audit::AuditArgs),
    /// Provision, run a cloud, one relay and one CGM per trace subject, and summarize.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let result = match cli.command {
        Command::Provision(args) => provision::run(args),
        Command::Cloud(args) => services::run_cloud(args),
        Command::Relay(args) => services::run_relay(args),
        Command::Device(args) => services::run_device(args),
        Command::Revoke(args) => provision::revoke(args),
        Command::Readings(args) => readings::run(args),
        Command::User(args) => user::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(error.as_ref());
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// Sends logs to standard error, filtered by `filter`; an invalid filter falls back to
/// `warn` with a note.
fn init_logging(filter: &str) {
    let env_filter = match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(env_filter) => env_filter,
        Err(error) => {
            eprintln!("invalid log filter {filter:?} ({error}); using \"warn\"");
            tracing_subscriber::EnvFilter::new("warn")
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Error type of every subcommand: the message is printed for a person.
pub type CommandResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
