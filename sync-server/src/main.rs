//! `ocop-sync-server`: serve, demo, admin and rubric commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ocop_shared::wire::{AccountRole, CreateUserRequest};
use ocop_sync_server::{Options, Principal, demo, open_blocking, serve_until};
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "ocop-sync-server", version, about = "OCOP Score sync server")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct DataArg {
    /// Data directory (database and attachments).
    #[arg(long, env = "OCOP_DATA", default_value = "ocop-data")]
    data: PathBuf,
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Address to listen on.
    #[arg(long, env = "OCOP_BIND", default_value = "127.0.0.1:8787")]
    bind: SocketAddr,
    /// Password of the `admin` account created at first start (generated and printed when absent).
    #[arg(long, env = "OCOP_ADMIN_PASSWORD")]
    admin_password: Option<String>,
    /// Public base URL put into enrolment QR codes.
    #[arg(long, env = "OCOP_PUBLIC_URL")]
    public_url: Option<String>,
    /// A reverse proxy (address or network, e.g. 10.0.0.5 or 10.0.0.0/8)
    /// whose `Forwarded`/`X-Forwarded-For` names the client; repeat it, or
    /// separate with commas. Without it forwarding headers are ignored.
    #[arg(long = "trusted-proxy", env = "OCOP_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = ocop_sync_server::client_ip::parse_proxy)]
    trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the sync API.
    Serve(ServeArgs),
    /// Seed a realistic provincial round if empty, print the logins, then serve.
    Demo(ServeArgs),
    /// Account administration on the local database.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// Rubric files: validate, import, publish.
    Rubric {
        #[command(subcommand)]
        cmd: RubricCmd,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create an account.
    AddUser {
        #[command(flatten)]
        data: DataArg,
        username: String,
        full_name: String,
        /// admin or assessor.
        #[arg(long, default_value = "assessor")]
        role: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// List every device (id, user, name, created, revoked) to find the one to revoke.
    ListDevices {
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke a device token; its next request gets 401.
    RevokeDevice {
        #[command(flatten)]
        data: DataArg,
        device_id: Uuid,
    },
}

#[derive(Subcommand)]
enum RubricCmd {
    /// Check a rubric file and list every problem.
    Validate { file: PathBuf },
    /// Import a rubric file (unpublished).
    Import {
        #[command(flatten)]
        data: DataArg,
        file: PathBuf,
    },
    /// Publish an imported rubric version (it becomes immutable).
    Publish {
        #[command(flatten)]
        data: DataArg,
        id: String,
        version: u32,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.cmd {
        Cmd::Serve(a) => serve_cmd(a, false),
        Cmd::Demo(a) => serve_cmd(a, true),
        Cmd::Admin { cmd } => match cmd {
            AdminCmd::AddUser {
                data,
                username,
                full_name,
                role,
                password,
            } => {
                let state = open_blocking(&data.data, Options::default())?;
                print_first_admin(&state);
                let role = match role.as_str() {
                    "admin" => AccountRole::Admin,
                    "assessor" => AccountRole::Assessor,
                    other => {
                        return Err(format!("role must be admin or assessor, not {other}").into());
                    }
                };
                let u = state.store.create_user(
                    &Principal::system(),
                    &CreateUserRequest {
                        username,
                        full_name,
                        role,
                        password,
                    },
                )?;
                println!("{}", serde_json::to_string_pretty(&u)?);
                Ok(())
            }
            AdminCmd::ListDevices { data } => {
                let state = open_blocking(&data.data, Options::default())?;
                print_first_admin(&state);
                let devices = state.store.list_devices(&Principal::system())?;
                println!("{}", device_table(&devices));
                Ok(())
            }
            AdminCmd::RevokeDevice { data, device_id } => {
                let state = open_blocking(&data.data, Options::default())?;
                print_first_admin(&state);
                state.store.revoke_device(&Principal::system(), device_id)?;
                println!("device {device_id} revoked");
                Ok(())
            }
        },
        Cmd::Rubric { cmd } => match cmd {
            RubricCmd::Validate { file } => {
                let text = std::fs::read_to_string(&file)?;
                match ocop_shared::validate::load_rubric(&text) {
                    Ok(l) => {
                        println!(
                            "{}@{}: valid, {} criteria",
                            l.rubric.id,
                            l.rubric.version,
                            l.rubric.criterion_count()
                        );
                        for w in l.warnings {
                            println!("warning: {w}");
                        }
                        Ok(())
                    }
                    Err(e) => {
                        for m in e.messages() {
                            println!("{m}");
                        }
                        Err(format!("{} is not a valid rubric", file.display()).into())
                    }
                }
            }
            RubricCmd::Import { data, file } => {
                let state = open_blocking(&data.data, Options::default())?;
                print_first_admin(&state);
                let text = std::fs::read_to_string(&file)?;
                let r = state.store.import_rubric(&Principal::system(), &text)?;
                println!("{}", serde_json::to_string_pretty(&r)?);
                Ok(())
            }
            RubricCmd::Publish { data, id, version } => {
                let state = open_blocking(&data.data, Options::default())?;
                let r = state
                    .store
                    .publish_rubric(&Principal::system(), &id, version)?;
                println!("{}", serde_json::to_string_pretty(&r)?);
                Ok(())
            }
        },
    }
}

fn print_first_admin(state: &ocop_sync_server::AppState) {
    if let Some(pw) = &state.first_admin_password {
        println!("created account `admin` with password: {pw}");
        println!("(shown once; store it safely)");
    }
}

fn serve_cmd(a: ServeArgs, demo_data: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut state = open_blocking(
        &a.data.data,
        Options {
            admin_password: a.admin_password.clone(),
            public_url: a.public_url.clone(),
        },
    )?;
    state.trusted_proxies =
        ocop_sync_server::client_ip::TrustedProxies::new(a.trusted_proxies.clone());
    print_first_admin(&state);
    if demo_data {
        let url = a
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", a.bind));
        let info = demo::seed_with_url(&*state.store, &url)?;
        println!(
            "demo round {} ({}; {} products)",
            info.round_id,
            if info.created {
                "created"
            } else {
                "already there"
            },
            info.products.len()
        );
        println!(
            "{:<10} {:<22} {:<10} {:<16} {:<11} qr",
            "login", "name", "role", "password", "code"
        );
        for u in &info.users {
            println!(
                "{:<10} {:<22} {:<10} {:<16} {:<11} {}",
                u.username,
                u.full_name,
                format!("{:?}", u.role).to_lowercase(),
                u.password,
                u.enrolment_code,
                u.qr_payload
            );
        }
        for p in &info.products {
            println!(
                "  {} {} — {} ({}, {})",
                p.code, p.name, p.producer, p.commune, p.district
            );
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = ocop_sync_server::listen(a.bind)?;
        println!("listening on http://{}", listener.local_addr()?);
        serve_until(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

/// The `admin list-devices` table: one device per line, tab-separated.
fn device_table(devices: &[ocop_sync_server::store::DeviceInfo]) -> String {
    let mut out = String::from("id\tuser\tname\tcreated\trevoked");
    for d in devices {
        out.push_str(&format!(
            "\n{}\t{}\t{}\t{}\t{}",
            d.id,
            d.username,
            d.name,
            d.created_at,
            d.revoked_at.as_deref().unwrap_or("-")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_devices_prints_id_user_name_created_and_revoked() {
        let id = Uuid::now_v7();
        let d = |revoked: Option<&str>| ocop_sync_server::store::DeviceInfo {
            id,
            user_id: Uuid::now_v7(),
            username: "lan.tt".into(),
            name: "điện thoại của Lan".into(),
            created_at: "2026-11-28T10:00:00Z".into(),
            revoked_at: revoked.map(Into::into),
        };
        let t = device_table(&[d(None), d(Some("2026-11-28T11:00:00Z"))]);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines[0], "id\tuser\tname\tcreated\trevoked");
        assert_eq!(
            lines[1],
            format!("{id}\tlan.tt\tđiện thoại của Lan\t2026-11-28T10:00:00Z\t-")
        );
        assert!(lines[2].ends_with("\t2026-11-28T11:00:00Z"));
    }
}
