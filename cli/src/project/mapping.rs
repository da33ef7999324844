//! Which source mailbox goes to which target mailbox, in which batch: from a CSV file
//! (`source,target[,batch]`) and from a list of source addresses mapped by rules (the same
//! address, a domain rewrite, a regex with captures, the target with the source's display
//! name: [`super::directory`]). What cannot be run safely is named
//! before anything moves: a line that does not parse, a source no rule maps, a source given
//! twice with different targets, and two sources mapped to one target (their mail would mix):
//! those mailboxes are left out of every run until the mapping is fixed.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::config::{Project, Rule};
use super::directory::{self, Names, Person};

/// The batch of a mailbox that names none.
pub const DEFAULT_BATCH: &str = "default";

/// A mailbox pair's name: `source → target`.
pub fn name(source: &str, target: &str) -> String {
    format!("{source} → {target}")
}

/// One mailbox pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mailbox {
    pub source: String,
    pub target: String,
    pub batch: String,
}

impl Mailbox {
    /// Its name in journals and reports.
    pub fn name(&self) -> String {
        name(&self.source, &self.target)
    }

    /// Its journal's directory name: both addresses, readable, safe in a path.
    pub fn dir_name(&self) -> String {
        let safe = |text: &str| -> String {
            text.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "@.-_+".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}__{}", safe(&self.source), safe(&self.target))
    }
}

/// What the mapping cannot run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A line of a file that does not parse.
    Malformed { place: String, why: String },
    /// A source address no rule maps.
    Unmapped { source: String },
    /// A source whose display name several targets have.
    AmbiguousName {
        source: String,
        name: String,
        targets: Vec<String>,
    },
    /// A source given more than once with different targets.
    AmbiguousSource {
        source: String,
        targets: Vec<String>,
    },
    /// More than one source mapped to one target.
    SharedTarget {
        target: String,
        sources: Vec<String>,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Malformed { place, why } => write!(f, "{place}: {why}"),
            Problem::Unmapped { source } => write!(f, "{source}: no rule maps it"),
            Problem::AmbiguousName {
                source,
                name,
                targets,
            } => write!(
                f,
                "{source}: its display name {name:?} is that of {} targets: {}",
                targets.len(),
                targets.join(", ")
            ),
            Problem::AmbiguousSource { source, targets } => write!(
                f,
                "{source}: given more than once, to {}",
                targets.join(", ")
            ),
            Problem::SharedTarget { target, sources } => write!(
                f,
                "{target}: the target of {} (their mail would mix)",
                sources.join(", ")
            ),
        }
    }
}

/// The project's mailboxes, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub mailboxes: Vec<Mailbox>,
    pub problems: Vec<Problem>,
}

impl Mapping {
    /// Reads the project's mapping.
    pub fn load(project: &Project) -> anyhow::Result<Mapping> {
        let source = &project.file.mapping;
        let mut found = Vec::new();
        let mut problems = Vec::new();
        if let Some(csv) = &source.csv {
            let path = project.path(csv);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the mapping {}", path.display()))?;
            found.extend(from_csv(&text, &path.display().to_string(), &mut problems));
        }
        if let Some(list) = &source.sources {
            let people = directory::read(project, list, &mut problems)?;
            let names = match &source.targets {
                Some(targets) if source.rules.contains(&Rule::DisplayName) => {
                    Names::new(&directory::read(project, targets, &mut problems)?)
                }
                _ => Names::default(),
            };
            let batch = source.batch.as_deref().unwrap_or(DEFAULT_BATCH);
            for person in people {
                match map_person(&person, &source.rules, &names) {
                    Ok(Some(target)) => found.push(Mailbox {
                        source: person.address,
                        target,
                        batch: batch.to_string(),
                    }),
                    Ok(None) => problems.push(Problem::Unmapped {
                        source: person.address,
                    }),
                    Err(problem) => problems.push(problem),
                }
            }
        }
        Ok(checked(found, problems))
    }

