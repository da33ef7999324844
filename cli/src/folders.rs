//! Folder rules on the command line and in a project: which source folders a migration
//! leaves out, and which it carries under another path (merged when two land on one).

use ferry_engine::Store;
use ferry_stores::folders::FolderRules;

/// Which source folders a migration leaves out or carries under another path.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FolderArgs {
    /// Leave out the source folders matching this pattern, and the folders below them (`*`
    /// within one level, `**` across levels); may be given more than once.
    #[arg(long = "exclude-folder", value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Carry the source folder FROM, and the folders below it, under TO on the target; a
    /// folder renamed onto another source folder's path is merged into it. May be given more
    /// than once.
    #[arg(long = "rename-folder", value_name = "FROM=TO", value_parser = rename_pair)]
    pub rename: Vec<(String, String)>,
}

fn rename_pair(given: &str) -> Result<(String, String), String> {
    match given.split_once('=') {
        Some((from, to)) => Ok((from.to_owned(), to.to_owned())),
        None => Err(format!("{given:?}: give FROM=TO, e.g. \"Sent Items=Sent\"")),
    }
}

impl FolderArgs {
    /// The rules these give, or the wrong one named.
    pub fn rules(&self) -> anyhow::Result<FolderRules> {
        FolderRules::new(&self.exclude, &self.rename).map_err(anyhow::Error::msg)
    }
}

/// The source seen through `rules` (as it is when there are none).
pub fn ruled(store: Box<dyn Store>, rules: FolderRules) -> Box<dyn Store> {
    if rules.is_empty() {
        store
    } else {
        Box::new(ferry_stores::ruled::Ruled::new(store, rules))
    }
}
