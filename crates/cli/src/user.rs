//! `medtunnel user`: create, list and disable the accounts of the cloud API, and link
//! devices to patients. Works on `DIR/cloud.db` directly, not over HTTP.

use std::error::Error;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, Subcommand};
use medtunnel_api::admin::{self, NewPassword};
use medtunnel_api::{ApiState, Role};

/// File name of the cloud database inside the provisioning directory.
const DATABASE_FILE: &str = "cloud.db";

/// Arguments of `medtunnel user`.
#[derive(Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. Clinicians and operators also get a TOTP secret, printed once
    /// as a provisioning URI for an authenticator app.
    #[command(group(ArgGroup::new("password").required(true).args(["password_file", "password_stdin"])))]
    Create {
        /// Provisioning directory that contains cloud.db.
        #[arg(long)]
        dir: PathBuf,
        /// User name: 3 to 64 characters from a-z, 0-9, '.', '_' and '-'.
        #[arg(long)]
        username: String,
        /// Role: patient, caregiver, clinician, researcher, operator or auditor.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// File whose first line is the password (at least 12 characters).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List all accounts with id, role and state.
    List {
        /// Provisioning directory that contains cloud.db.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Disable an account: it can no longer sign in, and its tokens stop working.
    Disable {
        /// Provisioning directory that contains cloud.db.
        #[arg(long)]
        dir: PathBuf,
        /// User name of the account.
        #[arg(long)]
        username: String,
    },
    /// Link a registered device to the patient who wears it.
    LinkDevice {
        /// Provisioning directory that contains cloud.db.
        #[arg(long)]
        dir: PathBuf,
        /// User name of the patient.
        #[arg(long)]
        patient: String,
        /// Device id.
        #[arg(long)]
        device: String,
    },
}

/// Runs `medtunnel user`, printing to standard output.
pub fn run(args: UserArgs) -> Result<(), Box<dyn Error + Send + Sync>> {
    run_to(args, &mut io::stdout().lock())
}

/// Runs `medtunnel user`, printing to `out`.
pub fn run_to(args: UserArgs, out: &mut dyn Write) -> Result<(), Box<dyn Error + Send + Sync>> {
    match args.command {
        UserCommand::Create {
            dir,
            username,
            role,
            password_file,
            password_stdin,
        } => {
            let password = read_password(password_file.as_deref(), password_stdin)?;
            let state = open(&dir)?;
            let created = admin::create_account(
                state.access(),
                &username,
                role,
                password.expose_secret(),
                state.config().password_cost,
                state.now_s(),
            )?;
            let account = &created.account;
            writeln!(
                out,
                "created {} account {} with id {}",
                account.role, account.username, account.id
            )?;
            if let Some(secret) = &created.totp_secret {
                writeln!(
                    out,
                    "add this URI to the authenticator app now; it is not shown again:"
                )?;
                writeln!(
                    out,
                    "{}",
                    secret.provisioning_uri(&account.username).as_str()
                )?;
            }
        }
        UserCommand::List { dir } => {
            let state = open(&dir)?;
            writeln!(out, "{:>6}  {:<12} {:<9} username", "id", "role", "state")?;
            for account in state.access().accounts()? {
                let account_state = if account.disabled_at_s.is_some() {
                    "disabled"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{:>6}  {:<12} {:<9} {}",
                    account.id, account.role, account_state, account.username
                )?;
            }
        }
        UserCommand::Disable { dir, username } => {
            let state = open(&dir)?;
            let account = admin::disable_account(state.access(), &username, state.now_s())?;
            writeln!(
                out,
                "disabled account {} (id {}); its tokens are revoked",
                account.username, account.id
            )?;
        }
        UserCommand::LinkDevice {
            dir,
            patient,
            device,
        } => {
            let state = open(&dir)?;
            let account = admin::link_device(&state, &patient, &device)?;
            writeln!(
                out,
                "linked device {device} to patient {} (id {})",
                account.username, account.id
            )?;
        }
    }
    Ok(())
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::from_name(text).ok_or_else(|| {
        format!("{text:?} is not a role; use patient, caregiver, clinician, researcher, operator or auditor")
    })
}

fn read_password(
    file: Option<&Path>,
    from_stdin: bool,
) -> Result<NewPassword, Box<dyn Error + Send + Sync>> {
    match (file, from_stdin) {
        (Some(path), _) => {
            let file = File::open(path).map_err(|error| {
                format!(
                    "opening the password file {} failed: {error}",
                    path.display()
                )
            })?;
            Ok(NewPassword::read_line_from(BufReader::new(file))?)
        }
        (None, true) => Ok(NewPassword::read_line_from(io::stdin().lock())?),
        (None, false) => {
            Err("give the password with --password-file FILE or --password-stdin".into())
        }
    }
}

/// Opens `dir/cloud.db`, which must exist, so that a mistyped directory does not
/// silently create an empty database.
fn open(dir: &Path) -> Result<ApiState, Box<dyn Error + Send + Sync>> {
    let path = dir.join(DATABASE_FILE);
    if !path.is_file() {
        return Err(format!(
            "no cloud database at {}; run `medtunnel provision --dir {}` first",
            path.display(),
            dir.display()
        )
        .into());
    }
    Ok(ApiState::open(&path)?)
}