    /// The mailboxes of `batch` (all with `None`), or the one of source or target `mailbox`.
    pub fn select(&self, batch: Option<&str>, mailbox: Option<&str>) -> Vec<Mailbox> {
        self.mailboxes
            .iter()
            .filter(|m| batch.is_none_or(|b| m.batch == b))
            .filter(|m| {
                mailbox.is_none_or(|a| {
                    m.source.eq_ignore_ascii_case(a) || m.target.eq_ignore_ascii_case(a)
                })
            })
            .cloned()
            .collect()
    }
}

/// The records of a CSV file of the project (`#` comments, fields trimmed, any number of
/// fields), each with where it is (`PLACE line N`); a first line whose first field is one of
/// `header` names the columns and is skipped; a record that does not parse is a problem.
pub(super) fn records(
    text: &str,
    place: &str,
    header: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<(String, csv::StringRecord)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                problems.push(Problem::Malformed {
                    place: format!("{place} line {line}"),
                    why: error.to_string(),
                });
                continue;
            }
        };
        let names_columns = record
            .get(0)
            .is_some_and(|first| header.iter().any(|h| first.eq_ignore_ascii_case(h)));
        if index == 0 && names_columns {
            continue;
        }
        let line = record.position().map_or(0, csv::Position::line);
        out.push((format!("{place} line {line}"), record));
    }
    out
}

/// `source,target[,batch]` lines; a first line naming the columns is skipped.
fn from_csv(text: &str, place: &str, problems: &mut Vec<Problem>) -> Vec<Mailbox> {
    let mut out = Vec::new();
    for (place, record) in records(text, place, &["source"], problems) {
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        match fields.as_slice() {
            [source, target] | [source, target, ""] if !source.is_empty() && !target.is_empty() => {
                out.push(Mailbox {
                    source: source.to_string(),
                    target: target.to_string(),
                    batch: DEFAULT_BATCH.to_string(),
                })
            }
            [source, target, batch] if !source.is_empty() && !target.is_empty() => {
                out.push(Mailbox {
                    source: source.to_string(),
                    target: target.to_string(),
                    batch: batch.to_string(),
                })
            }
            _ => problems.push(Problem::Malformed {
                place,
                why: "expected source,target[,batch]".into(),
            }),
        }
    }
    out
}

/// The target of `person` by the first rule that applies; a display name several targets
/// have is a problem, not a fall through to the next rule.
fn map_person(person: &Person, rules: &[Rule], names: &Names) -> Result<Option<String>, Problem> {
    for rule in rules {
        if *rule == Rule::DisplayName {
            let Some(name) = &person.name else {
                continue;
            };
            match names.target(name) {
                Ok(Some(target)) => return Ok(Some(target.to_string())),
                Ok(None) => continue,
                Err(targets) => {
                    return Err(Problem::AmbiguousName {
                        source: person.address.clone(),
                        name: name.clone(),
                        targets,
                    });
                }
            }
        }
        if let Some(target) = map_by_rules(&person.address, std::slice::from_ref(rule)) {
            return Ok(Some(target));
        }
    }
    Ok(None)
}

/// The target of `address` by the first address rule that applies (`display_name` is
/// [`map_person`]'s).
pub fn map_by_rules(address: &str, rules: &[Rule]) -> Option<String> {
    rules.iter().find_map(|rule| match rule {
        Rule::DisplayName => None,
        Rule::Same => Some(address.to_string()),
        Rule::Domain([from, to]) => {
            let (local, domain) = address.rsplit_once('@')?;
            domain
                .eq_ignore_ascii_case(from)
                .then(|| format!("{local}@{to}"))
        }
        Rule::Regex([pattern, replacement]) => {
            // Checked when the project was loaded.
            let regex = regex::Regex::new(pattern).ok()?;
            let found = regex.captures(address)?;
            let whole = found.get(0)?;
            if whole.start() != 0 || whole.end() != address.len() {
                return None;
            }
            let mut out = String::new();
            found.expand(replacement, &mut out);
            Some(out)
        }
    })
}

