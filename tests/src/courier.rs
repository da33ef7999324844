//! Real Courier-IMAP 5.0 servers on loopback (`scripts/courier-instance`): the Debian server
//! that offers UTF8=ACCEPT, and one without LITERAL+, MULTIAPPEND, CONDSTORE, QRESYNC, MOVE
//! and LIST-STATUS, whose folders live under the `INBOX.` namespace. The test user and
//! password are those of [`crate::dovecot`], so its [`Client`] reads these servers too.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::dovecot::{Client, USER, free_port};

/// A Courier instance, stopped on drop.
#[derive(Debug)]
pub struct Courier {
    dir: PathBuf,
    port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/courier-instance")
}

impl Courier {
    /// Starts an instance in `dir`, which must not exist yet.
    pub fn start(dir: &Path) -> Courier {
        let port = free_port();
        let output = Command::new(script())
            .arg("start")
            .arg(dir)
            .arg(port.to_string())
            .output()
            .expect("running scripts/courier-instance");
        assert!(
            output.status.success(),
            "starting Courier failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Courier {
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// Its IMAP port (plaintext).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The plaintext URI of the test user.
    pub fn uri(&self) -> String {
        format!("imap://{USER}@127.0.0.1:{}/?tls=none", self.port)
    }

    /// A logged-in client session (UTF8=ACCEPT not enabled: names come in modified UTF-7).
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}
