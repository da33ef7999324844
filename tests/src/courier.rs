//! Real Courier-IMAP 5.0 servers on loopback (`scripts/courier-instance`): the Debian server
//! that offers UTF8=ACCEPT, and one without LITERAL+, MULTIAPPEND, CONDSTORE, QRESYNC, MOVE
//! and LIST-STATUS, whose folders live under the `INBOX.` namespace. The test user and
//! password are those of [`crate::dovecot`], so its [`Client`] reads these servers too.

use crate::dovecot::{Client, USER, start_instance, stop_instance};
use std::path::{Path, PathBuf};

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
        Courier {
            dir: dir.to_path_buf(),
            port: start_instance(&script(), dir, &[]),
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
        stop_instance(&script(), &self.dir);
    }
}
