//! A seeded generator of a realistic sample Maildir++ tree, for demos, tests and benchmarks.
//!
//! Everything is derived from the seed: no clock, no operating-system randomness. The same
//! seed gives the same tree, byte for byte, with the same file names and modification times.
//!
//! The tree exercises what a real mailbox throws at a migration: nested, modified-UTF-7 and
//! raw-UTF-8 folder names, RFC 2047 subjects and names in several scripts, multipart bodies
//! in every common transfer encoding, base64 attachments, Dovecot keywords, messages still in
//! `new/`, a half-delivered file left in `tmp/`, a tmp-only directory that is not a folder, one
//! message without a `Message-ID`, and two byte-identical copies of one message.

mod body;
mod encode;
mod flags;
mod folders;
mod message;
mod words;
mod write;

use std::fs;
use std::io;
use std::path::Path;

use ferry_maildir::info;

use crate::flags::sample_flags;
use crate::folders::FOLDERS;
use crate::message::Generator;
use crate::write::{create_folders, write_debris, write_file};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// How many message files to write (the two identical copies count as two).
    pub messages: usize,
    /// The seed everything is derived from.
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// Message files written (equals the spec's count).
    pub messages: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The folders, `/`-separated and decoded, sorted.
    pub folders: Vec<String>,
}

/// Writes a sample Maildir++ tree of `spec.messages` messages into `root`, which must be
/// missing or empty (so a second run cannot mix two samples).
pub fn generate(root: &Path, spec: &SampleSpec) -> io::Result<SampleSummary> {
    if root.exists() && fs::read_dir(root)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is not empty; a sample is written into a new or empty directory",
                root.display()
            ),
        ));
    }
    let (dirs, mut keywords) = create_folders(root)?;
    write_debris(root, spec.seed)?;

    let folder_of = assign_folders(spec);
    let mut bytes = 0u64;
    let mut previous: Option<(Vec<u8>, u64, Option<String>)> = None;
    for (index, &folder) in folder_of.iter().enumerate() {
        let plan = &FOLDERS[folder];
        let mut rng = fastrand::Rng::with_seed(mix(spec.seed, index as u64));
        // Index 2 is a byte-identical copy of index 1, in the same folder (INBOX).
        let (message, date, letters) = match previous.take() {
            Some(copy) if index == DUPLICATE => copy,
            _ => {
                let date = plan.dates.0 + rng.u64(0..plan.dates.1 - plan.dates.0);
                let flags = sample_flags(&mut rng, plan.kind);
                let message = Generator {
                    rng: &mut rng,
                    seed: spec.seed,
                    index,
                    date,
                }
                .message(plan.kind, index == NO_MESSAGE_ID);
                let letters = flags.map(|flags| {
                    let mut unchanged = false;
                    info::render_flags(&flags, &mut keywords[folder], &mut unchanged)
                });
                (message, date, letters)
            }
        };
        let unique = format!("{date}.S{}I{index}.sample", spec.seed);
        let path = match &letters {
            Some(letters) => dirs[folder]
                .join("cur")
                .join(format!("{unique}{}{letters}", info::INFO_SEP)),
            None => dirs[folder].join("new").join(&unique),
        };
        write_file(&path, &message, date)?;
        bytes += message.len() as u64;
        if index + 1 == DUPLICATE && spec.messages > DUPLICATE {
            previous = Some((message, date, letters));
        }
    }
    let mut folders: Vec<String> = FOLDERS.iter().map(|p| p.path.to_owned()).collect();
    folders.sort();
    Ok(SampleSummary {
        messages: spec.messages,
        bytes,
        folders,
    })
}

/// The message without a `Message-ID` header.
const NO_MESSAGE_ID: usize = 0;
/// The second of the two identical copies (the first is the index before it).
const DUPLICATE: usize = 2;

/// Which folder each message goes to: the special messages to INBOX, then one message per
/// folder so that every folder has mail, then the rest by weight.
fn assign_folders(spec: &SampleSpec) -> Vec<usize> {
    let mut rng = fastrand::Rng::with_seed(mix(spec.seed, u64::MAX));
    let total: u32 = FOLDERS.iter().map(|p| p.weight).sum();
    (0..spec.messages)
        .map(|index| {
            if index <= DUPLICATE {
                return 0;
            }
            if index - DUPLICATE < FOLDERS.len() {
                return index - DUPLICATE;
            }
            let mut pick = rng.u32(0..total);
            for (folder, plan) in FOLDERS.iter().enumerate() {
                if pick < plan.weight {
                    return folder;
                }
                pick -= plan.weight;
            }
            0
        })
        .collect()
}

/// A seed for one message: splitmix64 of the sample seed and the index, so that neighbouring
/// messages get unrelated streams.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
