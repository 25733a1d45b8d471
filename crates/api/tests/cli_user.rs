//! The `medtunnel user` subcommand module, run against a provisioned cloud database.

#[path = "../../cli/src/user.rs"]
#[allow(
    dead_code,
    reason = "`run` prints to standard output; the tests call `run_to`"
)]
mod user;

use clap::Parser;
use medtunnel_api::{ApiState, Role};
use medtunnel_store::provision::{provision_cloud, provision_devices};
use medtunnel_store::{DeviceModel, Store};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    user: user::UserArgs,
}

fn run(arguments: &[&str]) -> Result<String, String> {
    let cli = Cli::try_parse_from(std::iter::once("user").chain(arguments.iter().copied()))
        .map_err(|error| error.to_string())?;
    let mut out = Vec::new();
    user::run_to(cli.user, &mut out).map_err(|error| error.to_string())?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn user_commands_manage_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let mut store = Store::open(dir.path().join("cloud.db")).unwrap();
    provision_cloud(dir.path(), &mut store).unwrap();
    let device = provision_devices(dir.path(), &mut store, DeviceModel::Cgm, 1, "cgm-").unwrap()[0]
        .device_id
        .clone();
    drop(store);
    let password_file = dir.path().join("password.txt");
    std::fs::write(&password_file, "a long enough password\n").unwrap();
    let password_arg = password_file.to_str().unwrap();

    let created = run(&[
        "create",
        "--dir",
        dir_arg,
        "--username",
        "pat",
        "--role",
        "patient",
        "--password-file",
        password_arg,
    ])
    .unwrap();
    assert_eq!(created, "created patient account pat with id 1\n");

    let clinician = run(&[
        "create",
        "--dir",
        dir_arg,
        "--username",
        "dr-who",
        "--role",
        "clinician",
        "--password-file",
        password_arg,
    ])
    .unwrap();
    let uri = clinician.lines().nth(2).unwrap();
    assert!(
        uri.starts_with("otpauth://totp/medtunnel:dr-who?secret="),
        "{clinician}"
    );
    assert!(
        uri.ends_with("&issuer=medtunnel&algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );

    let linked = run(&[
        "link-device",
        "--dir",
        dir_arg,
        "--patient",
        "pat",
        "--device",
        &device,
    ])
    .unwrap();
    assert_eq!(
        linked,
        format!("linked device {device} to patient pat (id 1)\n")
    );
    let wrong = run(&[
        "link-device",
        "--dir",
        dir_arg,
        "--patient",
        "dr-who",
        "--device",
        &device,
    ])
    .unwrap_err();
    assert_eq!(
        wrong,
        "account \"dr-who\" is a clinician, not a patient; devices link only to patients"
    );
    let unknown = run(&[
        "link-device",
        "--dir",
        dir_arg,
        "--patient",
        "pat",
        "--device",
        "cgm-9999",
    ])
    .unwrap_err();
    assert_eq!(
        unknown,
        "device \"cgm-9999\" is not registered; provision it first"
    );

    let disabled = run(&["disable", "--dir", dir_arg, "--username", "dr-who"]).unwrap();
    assert_eq!(
        disabled,
        "disabled account dr-who (id 2); its tokens are revoked\n"
    );

    let listing = run(&["list", "--dir", dir_arg]).unwrap();
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["id", "role", "state", "username"],
            vec!["1", "patient", "active", "pat"],
            vec!["2", "clinician", "disabled", "dr-who"],
        ]
    );

    let state = ApiState::open(dir.path().join("cloud.db")).unwrap();
    let patient = state.access().account_by_username("pat").unwrap().unwrap();
    assert_eq!(patient.role, Role::Patient);
    assert_eq!(
        state.access().patient_devices(patient.id).unwrap(),
        [device]
    );
}

#[test]
fn user_create_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    drop(Store::open(dir.path().join("cloud.db")).unwrap());
    let password_file = dir.path().join("password.txt");
    std::fs::write(&password_file, "short\n").unwrap();
    let password_arg = password_file.to_str().unwrap();

    let short = run(&[
        "create",
        "--dir",
        dir_arg,
        "--username",
        "pat",
        "--role",
        "patient",
        "--password-file",
        password_arg,
    ])
    .unwrap_err();
    assert_eq!(short, "the password has 5 characters; use at least 12");

    let role = run(&[
        "create",
        "--dir",
        dir_arg,
        "--username",
        "pat",
        "--role",
        "admin",
        "--password-file",
        password_arg,
    ])
    .unwrap_err();
    assert!(
        role.contains("\"admin\" is not a role; use patient, caregiver"),
        "{role}"
    );

    let name = run(&[
        "create",
        "--dir",
        dir_arg,
        "--username",
        "Pat Smith",
        "--role",
        "patient",
        "--password-file",
        password_arg,
    ])
    .unwrap_err();
    assert!(
        name.starts_with("invalid user name \"Pat Smith\""),
        "{name}"
    );

    let no_password = run(&[
        "create",
        "--dir",
        dir_arg,
        "--username",
        "pat",
        "--role",
        "patient",
    ])
    .unwrap_err();
    assert!(no_password.contains("--password-file"), "{no_password}");

    let missing = dir.path().join("elsewhere");
    let no_db = run(&["list", "--dir", missing.to_str().unwrap()]).unwrap_err();
    assert!(no_db.starts_with("no cloud database at "), "{no_db}");
}
