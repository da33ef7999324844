//! Where the journal key comes from: `--passphrase-file`, `FERRY_PASSPHRASE`, or a key file in
//! the user's config directory, created on first use. Never from a command-line value.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ferry_journal::{KeyFileSecret, KeySource, Passphrase};

/// The variable a passphrase may come from.
pub const PASSPHRASE_VARIABLE: &str = "FERRY_PASSPHRASE";

/// How to unlock a journal, as the operator gave it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyArgs {
    /// Read the journal passphrase from this file (or set FERRY_PASSPHRASE). Without either,
    /// ferry uses its key file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Use this key file instead of the default one in the config directory
    /// (~/.config/ferry/journal.key).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// Whether a missing key file may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it (a new journal is about to be made).
    Create,
    /// Refuse (an existing journal is being opened: a new key could not unlock it).
    Refuse,
}

/// Resolves the key source. Messages for the operator go to `notices`.
pub fn resolve(
    args: &KeyArgs,
    missing: Missing,
    notices: &mut dyn Write,
) -> anyhow::Result<KeySource> {
    if let Some(path) = &args.passphrase_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the passphrase file {}", path.display()))?;
        return Ok(KeySource::Passphrase(Passphrase::new(text).with_context(
            || format!("the passphrase file {} is unusable", path.display()),
        )?));
    }
    if let Some(text) = std::env::var_os(PASSPHRASE_VARIABLE) {
        let text = text
            .into_string()
            .map_err(|_| anyhow::anyhow!("{PASSPHRASE_VARIABLE} is not valid UTF-8"))?;
        return Ok(KeySource::Passphrase(
            Passphrase::new(text).with_context(|| format!("{PASSPHRASE_VARIABLE} is unusable"))?,
        ));
    }
    let path = match &args.key_file {
        Some(path) => path.clone(),
        None => default_key_file()?,
    };
    if path.exists() {
        return read_key_file(&path, notices);
    }
    match missing {
        Missing::Refuse => bail!(
            "no key file at {} and no passphrase given: give --passphrase-file or set \
             {PASSPHRASE_VARIABLE} if this journal was made with a passphrase",
            path.display()
        ),
        Missing::Create => create_key_file(&path, notices),
    }
}

/// `~/.config/ferry/journal.key` (or `$XDG_CONFIG_HOME/ferry/journal.key`).
pub fn default_key_file() -> anyhow::Result<PathBuf> {
    let config = dirs::config_dir().context(
        "cannot tell the user's config directory (is HOME set?); give --key-file or a passphrase",
    )?;
    Ok(config.join("ferry").join("journal.key"))
}

fn read_key_file(path: &Path, notices: &mut dyn Write) -> anyhow::Result<KeySource> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        writeln!(
            notices,
            "warning: the key file {} can be read by other users; run: chmod 600 {}",
            path.display(),
            path.display()
        )?;
    }
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the key file {}", path.display()))?;
    let secret = KeyFileSecret::from_bytes(&bytes)
        .with_context(|| format!("the key file {} is damaged", path.display()))?;
    Ok(KeySource::KeyFile(secret))
}

fn create_key_file(path: &Path, notices: &mut dyn Write) -> anyhow::Result<KeySource> {
    let secret = KeyFileSecret::generate()?;
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating the key file {}", path.display()))?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing the key file {}", path.display()))?;
    writeln!(
        notices,
        "created the journal key file {} (mode 0600). It unlocks every journal made without a \
         passphrase: back it up. Losing it loses those journals.",
        path.display()
    )?;
    Ok(KeySource::KeyFile(secret))
}