/// The mailboxes that can run: duplicates merged, ambiguous sources and shared targets left
/// out with the reason.
fn checked(found: Vec<Mailbox>, mut problems: Vec<Problem>) -> Mapping {
    let mut by_source: BTreeMap<String, Vec<Mailbox>> = BTreeMap::new();
    for mailbox in found {
        let entry = by_source.entry(mailbox.source.to_lowercase()).or_default();
        if !entry.contains(&mailbox) {
            entry.push(mailbox);
        }
    }
    let mut single = Vec::new();
    for (_, mut given) in by_source {
        let mut targets: Vec<String> = given.iter().map(|m| m.target.to_lowercase()).collect();
        targets.sort();
        targets.dedup();
        if targets.len() > 1 {
            problems.push(Problem::AmbiguousSource {
                source: given[0].source.clone(),
                targets: given.iter().map(|m| m.target.clone()).collect(),
            });
        } else if let Some(first) = given.drain(..).next() {
            single.push(first);
        }
    }
    let mut by_target: BTreeMap<String, Vec<Mailbox>> = BTreeMap::new();
    for mailbox in single {
        by_target
            .entry(mailbox.target.to_lowercase())
            .or_default()
            .push(mailbox);
    }
    let mut mailboxes = Vec::new();
    for (_, sharing) in by_target {
        if sharing.len() > 1 {
            problems.push(Problem::SharedTarget {
                target: sharing[0].target.clone(),
                sources: sharing.iter().map(|m| m.source.clone()).collect(),
            });
        } else {
            mailboxes.extend(sharing);
        }
    }
    mailboxes.sort_by(|a, b| (&a.batch, &a.source).cmp(&(&b.batch, &b.source)));
    Mapping {
        mailboxes,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_map_in_order_and_only_whole_addresses() {
        let rules = vec![
            Rule::Regex([
                r"^(\w+)\.(\w+)@old\.example$".into(),
                "$2.$1@new.example".into(),
            ]),
            Rule::Domain(["old.example".into(), "new.example".into()]),
        ];
        assert_eq!(
            map_by_rules("ada.lovelace@old.example", &rules).as_deref(),
            Some("lovelace.ada@new.example")
        );
        assert_eq!(
            map_by_rules("bob@OLD.example", &rules).as_deref(),
            Some("bob@new.example")
        );
        assert_eq!(map_by_rules("bob@elsewhere.example", &rules), None);
        assert_eq!(map_by_rules("x@y", &[Rule::Same]).as_deref(), Some("x@y"));
    }

    #[test]
    fn a_csv_with_a_header_comments_and_bad_lines_and_what_cannot_run() {
        let text = "source,target,batch\n# staff first\nann@old,ann@new,staff\n\
                    bob@old,bob@new\nbob@old,bob@new\ncid@old,shared@new,staff\n\
                    dan@old,shared@new,staff\neve@old,eve@new\neve@old,eve2@new\nlonely\n";
        let mut problems = Vec::new();
        let found = from_csv(text, "m.csv", &mut problems);
        let mapping = checked(found, problems);
        let names: Vec<(String, String)> = mapping
            .mailboxes
            .iter()
            .map(|m| (m.source.clone(), m.batch.clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("bob@old".to_string(), "default".to_string()),
                ("ann@old".to_string(), "staff".to_string())
            ]
        );
        let said: Vec<String> = mapping.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(said.len(), 3, "{said:#?}");
        assert!(said[0].starts_with("m.csv line 10: expected"), "{said:#?}");
        assert!(
            said.iter()
                .any(|p| p.starts_with("eve@old: given more than once"))
        );
        assert!(
            said.iter()
                .any(|p| p.starts_with("shared@new: the target of cid@old, dan@old"))
        );
    }
}
