//! The folder layout of the sample: which folders, their kinds, weights, keyword files and
//! date ranges, and the directory each is written to.

use std::io;
use std::path::{Path, PathBuf};

use ferry_maildir::folder_dir_name;

/// The kind of a folder decides senders, flags and body shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Inbox,
    Sent,
    Drafts,
    Trash,
    Archive,
    Work,
    Newsletters,
}

/// A sample folder.
pub(crate) struct FolderPlan {
    pub(crate) path: &'static str,
    /// Share of the messages, relative to the others.
    pub(crate) weight: u32,
    pub(crate) kind: Kind,
    /// Written with its raw UTF-8 name instead of modified UTF-7, as some tools do.
    pub(crate) raw_name: bool,
    /// Its `dovecot-keywords` file; each folder numbers its keywords its own way.
    pub(crate) keywords: &'static str,
    /// Date range of its messages (Unix seconds).
    pub(crate) dates: (u64, u64),
}

const Y2024: u64 = 1_704_067_200;
const Y2025: u64 = 1_735_689_600;
const Y2026: u64 = 1_767_225_600;
pub(crate) const RECENT: (u64, u64) = (1_740_000_000, Y2026);

pub(crate) const FOLDERS: [FolderPlan; 10] = [
    FolderPlan {
        path: "INBOX",
        weight: 34,
        kind: Kind::Inbox,
        raw_name: false,
        keywords: "0 $Junk\n1 Work\n",
        dates: RECENT,
    },
    FolderPlan {
        path: "Sent",
        weight: 12,
        kind: Kind::Sent,
        raw_name: false,
        keywords: "",
        dates: RECENT,
    },
    FolderPlan {
        path: "Drafts",
        weight: 2,
        kind: Kind::Drafts,
        raw_name: false,
        keywords: "",
        dates: RECENT,
    },
    FolderPlan {
        path: "Trash",
        weight: 5,
        kind: Kind::Trash,
        raw_name: false,
        keywords: "",
        dates: RECENT,
    },
    FolderPlan {
        path: "Archive",
        weight: 6,
        kind: Kind::Archive,
        raw_name: false,
        keywords: "",
        dates: (1_640_995_200, Y2024),
    },
    FolderPlan {
        path: "Archive/2024",
        weight: 12,
        kind: Kind::Archive,
        raw_name: false,
        keywords: "",
        dates: (Y2024, Y2025),
    },
    FolderPlan {
        path: "Archive/2025",
        weight: 12,
        kind: Kind::Archive,
        raw_name: false,
        keywords: "",
        dates: (Y2025, Y2026),
    },
    FolderPlan {
        path: "Projects/Ærø",
        weight: 5,
        kind: Kind::Work,
        raw_name: false,
        keywords: "0 Work\n",
        dates: RECENT,
    },
    FolderPlan {
        path: "Работа",
        weight: 5,
        kind: Kind::Work,
        raw_name: true,
        keywords: "1 Work\n",
        dates: RECENT,
    },
    FolderPlan {
        path: "Newsletters",
        weight: 7,
        kind: Kind::Newsletters,
        raw_name: false,
        keywords: "0 $Junk\n",
        dates: RECENT,
    },
];

/// The directory of a sample folder.
pub(crate) fn folder_dir(root: &Path, plan: &FolderPlan) -> io::Result<PathBuf> {
    if plan.path == "INBOX" {
        return Ok(root.to_path_buf());
    }
    let name = if plan.raw_name {
        format!(".{}", plan.path.replace('/', "."))
    } else {
        folder_dir_name(plan.path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
    };
    Ok(root.join(name))
}
