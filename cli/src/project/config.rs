//! `ferry.toml`: a migration project. Named endpoints (a URI with `{user}` where each
//! mailbox's address goes, and where its password or token comes from: a file, a command or a
//! variable, never the file itself nor argv), run defaults, batches (which endpoints a batch
//! goes from and to, and its options) and where the mailbox mapping comes from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ferry_stores::Secret;
use serde::Deserialize;

/// The project file's name, looked for in the current directory.
pub const FILE: &str = "ferry.toml";

/// A parsed, checked project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory of the project file: relative paths in it are relative to this.
    pub root: PathBuf,
    pub file: ProjectFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    #[serde(default)]
    pub project: Settings,
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Each batch by name; a mailbox without one is in `default`.
    #[serde(default)]
    pub batches: BTreeMap<String, Batch>,
    pub mapping: MappingSource,
    /// Which source folders every mailbox leaves out or carries under another path.
    #[serde(default)]
    pub folders: Folders,
}

/// The project's folder rules (`ferry plan` shows where each folder goes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folders {
    /// Patterns of source folders left out, with the folders below them.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Source folder = target path; the folders below it follow.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Target path = the source folders merged into it.
    #[serde(default)]
    pub merge: BTreeMap<String, Vec<String>>,
}

impl Folders {
    /// The rules as a run takes them: a merge is a rename of each of its folders onto one path.
    pub fn args(&self) -> crate::folders::FolderArgs {
        let mut rename: Vec<(String, String)> = self
            .rename
            .iter()
            .map(|(from, to)| (from.clone(), to.clone()))
            .collect();
        for (into, froms) in &self.merge {
            rename.extend(froms.iter().map(|from| (from.clone(), into.clone())));
        }
        crate::folders::FolderArgs {
            exclude: self.exclude.clone(),
            rename,
        }
    }
}

/// The project's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the journals live.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// Mailboxes migrated at once.
    #[serde(default = "default_jobs")]
    pub jobs: usize,
    /// The project's key file (default: `STATE/project.key`, made on first use).
    pub key_file: Option<PathBuf>,
    /// The endpoint mailboxes come from, unless their batch says.
    pub from: Option<String>,
    /// The endpoint they go to, unless their batch says.
    pub to: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            state: default_state(),
            jobs: default_jobs(),
            key_file: None,
            from: None,
            to: None,
        }
    }
}

fn default_state() -> PathBuf {
    PathBuf::from("ferry-state")
}

fn default_jobs() -> usize {
    4
}

/// A server (or a tree of Maildirs) mailboxes are migrated from or to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Its URI, with `{user}` where a mailbox's address goes.
    pub uri: String,
    /// A file holding each mailbox's password or token (`{user}` may be in the path).
    pub password_file: Option<PathBuf>,
    /// A command printing it (`{user}` is given shell-quoted).
    pub password_command: Option<String>,
    /// A variable holding it (one secret for every mailbox: an admin's or an app's).
    pub password_env: Option<String>,
    /// At most this many connections to the server at once, over every mailbox of the run.
    pub connections: Option<usize>,
    /// Microsoft 365: at most this many requests in flight at once over every mailbox of the
    /// endpoint (the app's shared budget); without it, learned from throttling answers.
    pub in_flight: Option<usize>,
}

/// How one batch runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The endpoint its mailboxes come from (default: the project's only source).
    pub from: Option<String>,
    /// The endpoint they go to.
    pub to: Option<String>,
    /// Create a missing Microsoft 365 target user with a licence of this SKU.
    pub create_target_mailbox: Option<String>,
    /// The usage location of the users created.
    pub usage_location: Option<String>,
    /// Delete on the target what ferry copied there and the source no longer has.
    #[serde(default)]
    pub delete_removed: bool,
}

