//! `graph-emulator`: the Microsoft Graph emulator as a standalone server, so any Graph client
//! can be pointed at it. The client secret is read from a file, never taken on the command
//! line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferry_graph_emulator::{Config, Emulator, Limits};

/// A Microsoft Graph emulator (mail), built from Microsoft's documentation. Not Microsoft's.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to serve on, e.g. 127.0.0.1:8443.
    #[arg(long)]
    listen: SocketAddr,
    /// The tenant's name or id, as clients put it in the token URL.
    #[arg(long)]
    tenant: String,
    /// The app registration's client id.
    #[arg(long)]
    client_id: String,
    /// A file holding the app's client secret.
    #[arg(long, required_unless_present = "client_certificate_file")]
    client_secret_file: Option<PathBuf>,
    /// A file holding a certificate (PEM) uploaded to the app, whose key signs the app's
    /// client assertions (instead of, or besides, a secret).
    #[arg(long)]
    client_certificate_file: Option<PathBuf>,
    /// A user (UPN) with an empty, licensed mailbox; repeat for more.
    #[arg(long = "user")]
    users: Vec<String>,
    /// Keep the tenant's state in this JSON file across restarts.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Throttling: none, documented (4 concurrent, 10,000 requests per 10 min, 150 MB per
    /// 5 min per mailbox), storm (documented and 35% of requests 429), flaky (2% 503/504).
    #[arg(long, default_value = "documented")]
    throttle: String,
    /// Seconds an access token lives.
    #[arg(long, default_value_t = 3599)]
    token_lifetime: u64,
    /// Milliseconds each request takes.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The upload budget per mailbox instead of the profile's, as BYTES/SECONDS (e.g.
    /// 15728640/30: the documented budget scaled down ten times in time, for benchmarks).
    #[arg(long, value_name = "BYTES/SECONDS")]
    upload_budget: Option<String>,
    /// Serve https with this certificate chain (PEM)...
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ...and this private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let read = |path: &PathBuf| match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
        Ok(_) => Err(format!("graph-emulator: {} is empty", path.display())),
        Err(error) => Err(format!(
            "graph-emulator: cannot read {}: {error}",
            path.display()
        )),
    };
    let secret = match args.client_secret_file.as_ref().map(read).transpose() {
        Ok(secret) => secret.unwrap_or_default(),
        Err(said) => {
            eprintln!("{said}");
            return ExitCode::from(2);
        }
    };
    let certificate = match args.client_certificate_file.as_ref().map(read).transpose() {
        Ok(certificate) => certificate,
        Err(said) => {
            eprintln!("{said}");
            return ExitCode::from(2);
        }
    };
    let Some(mut limits) = Limits::profile(&args.throttle) else {
        eprintln!(
            "graph-emulator: unknown --throttle {}: none, documented, storm or flaky",
            args.throttle
        );
        return ExitCode::from(2);
    };
    limits.latency = Duration::from_millis(args.latency_ms);
    if let Some(budget) = &args.upload_budget {
        let parsed = budget
            .split_once('/')
            .and_then(|(b, s)| Some((b.parse::<u64>().ok()?, s.parse::<u64>().ok()?)));
        let Some((bytes, seconds)) = parsed.filter(|(b, s)| *b > 0 && *s > 0) else {
            eprintln!("graph-emulator: --upload-budget is BYTES/SECONDS, e.g. 15728640/30");
            return ExitCode::from(2);
        };
        limits.upload = Some((bytes, Duration::from_secs(seconds)));
    }
    let config = Config {
        tenant: args.tenant,
        client_id: args.client_id,
        client_secret: secret,
        client_certificate: certificate,
        users: args.users,
        token_lifetime: Duration::from_secs(args.token_lifetime.max(1)),
        limits,
        state_file: args.state.clone(),
        tls: args.tls_cert.zip(args.tls_key),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("graph-emulator: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let emulator = match Emulator::start(config, args.listen).await {
            Ok(emulator) => emulator,
            Err(error) => {
                eprintln!("graph-emulator: {error}");
                return ExitCode::from(2);
            }
        };
        println!(
            "graph-emulator: serving {} (Graph at {}/v1.0)",
            emulator.url(),
            emulator.url()
        );
        let _ = tokio::signal::ctrl_c().await;
        if let Some((path, Err(error))) =
            args.state.as_ref().map(|path| (path, emulator.save(path)))
        {
            eprintln!("graph-emulator: cannot save {}: {error}", path.display());
            return ExitCode::from(1);
        }
        ExitCode::SUCCESS
    })
}
