//! Directories for mapping mailboxes by display name: who is who on each side, read from a
//! CSV (`address[,display name]`, an export of an IMAP server's directory) or listed from a
//! Microsoft 365 endpoint's tenant (`endpoint:NAME`). A display name matches another when they
//! are equal ignoring case and runs of white space.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::config::Project;
use super::mapping::Problem;

/// One person of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub address: String,
    pub name: Option<String>,
}

/// A display name as it is compared.
pub fn normal(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The people `given` names: `endpoint:NAME` lists that Microsoft 365 endpoint's users; any
/// other value is a CSV file of the project (`address[,display name]`, `#` comments, a header
/// line starting with `address` or `source` skipped). Lines that do not parse are problems.
pub fn read(
    project: &Project,
    given: &Path,
    problems: &mut Vec<Problem>,
) -> anyhow::Result<Vec<Person>> {
    if let Some(endpoint) = given.to_str().and_then(|g| g.strip_prefix("endpoint:")) {
        return listed(project, endpoint);
    }
    let path = project.path(given);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the directory {}", path.display()))?;
    Ok(from_csv(&text, &path.display().to_string(), problems))
}

fn from_csv(text: &str, place: &str, problems: &mut Vec<Problem>) -> Vec<Person> {
    let mut people = Vec::new();
    for (place, record) in super::mapping::records(text, place, &["address", "source"], problems) {
        let fields: Vec<&str> = record.iter().collect();
        match fields.as_slice() {
            [] | [""] => {}
            [address] => people.push(Person {
                address: (*address).to_string(),
                name: None,
            }),
            [address, name] if !address.is_empty() => people.push(Person {
                address: (*address).to_string(),
                name: (!name.is_empty()).then(|| (*name).to_string()),
            }),
            _ => problems.push(Problem::Malformed {
                place,
                why: "expected address[,display name]".into(),
            }),
        }
    }
    people
}

/// The users of a Microsoft 365 endpoint's tenant.
pub fn listed(project: &Project, name: &str) -> anyhow::Result<Vec<Person>> {
    let Some(endpoint) = project.file.endpoints.get(name) else {
        bail!("[mapping]: no endpoint named {name} to list users from");
    };
    if !endpoint.uri.starts_with("graph:") {
        bail!(
            "[mapping]: endpoint {name} is not Microsoft 365 (graph:); list its people in a \
             CSV file (address,display name) instead"
        );
    }
    // The tenant's users, not one mailbox's: the URI's user part is not used.
    let uri = endpoint.uri_for("directory");
    let secret = endpoint.secret_for(project, "directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let users = runtime
        .block_on(ferry_graph::provision::directory(&uri, secret))
        .with_context(|| format!("listing the users of endpoint {name}"))?;
    Ok(users
        .into_iter()
        .map(|user| Person {
            address: user.upn,
            name: (!user.display_name.is_empty()).then_some(user.display_name),
        })
        .collect())
}

/// Target addresses by display name.
#[derive(Debug, Clone, Default)]
pub struct Names {
    by_name: BTreeMap<String, Vec<String>>,
}

impl Names {
    pub fn new(people: &[Person]) -> Names {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for person in people {
            if let Some(name) = &person.name {
                by_name
                    .entry(normal(name))
                    .or_default()
                    .push(person.address.clone());
            }
        }
        Names { by_name }
    }

    /// The target of display name `name`: `Ok(None)` when none has it, an error naming them
    /// when several do.
    pub fn target(&self, name: &str) -> Result<Option<&str>, Vec<String>> {
        match self.by_name.get(&normal(name)).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one.as_str())),
            Some(many) => Err(many.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_csv_with_and_without_names() {
        let mut problems = Vec::new();
        let text = "address,display name\n# staff\nann@old,Ann Smith\nbob@old\n\
                    \"cid@old\",\"Doe, Cid\"\nx,y,z\n";
        let people = from_csv(text, "d.csv", &mut problems);
        assert_eq!(people.len(), 3, "{people:?}");
        assert_eq!(people[2].name.as_deref(), Some("Doe, Cid"));
        assert_eq!(people[1].name, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn names_match_ignoring_case_and_spaces_and_twins_are_named() {
        let people = [
            Person {
                address: "ann.smith@new".into(),
                name: Some("Ann  SMITH".into()),
            },
            Person {
                address: "j.lee@new".into(),
                name: Some("Jo Lee".into()),
            },
            Person {
                address: "jo.lee@new".into(),
                name: Some("jo lee".into()),
            },
        ];
        let names = Names::new(&people);
        assert_eq!(names.target(" ann smith "), Ok(Some("ann.smith@new")));
        assert_eq!(names.target("Nobody"), Ok(None));
        assert_eq!(
            names.target("Jo Lee"),
            Err(vec!["j.lee@new".to_string(), "jo.lee@new".to_string()])
        );
    }
}