/// Where the mailbox mapping comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSource {
    /// A CSV file `source,target[,batch]` (a header line is allowed).
    pub csv: Option<PathBuf>,
    /// The source addresses mapped by `rules`: a CSV file `address[,display name]` (one
    /// address per line will do), or `endpoint:NAME` for the users of a Microsoft 365 endpoint.
    pub sources: Option<PathBuf>,
    /// Where the `display_name` rule finds the targets' display names: a CSV file
    /// `address,display name`, or `endpoint:NAME` for a Microsoft 365 endpoint's users.
    pub targets: Option<PathBuf>,
    /// How a source address becomes a target address, in order; the first that applies wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The batch of mailboxes mapped by rules.
    pub batch: Option<String>,
}

/// One mapping rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Rule {
    /// The same address.
    Same,
    /// `[from, to]`: an address at domain `from` goes to the same local part at `to`.
    Domain([String; 2]),
    /// `[pattern, replacement]`: a regex over the whole address, with `$1`… captures.
    Regex([String; 2]),
    /// The target whose display name is the source's (from `targets`).
    DisplayName,
}

impl Project {
    /// Reads and checks the project file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Project> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the project file {} (`ferry init` writes one)",
                path.display()
            )
        })?;
        let file: ProjectFile = toml::from_str(&text)
            .with_context(|| format!("the project file {} is not valid", path.display()))?;
        let root = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let project = Project { root, file };
        project.check()?;
        Ok(project)
    }

    fn check(&self) -> anyhow::Result<()> {
        let file = &self.file;
        if file.endpoints.is_empty() {
            bail!("the project names no endpoint: add [endpoints.NAME] with a uri");
        }
        for (name, endpoint) in &file.endpoints {
            let given = [
                endpoint.password_file.is_some(),
                endpoint.password_command.is_some(),
                endpoint.password_env.is_some(),
            ];
            if given.iter().filter(|g| **g).count() > 1 {
                bail!("endpoint {name}: give one of password_file, password_command, password_env");
            }
            if endpoint.connections == Some(0) || endpoint.in_flight == Some(0) {
                bail!("endpoint {name}: connections and in_flight must be at least 1");
            }
        }
        for (name, batch) in &file.batches {
            for end in [&batch.from, &batch.to].into_iter().flatten() {
                if !file.endpoints.contains_key(end) {
                    bail!("batch {name}: no endpoint named {end}");
                }
            }
        }
        for end in [&file.project.from, &file.project.to].into_iter().flatten() {
            if !file.endpoints.contains_key(end) {
                bail!("[project]: no endpoint named {end}");
            }
        }
        let mapping = &file.mapping;
        if mapping.csv.is_none() && mapping.sources.is_none() {
            bail!("[mapping] needs a csv file, or a sources file and rules");
        }
        if mapping.sources.is_some() && mapping.rules.is_empty() {
            bail!("[mapping] sources are mapped by rules: add rules = [\"same\"] or others");
        }
        if mapping.rules.iter().any(|r| matches!(r, Rule::DisplayName)) && mapping.targets.is_none()
        {
            bail!(
                "[mapping] the display_name rule needs targets = \"FILE.csv\" (address,display \
                 name) or \"endpoint:NAME\" (a Microsoft 365 endpoint's users)"
            );
        }
        for rule in &mapping.rules {
            if let Rule::Regex([pattern, _]) = rule {
                regex::Regex::new(pattern)
                    .with_context(|| format!("mapping rule regex {pattern:?}"))?;
            }
        }
        file.folders
            .args()
            .rules()
            .context("[folders] of the project file")?;
        if file.project.jobs == 0 {
            bail!("[project] jobs must be at least 1");
        }
        Ok(())
    }

    /// A path given in the project file, relative to the file's directory.
    pub fn path(&self, given: &Path) -> PathBuf {
        if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.root.join(given)
        }
    }

    /// Where the journals live.
    pub fn state(&self) -> PathBuf {
        self.path(&self.file.project.state)
    }

    /// The endpoints a batch goes from and to: its own, else the project's.
    pub fn ends(&self, batch: &str) -> anyhow::Result<(&Endpoint, &Endpoint)> {
        let own = self.file.batches.get(batch);
        let settings = &self.file.project;
        let from = own.and_then(|b| b.from.as_ref()).or(settings.from.as_ref());
        let to = own.and_then(|b| b.to.as_ref()).or(settings.to.as_ref());
        let endpoint = |name: Option<&String>, which: &str| match name {
            Some(name) => self
                .file
                .endpoints
                .get(name)
                .with_context(|| format!("batch {batch}: no endpoint named {name}")),
            None => bail!(
                "batch {batch}: no endpoint to go {which}: set {which} = \"…\" in [batches.{batch}] \
                 or [project]"
            ),
        };
        Ok((endpoint(from, "from")?, endpoint(to, "to")?))
    }

    /// A batch's options (none set when the project has no such section).
    pub fn batch(&self, name: &str) -> Batch {
        self.file.batches.get(name).cloned().unwrap_or_default()
    }

    /// The name of an endpoint.
    pub fn endpoint_name(&self, endpoint: &Endpoint) -> &str {
        self.file
            .endpoints
            .iter()
            .find(|(_, e)| std::ptr::eq(*e, endpoint))
            .map_or("", |(name, _)| name.as_str())
    }
}

