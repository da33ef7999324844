//! A Maildir file name's info suffix (`:2,<letters>`) and Dovecot's `dovecot-keywords` file.
//!
//! The letters are the Maildir standard's `D`raft, `F`lagged, `P`assed, `R`eplied, `S`een and
//! `T`rashed, ferry's `Flags` being IMAP's: passed is the `$Forwarded` keyword, replied is
//! `\Answered`, trashed is `\Deleted`. Lowercase letters are Dovecot keywords: letter `a` is
//! line `0` of the folder's `dovecot-keywords` file, `b` line `1`, up to `z`.

use std::io::{self, Read};
use std::path::Path;

use ferry_engine::{Flags, SystemFlag};

/// The name of Dovecot's per-folder keyword table.
pub const KEYWORDS_FILE: &str = "dovecot-keywords";

/// The keyword that Maildir's `P` (passed) letter stands for.
pub const FORWARDED: &str = "$Forwarded";

/// How many keywords a folder can have: one per lowercase letter.
pub const MAX_KEYWORDS: usize = 26;

/// The separator between a unique name and its info.
pub const INFO_SEP: &str = ":2,";

/// A folder's keyword table: slot `n` is letter `b'a' + n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    slots: Vec<Option<String>>,
}

impl Keywords {
    /// Parses a `dovecot-keywords` file's text: lines `N name`. Malformed lines and numbers
    /// beyond 25 are ignored, as Dovecot does.
    pub fn parse(text: &str) -> Keywords {
        let mut keywords = Keywords::default();
        for line in text.lines() {
            let Some((number, name)) = line.split_once(' ') else {
                continue;
            };
            let (Ok(slot), name) = (number.parse::<usize>(), name.trim()) else {
                continue;
            };
            if slot < MAX_KEYWORDS && is_valid_keyword(name) {
                if keywords.slots.len() <= slot {
                    keywords.slots.resize(slot + 1, None);
                }
                keywords.slots[slot] = Some(name.to_owned());
            }
        }
        keywords
    }

    /// Reads the table of the folder in `dir`; no file is an empty table. A symbolic link in
    /// the file's place is not followed (nor is anything but a regular file read): it is
    /// refused with the reason, as a link where a message file should be.
    pub fn load(dir: &Path) -> io::Result<Keywords> {
        let mut file = match super::files::open_nofollow(&dir.join(KEYWORDS_FILE)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Keywords::default()),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(Keywords::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (slot, name) in self.slots.iter().enumerate() {
            if let Some(name) = name {
                text.push_str(&format!("{slot} {name}\n"));
            }
        }
        text
    }

    /// The keyword for a lowercase letter.
    pub fn name(&self, letter: char) -> Option<&str> {
        let slot = (letter as usize).checked_sub('a' as usize)?;
        self.slots.get(slot)?.as_deref()
    }

    /// The letter of a keyword already in the table (IMAP keywords compare case-insensitively).
    pub fn letter(&self, keyword: &str) -> Option<char> {
        self.slots
            .iter()
            .position(|slot| {
                slot.as_deref()
                    .is_some_and(|name| name.eq_ignore_ascii_case(keyword))
            })
            .map(slot_letter)
    }

    /// The letter of `keyword`, adding it to a free slot when it is new; `None` when the table
    /// is full. Whether the table changed is reported through `changed`.
    pub fn letter_or_add(&mut self, keyword: &str, changed: &mut bool) -> Option<char> {
        if let Some(letter) = self.letter(keyword) {
            return Some(letter);
        }
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None if self.slots.len() < MAX_KEYWORDS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        self.slots[slot] = Some(keyword.to_owned());
        *changed = true;
        Some(slot_letter(slot))
    }
}

fn slot_letter(slot: usize) -> char {
    char::from(b'a' + slot as u8)
}

/// Whether a keyword can be stored in a `dovecot-keywords` line: an IMAP atom, which has no
/// spaces, controls or special characters.
pub fn is_valid_keyword(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b))
}

/// Splits a file name into its unique name and its info letters (`None` for a name without
/// `:2,` info, as in `new/`). A name with some other `:` info (the obsolete `:1,`) keeps
/// everything before the colon as its unique name and has no flags.
pub fn split_name(file_name: &str) -> (&str, Option<&str>) {
    match file_name.find(':') {
        Some(colon) => (
            &file_name[..colon],
            file_name[colon..].strip_prefix(INFO_SEP),
        ),
        None => (file_name, None),
    }
}

