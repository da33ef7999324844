//! Folder rules: which source folders a migration leaves out, and under which path the others
//! reach the engine. A rename moves a folder and everything below it; two source folders that
//! end under one path are merged into it (a `merge` is a set of renames onto one path). Rules
//! are pure: [`FolderRules::route`] answers for one path, without a store.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};

/// Where one source folder goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Left out, by this `exclude` pattern.
    Excluded(String),
    /// Carried under this path (the source path itself when no rule names it).
    To(String),
}

/// Folders by ruled path, and those left out with their pattern ([`FolderRules::group`]).
pub type Grouped<T> = (BTreeMap<String, Vec<T>>, Vec<(T, String)>);

/// A project's or a run's folder rules.
#[derive(Debug, Clone, Default)]
pub struct FolderRules {
    /// Patterns of folders left out, each with its text.
    exclude: Vec<(String, GlobMatcher)>,
    /// (from, to): a folder `from` and those below it go under `to`. Longest `from` first.
    rename: Vec<(String, String)>,
}

impl FolderRules {
    /// Rules from `exclude` patterns (`*` within one level, `**` across levels, `?`,
    /// `[abc]`; a folder left out takes the folders below it) and `rename` pairs (`merge` is
    /// given as renames onto one path). A wrong rule is named.
    pub fn new(exclude: &[String], rename: &[(String, String)]) -> Result<FolderRules, String> {
        let mut rules = FolderRules::default();
        for pattern in exclude {
            let trimmed = pattern.trim_matches('/');
            if trimmed.is_empty() {
                return Err(format!(
                    "folder exclude {pattern:?}: give a folder or a pattern"
                ));
            }
            let glob = GlobBuilder::new(trimmed)
                .literal_separator(true)
                .build()
                .map_err(|error| format!("folder exclude {pattern:?}: {error}"))?;
            rules
                .exclude
                .push((pattern.clone(), glob.compile_matcher()));
        }
        for (from, to) in rename {
            let (from, to) = (from.trim_matches('/'), to.trim_matches('/'));
            if from.is_empty() || to.is_empty() {
                return Err(format!(
                    "folder rename {from:?} -> {to:?}: both sides name a folder (a/b/c)"
                ));
            }
            if let Some((_, earlier)) = rules.rename.iter().find(|(f, _)| f == from) {
                if earlier != to {
                    return Err(format!(
                        "folder {from:?} is renamed twice: to {earlier:?} and to {to:?}"
                    ));
                }
                continue;
            }
            rules.rename.push((from.to_owned(), to.to_owned()));
        }
        // The most specific rename wins: "A/B" before "A".
        rules
            .rename
            .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Ok(rules)
    }

    /// Whether no rule is given: every folder goes under its own path.
    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty() && self.rename.is_empty()
    }

    /// `folders` by where the rules send them (`path` tells each one's source path): each
    /// ruled path with the folders that go there, in the order given (two or more: merged),
    /// and the folders left out, each with the pattern that left it out.
    pub fn group<T>(
        &self,
        folders: impl IntoIterator<Item = T>,
        path: impl Fn(&T) -> &str,
    ) -> Grouped<T> {
        let mut into: BTreeMap<String, Vec<T>> = BTreeMap::new();
        let mut excluded = Vec::new();
        for folder in folders {
            match self.route(path(&folder)) {
                Route::Excluded(pattern) => excluded.push((folder, pattern)),
                Route::To(to) => into.entry(to).or_default().push(folder),
            }
        }
        (into, excluded)
    }

    /// Where the source folder `path` goes.
    pub fn route(&self, path: &str) -> Route {
        // A folder is left out when it, or a folder above it, matches.
        let mut ancestor = path;
        loop {
            if let Some((pattern, _)) = self.exclude.iter().find(|(_, g)| g.is_match(ancestor)) {
                return Route::Excluded(pattern.clone());
            }
            match ancestor.rsplit_once('/') {
                Some((parent, _)) => ancestor = parent,
                None => break,
            }
        }
        for (from, to) in &self.rename {
            if path == from {
                return Route::To(to.clone());
            }
            if let Some(rest) = path
                .strip_prefix(from.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
            {
                return Route::To(format!("{to}/{rest}"));
            }
        }
        Route::To(path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(exclude: &[&str], rename: &[(&str, &str)]) -> FolderRules {
        let exclude: Vec<String> = exclude.iter().map(|s| (*s).to_owned()).collect();
        let rename: Vec<(String, String)> = rename
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        FolderRules::new(&exclude, &rename).expect("valid rules")
    }

    fn to(path: &str) -> Route {
        Route::To(path.to_owned())
    }

    #[test]
    fn no_rule_keeps_every_path() {
        let none = rules(&[], &[]);
        assert!(none.is_empty());
        assert_eq!(none.route("INBOX/a b"), to("INBOX/a b"));
    }

    #[test]
    fn an_excluded_folder_takes_the_folders_below_it() {
        let r = rules(&["Junk", "Archive/20*"], &[]);
        assert_eq!(r.route("Junk"), Route::Excluded("Junk".into()));
        assert_eq!(r.route("Junk/old"), Route::Excluded("Junk".into()));
        assert_eq!(r.route("Junkyard"), to("Junkyard"));
        assert_eq!(
            r.route("Archive/2019"),
            Route::Excluded("Archive/20*".into())
        );
        assert_eq!(
            r.route("Archive/2019/q1"),
            Route::Excluded("Archive/20*".into())
        );
        // `*` stays within one level.
        assert_eq!(r.route("Archive/x/2019"), to("Archive/x/2019"));
        assert_eq!(r.route("Archive"), to("Archive"));
    }

    #[test]
    fn a_double_star_crosses_levels() {
        let r = rules(&["**/Spam"], &[]);
        assert_eq!(r.route("a/b/Spam"), Route::Excluded("**/Spam".into()));
        assert_eq!(r.route("Spam"), Route::Excluded("**/Spam".into()));
        assert_eq!(r.route("a/Spammy"), to("a/Spammy"));
    }

    #[test]
    fn a_rename_moves_the_folders_below_and_the_longest_wins() {
        let r = rules(&[], &[("Old Mail", "Archive"), ("Old Mail/Keep", "Kept")]);
        assert_eq!(r.route("Old Mail"), to("Archive"));
        assert_eq!(r.route("Old Mail/2019"), to("Archive/2019"));
        assert_eq!(r.route("Old Mail/Keep/x"), to("Kept/x"));
        assert_eq!(r.route("Old Mailbox"), to("Old Mailbox"));
    }

    #[test]
    fn exclusion_comes_before_a_rename() {
        let r = rules(&["Old Mail/Spam"], &[("Old Mail", "Archive")]);
        assert_eq!(
            r.route("Old Mail/Spam"),
            Route::Excluded("Old Mail/Spam".into())
        );
        assert_eq!(r.route("Old Mail/x"), to("Archive/x"));
    }

    #[test]
    fn wrong_rules_are_named() {
        let empty = FolderRules::new(&[String::new()], &[]).expect_err("empty pattern");
        assert!(empty.contains("give a folder"), "{empty}");
        let bad = FolderRules::new(&["[a".into()], &[]).expect_err("bad glob");
        assert!(bad.contains("[a"), "{bad}");
        let twice = FolderRules::new(&[], &[("A".into(), "B".into()), ("A".into(), "C".into())])
            .expect_err("renamed twice");
        assert!(twice.contains("renamed twice"), "{twice}");
        let blank =
            FolderRules::new(&[], &[("A".into(), "/".into())]).expect_err("rename to nothing");
        assert!(blank.contains("both sides"), "{blank}");
    }
}
