//! A secret ferry needs for a server: an IMAP password or OAuth token, a Graph app's client
//! secret. It comes from the environment, a file or a command, never from the command line,
//! and it is never shown: `Debug` prints where it comes from, not what it is. Shared by every
//! protocol crate.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_engine::StoreError;
use zeroize::Zeroizing;

/// Where the secret comes from. A file is read again, and a command run again, at every
/// login, so a token refreshed mid-run (by another process, or by the command itself) is
/// picked up by the next connection, which is also how a session ended for an expired token
/// comes back.
#[derive(Clone)]
pub enum Secret {
    /// A password or token held in memory (from the environment).
    Value(Arc<Zeroizing<String>>),
    /// A file holding the password or token.
    File(PathBuf),
    /// A shell command that prints the password or token (an OAuth helper, a vault client).
    Command(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("Secret(<hidden>)"),
            Secret::File(path) => write!(f, "Secret(file {})", path.display()),
            Secret::Command(command) => write!(f, "Secret(command {command})"),
        }
    }
}

impl Secret {
    /// The secret, read now (a file again, a command run again, at every call).
    pub fn read(&self) -> Result<Zeroizing<String>, StoreError> {
        match self {
            Secret::Value(value) => Ok(Zeroizing::new(value.as_str().to_owned())),
            Secret::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    StoreError::Unusable(format!(
                        "cannot read the password file {}: {error}",
                        path.display()
                    ))
                })?;
                let text = Zeroizing::new(text);
                Ok(Zeroizing::new(
                    text.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            }
            Secret::Command(command) => {
                // Its output is the secret: never shown. Its errors are, as the command's own.
                let output = std::process::Command::new("/bin/sh")
                    .args(["-c", command])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|error| {
                        StoreError::Unusable(format!(
                            "cannot run the password command `{command}`: {error}"
                        ))
                    })?;
                let text = Zeroizing::new(output.stdout);
                if !output.status.success() {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    return Err(StoreError::Unusable(format!(
                        "the password command `{command}` failed ({}): {}",
                        output.status,
                        stderr.trim()
                    )));
                }
                let text = std::str::from_utf8(&text).map_err(|_| {
                    StoreError::Unusable(format!(
                        "the password command `{command}` printed something that is not UTF-8"
                    ))
                })?;
                let secret = text.trim_end_matches(['\r', '\n']);
                if secret.is_empty() {
                    return Err(StoreError::Unusable(format!(
                        "the password command `{command}` printed nothing"
                    )));
                }
                Ok(Zeroizing::new(secret.to_owned()))
            }
        }
    }
}
