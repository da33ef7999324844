//! Helpers for the workspace-level integration tests in `tests/tests/`: they drive the real
//! `ferry` binary as an operator would.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of the `ferry` binary of this build, built on first use.
///
/// Integration tests of this crate cannot name another package's binary through
/// `CARGO_BIN_EXE_*`, so the binary is built with the same cargo and profile that built the test
/// (a no-op when it is fresh) and found beside the test executable's directory.
pub fn ferry_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let test_exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> → target/<profile>
            let profile_dir = test_exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("test executable lives in target/<profile>/deps")
                .to_path_buf();
            let profile = profile_dir
                .file_name()
                .and_then(|name| name.to_str())
                .expect("profile directory name")
                .to_owned();
            let target_dir = profile_dir
                .parent()
                .expect("target directory")
                .to_path_buf();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "--quiet", "-p", "ferry-cli", "--bin", "ferry"])
                .arg("--target-dir")
                .arg(&target_dir);
            match profile.as_str() {
                "debug" => {}
                "release" => {
                    build.arg("--release");
                }
                other => {
                    build.args(["--profile", other]);
                }
            }
            let status = build
                .status()
                .expect("running cargo build for the ferry binary");
            assert!(status.success(), "building the ferry binary failed");
            let binary = profile_dir.join("ferry");
            assert!(binary.is_file(), "no ferry binary at {}", binary.display());
            binary
        })
        .clone()
}

/// A `Command` for the ferry binary with a clean environment: no passphrase variable and a
/// private config directory, so the operator's own key file is never touched.
pub fn ferry(config_home: &std::path::Path) -> Command {
    let mut command = Command::new(ferry_binary());
    command
        .env_remove("FERRY_PASSPHRASE")
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home);
    command
}