/// The flags that info letters stand for; unknown letters are ignored.
pub fn parse_flags(letters: &str, keywords: &Keywords) -> Flags {
    let mut flags = Flags::new();
    for letter in letters.chars() {
        match letter {
            'D' => flags.set(SystemFlag::Draft, true),
            'F' => flags.set(SystemFlag::Flagged, true),
            'P' => flags.add_keyword(FORWARDED),
            'R' => flags.set(SystemFlag::Answered, true),
            'S' => flags.set(SystemFlag::Seen, true),
            'T' => flags.set(SystemFlag::Deleted, true),
            'a'..='z' => {
                if let Some(name) = keywords.name(letter) {
                    flags.add_keyword(name);
                }
            }
            _ => {}
        }
    }
    flags
}

/// The info letters for `flags`, sorted in ASCII order as the Maildir spec asks. Keywords new
/// to the folder are added to `keywords` (`changed` tells whether it must be written back).
/// Keywords beyond the table's 26 slots, and keywords that are not IMAP atoms, cannot be
/// stored in a Maildir and are left out.
pub fn render_flags(flags: &Flags, keywords: &mut Keywords, changed: &mut bool) -> String {
    let mut letters: Vec<char> = Vec::new();
    for flag in flags.system() {
        letters.push(match flag {
            SystemFlag::Seen => 'S',
            SystemFlag::Answered => 'R',
            SystemFlag::Flagged => 'F',
            SystemFlag::Deleted => 'T',
            SystemFlag::Draft => 'D',
        });
    }
    for keyword in flags.keywords() {
        if keyword.eq_ignore_ascii_case(FORWARDED) {
            letters.push('P');
        } else if is_valid_keyword(keyword)
            && let Some(letter) = keywords.letter_or_add(keyword, changed)
        {
            letters.push(letter);
        }
    }
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_map_both_ways() {
        let keywords = Keywords::parse("0 $Junk\n1 Work\nbogus line\n30 Beyond\n");
        let flags = parse_flags("DFPRSTabcZ", &keywords);
        let expected = Flags::new()
            .with(SystemFlag::Draft)
            .with(SystemFlag::Flagged)
            .with(SystemFlag::Answered)
            .with(SystemFlag::Seen)
            .with(SystemFlag::Deleted)
            .with_keyword(FORWARDED)
            .with_keyword("$Junk")
            .with_keyword("Work");
        assert_eq!(flags, expected);

        let mut table = keywords.clone();
        let mut changed = false;
        assert_eq!(render_flags(&flags, &mut table, &mut changed), "DFPRSTab");
        assert!(!changed);
        assert_eq!(render_flags(&Flags::new(), &mut table, &mut changed), "");
    }

    #[test]
    fn new_keywords_take_free_slots() {
        let mut table = Keywords::parse("1 Work\n");
        let mut changed = false;
        let flags = Flags::new()
            .with(SystemFlag::Seen)
            .with_keyword("Home")
            .with_keyword("work");
        assert_eq!(render_flags(&flags, &mut table, &mut changed), "Sab");
        assert!(changed);
        assert_eq!(table.render(), "0 Home\n1 Work\n");
        assert_eq!(Keywords::parse(&table.render()), table);
    }

    #[test]
    fn keywords_beyond_26_and_invalid_ones_are_left_out() {
        let mut table = Keywords::default();
        let mut changed = false;
        let mut flags = Flags::new().with_keyword("has space");
        for n in 0..30 {
            flags.add_keyword(format!("k{n:02}"));
        }
        let letters = render_flags(&flags, &mut table, &mut changed);
        assert_eq!(letters, "abcdefghijklmnopqrstuvwxyz");
        assert_eq!(table.name('z'), Some("k25"));
        assert_eq!(table.letter("k26"), None);
    }

    #[test]
    fn splits_file_names() {
        assert_eq!(
            split_name("123.M1P2.host:2,FS"),
            ("123.M1P2.host", Some("FS"))
        );
        assert_eq!(split_name("123.M1P2.host:2,"), ("123.M1P2.host", Some("")));
        assert_eq!(split_name("123.M1P2.host"), ("123.M1P2.host", None));
        assert_eq!(split_name("123.host,S=10:1,x"), ("123.host,S=10", None));
    }
}