impl Endpoint {
    /// Its URI for mailbox `user`.
    pub fn uri_for(&self, user: &str) -> String {
        expand_uri(&self.uri, user)
    }

    /// Its secret for mailbox `user`.
    pub fn secret_for(&self, project: &Project, user: &str) -> Option<Secret> {
        if let Some(file) = &self.password_file {
            let path = file.to_string_lossy().replace("{user}", user);
            return Some(Secret::File(project.path(Path::new(&path))));
        }
        if let Some(command) = &self.password_command {
            return Some(Secret::Command(
                command.replace("{user}", &shell_quoted(user)),
            ));
        }
        let variable = self.password_env.as_ref()?;
        std::env::var(variable)
            .ok()
            .map(|value| Secret::Value(std::sync::Arc::new(zeroize::Zeroizing::new(value))))
    }
}

/// `template` with `{user}` replaced: percent-encoded where it is the URI's user name (before
/// the `@` of the authority), as it is elsewhere.
pub fn expand_uri(template: &str, user: &str) -> String {
    let Some(at) = template.find("{user}") else {
        return template.to_string();
    };
    let authority_start = template.find("://").map_or(0, |i| i + 3);
    let after = &template[at + "{user}".len()..];
    let in_userinfo = at >= authority_start
        && !template[authority_start..at].contains('/')
        && after
            .split('/')
            .next()
            .is_some_and(|rest| rest.contains('@'));
    let value = if in_userinfo {
        user.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    } else {
        user.to_string()
    };
    template.replace("{user}", &value)
}

/// `text` as one shell word.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_encoded_in_the_user_name_and_not_in_a_path() {
        assert_eq!(
            expand_uri("imap://{user}@mail.example:993", "bob@old.example"),
            "imap://bob%40old.example@mail.example:993"
        );
        assert_eq!(
            expand_uri("graph://tenant/{user}?client_id=x", "bob@new.example"),
            "graph://tenant/bob@new.example?client_id=x"
        );
        assert_eq!(
            expand_uri("maildir:/srv/mail/{user}", "bob"),
            "maildir:/srv/mail/bob"
        );
    }

    #[test]
    fn a_command_gets_the_user_as_one_shell_word() {
        assert_eq!(shell_quoted("o'neil@x"), r"'o'\''neil@x'");
    }

    #[test]
    fn a_project_names_its_problems() {
        let bad = |text: &str| {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join(FILE);
            std::fs::write(&path, text).expect("write");
            format!("{:#}", Project::load(&path).expect_err("refused"))
        };
        let two = r#"
[endpoints.old]
uri = "imap://{user}@a"
password_file = "pw/{user}"
password_env = "X"
[mapping]
csv = "m.csv"
"#;
        assert!(bad(two).contains("give one of"), "{}", bad(two));
        let typo = "[endpoints.old]\nuri = \"x\"\nconections = 3\n[mapping]\ncsv = \"m.csv\"\n";
        assert!(bad(typo).contains("conections"), "{}", bad(typo));
        let no_rules = "[endpoints.old]\nuri = \"x\"\n[mapping]\nsources = \"s.txt\"\n";
        assert!(bad(no_rules).contains("rules"), "{}", bad(no_rules));
    }
}
