//! Names: folder paths and the Maildir++ directory names that hold them, and the unique names
//! of message files.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_engine::SpecialUse;

use ferry_names::mutf7;
/// INBOX is the folder that is the root directory itself.
pub(super) use ferry_names::{INBOX, is_inbox};

/// Deliveries by this process, for unique names (the `Q` part).
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// The index key of a folder: its path, with INBOX in one spelling.
pub(super) fn folder_key(folder: &str) -> String {
    if is_inbox(folder) {
        INBOX.to_owned()
    } else {
        folder.to_owned()
    }
}

/// A folder path's segments, or why Maildir++ cannot hold it.
pub(super) fn split_folder(folder: &str) -> Result<Vec<&str>, String> {
    let segments: Vec<&str> = folder.split('/').collect();
    for segment in &segments {
        if segment.is_empty() {
            return Err("a folder name cannot be empty (the path has an empty segment)".to_owned());
        }
        if segment.contains('.') {
            return Err(format!(
                "{segment:?} contains '.', which Maildir++ uses as its hierarchy separator"
            ));
        }
        if segment.contains('\0') {
            return Err(format!("{segment:?} contains a NUL character"));
        }
    }
    Ok(segments)
}

/// The directory name Maildir++ (and Dovecot) gives a folder: `.` + segments joined by `.`,
/// in modified UTF-7.
pub(super) fn encoded_dir_name(segments: &[&str]) -> String {
    format!(".{}", mutf7::encode(&segments.join(".")))
}

/// The directory name with the folder name in raw UTF-8, as some tools write it.
pub(super) fn raw_dir_name(segments: &[&str]) -> String {
    format!(".{}", segments.join("."))
}

/// The directory name for a folder path as this module writes it, or why it has none.
pub fn folder_dir_name(folder: &str) -> Result<String, String> {
    split_folder(folder).map(|segments| encoded_dir_name(&segments))
}

/// The folder path of a root entry named `.<name>`: modified UTF-7 when it is valid as such,
/// raw UTF-8 otherwise. `None` for names with empty segments (`..x`, `.a..b`, `.a.`), which
/// name no folder: see [`unmappable_reason`].
pub(super) fn decode_dir_name(dir_name: &str) -> Option<String> {
    let name = dir_name.strip_prefix('.')?;
    let decoded = mutf7::decode(name).unwrap_or_else(|| name.to_owned());
    let segments: Vec<&str> = decoded.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(segments.join("/"))
}

/// Why the folder directory `shown` (named `dir_name`) is not migrated when its name maps to
/// no folder path.
///
/// Maildir++ has no escape for its separator: every `.` of a directory name stands for `/`,
/// so `..evil` would be the folder `/evil` and `.foo..bar` the folder `foo//bar`, paths with
/// an empty folder name in them, which neither a Maildir++ tree nor an IMAP server can hold
/// (a `.` read as a literal dot instead would be ambiguous — `.a...b` — and could not be
/// written back). So there is no faithful mapping: such a directory is reported, never guessed.
pub(super) fn unmappable_reason(shown: &str) -> String {
    format!(
        "the directory {shown} holds a Maildir folder, but its name has an empty part between \
         dots (Maildir++ reads every '.' as a folder separator), so it names no folder ferry \
         can create: its messages are not copied; rename the directory so that no part of its \
         name is empty, and run again"
    )
}

/// The role of a folder, from its name.
pub(super) fn special_use(path: &str) -> Option<SpecialUse> {
    const NAMES: [(&str, SpecialUse); 7] = [
        (INBOX, SpecialUse::Inbox),
        ("Sent", SpecialUse::Sent),
        ("Drafts", SpecialUse::Drafts),
        ("Trash", SpecialUse::Trash),
        ("Junk", SpecialUse::Junk),
        ("Spam", SpecialUse::Junk),
        ("Archive", SpecialUse::Archive),
    ];
    NAMES
        .iter()
        .find(|(name, _)| path.eq_ignore_ascii_case(name))
        .map(|(_, role)| *role)
}

/// Whether `id` can be a unique name: one file name, without the info separator.
pub(super) fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        Err("empty")
    } else if id.contains(['/', '\0']) {
        Err("contains '/' or NUL")
    } else if id.contains(':') {
        Err("contains ':', which starts a Maildir info suffix")
    } else if id.starts_with('.') {
        Err("starts with '.'")
    } else {
        Ok(())
    }
}

/// Whether `name` can be the name of a message file as listed: one file name that is not a
/// dot file (info suffix allowed).
pub(super) fn is_message_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

/// A new unique name, `<secs>.M<micros>P<pid>Q<n>.<host>` as the Maildir spec recommends:
/// time, process and a per-process counter make it unique on this host, the host name across
/// hosts sharing the tree.
pub(super) fn unique_name(hostname: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = DELIVERIES.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{n}.{hostname}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id()
    )
}

/// This host's name with `/` and `:` escaped as the Maildir spec says (`\057`, `\072`).
pub(super) fn unique_hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    let name = if name.is_empty() {
        "localhost".into()
    } else {
        name
    };
    escape_hostname(&name)
}

pub(super) fn escape_hostname(name: &str) -> String {
    name.replace('/', "\\057").replace(':', "\\072")
}
