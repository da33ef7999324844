//! An emulated Microsoft 365 tenant for the tests: the Graph emulator served in-process on a
//! loopback port, ferry pointed at it, and its state read back as the emulator holds it.

use std::path::PathBuf;
use std::process::{Command, Output};

use ferry_graph_emulator::{Config, Emulator};
use serde_json::Value;

use crate::ferry;

pub const UPN: &str = "alice@contoso.test";

#[derive(Debug)]
pub struct Tenant {
    pub emulator: Emulator,
    pub home: tempfile::TempDir,
    /// Serves the emulator; dropped last.
    _runtime: tokio::runtime::Runtime,
}

impl Tenant {
    /// A tenant with one user, documented limits, tokens of 4 s (so runs refresh them);
    /// `adjust` changes the configuration first.
    pub fn start(tls: Option<(PathBuf, PathBuf)>, adjust: impl FnOnce(&mut Config)) -> Tenant {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let home = tempfile::tempdir().expect("temp dir");
        std::fs::write(home.path().join("secret"), "s3cret-value\n").expect("secret");
        let mut config = Config::new("contoso", "app-1", "s3cret-value", &[UPN]);
        // Short-lived tokens, so a run refreshes its token midway.
        config.token_lifetime = std::time::Duration::from_secs(4);
        config.limits = ferry_graph_emulator::Limits::documented();
        config.tls = tls;
        adjust(&mut config);
        let emulator = runtime
            .block_on(Emulator::start(
                config,
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .expect("emulator starts");
        Tenant {
            emulator,
            home,
            _runtime: runtime,
        }
    }

    pub fn uri(&self) -> String {
        format!(
            "graph://contoso/{UPN}?client_id=app-1&endpoint={}",
            self.emulator.url()
        )
    }

    /// The `ferry migrate` command, with the app's secret from a file for the Graph side(s).
    pub fn command(&self, from: &str, to: &str, journal: &str, extra: &[&str]) -> Command {
        self.command_with(&self.home.path().join("secret"), from, to, journal, extra)
    }

    /// The same with the app's credential (a secret, or a certificate and key) from `secret`.
    pub fn command_with(
        &self,
        secret: &std::path::Path,
        from: &str,
        to: &str,
        journal: &str,
        extra: &[&str],
    ) -> Command {
        let mut command = ferry(self.home.path());
        command
            .args(["migrate", "--from", from, "--to", to, "--journal"])
            .arg(self.home.path().join(journal));
        if from.starts_with("graph:") {
            command.arg("--from-password-file").arg(secret);
        }
        if to.starts_with("graph:") {
            command.arg("--to-password-file").arg(secret);
        }
        command.args(extra);
        command
    }

    /// `ferry migrate`, which must exit 0.
    pub fn migrate(&self, from: &str, to: &str, journal: &str, extra: &[&str]) -> Output {
        let started = std::time::Instant::now();
        let output = self
            .command(from, to, journal, extra)
            .output()
            .expect("run ferry");
        eprintln!(
            "ferry migrate {from} → {to}: {:.1} s, {:?}",
            started.elapsed().as_secs_f64(),
            self.emulator.counters(UPN)
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Adds a user holding a licence of the tenant's first SKU (so it has a mailbox).
    pub fn add_licensed_user(&self, upn: &str, display_name: &str) {
        self.emulator.with_world(|world| {
            let sku = world.tenant.skus[0].sku_id.clone();
            world.tenant.add_user(upn, display_name);
            let index = world.tenant.user_index(upn).expect("added");
            world.tenant.users[index].licenses.push(sku);
        });
    }

    /// (users named `upn`, the licences of the first).
    pub fn provisioned(&self, upn: &str) -> (usize, Vec<String>) {
        self.emulator.with_world(|world| {
            let users: Vec<_> = world
                .tenant
                .users
                .iter()
                .filter(|u| u.upn.eq_ignore_ascii_case(upn))
                .collect();
            (
                users.len(),
                users
                    .first()
                    .map(|u| u.licenses.clone())
                    .unwrap_or_default(),
            )
        })
    }

    /// The mailbox as the emulator holds it, each message with its folder's `path`.
    pub fn mailbox(&self) -> Vec<Value> {
        self.mailbox_of(UPN)
    }

    /// The same of the mailbox of `upn`.
    pub fn mailbox_of(&self, upn: &str) -> Vec<Value> {
        let state = self.emulator.with_world(|world| {
            let index = world.tenant.user_index(upn).expect("user");
            serde_json::to_value(&world.tenant.users[index].mailbox).expect("json")
        });
        let folders = state["folders"].as_object().expect("folders").clone();
        let path = |mut id: String| {
            let mut names = Vec::new();
            while let Some(folder) = folders.get(&id) {
                if folder["parent"].is_null() {
                    break;
                }
                names.push(folder["display_name"].as_str().unwrap_or("").to_string());
                id = folder["parent"].as_str().unwrap_or("").to_string();
            }
            names.reverse();
            names.join("/")
        };
        state["messages"]
            .as_object()
            .expect("messages")
            .values()
            .map(|m| {
                let mut m = m.clone();
                m["path"] = Value::String(path(m["folder"].as_str().unwrap_or("").to_string()));
                m
            })
            .collect()
    }
}

/// The Python of the virtual environment holding Microsoft's Graph SDK for Python (made by
/// scripts/test), which must be there.
pub fn sdk_python() -> PathBuf {
    let venv = std::env::var_os("FERRY_GRAPH_SDK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/ferry-test/graph-sdk"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test installs Microsoft's Graph SDK for Python there",
        python.display()
    );
    python
}

/// A self-signed certificate and its key made by openssl in `dir`: (certificate, key).
/// `key` is openssl's `-newkey` argument and its options (`rsa:2048`, `ec -pkeyopt
/// ec_paramgen_curve:prime256v1`); `extension` an `-addext` value.
pub fn self_signed(
    dir: &std::path::Path,
    name: &str,
    key: &str,
    extension: Option<&str>,
) -> (PathBuf, PathBuf) {
    let (cert, key_file) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let mut command = Command::new("openssl");
    command.args(["req", "-x509", "-nodes", "-days", "2", "-newkey"]);
    command.args(key.split(' '));
    command.args(["-subj", &format!("/CN={name}")]);
    if let Some(extension) = extension {
        command.args(["-addext", extension]);
    }
    let made = command
        .arg("-keyout")
        .arg(&key_file)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key_file)
}
