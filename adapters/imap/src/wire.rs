//! Writing commands: strings as quoted strings or literals, flag lists, dates, UID sets, and
//! the translation between ferry's `/`-separated folder paths and server mailbox names.
//!
//! ferry sends a small, fixed set of commands, so they are written here as text; responses,
//! which can be anything a server sends, are parsed by imap-codec (see `conn`).

use ferry_engine::Body;
use ferry_engine::event::{Millis, SpecialUse};
use ferry_engine::flags::{Flags, SystemFlag};

use super::conn::Piece;
use super::session::Caps;
use ferry_names::mutf7;

/// Appends `value` to `line` as a quoted string, or, when it cannot be quoted (CR, LF, NUL,
/// 8-bit unless UTF8=ACCEPT is enabled and it is UTF-8), closes `line` into `pieces` and
/// announces a literal.
pub(crate) fn quoted_or_literal(
    pieces: &mut Vec<Piece>,
    line: &mut Vec<u8>,
    value: &[u8],
    caps: &Caps,
) {
    let eight_bit = caps.utf8 && std::str::from_utf8(value).is_ok();
    if value
        .iter()
        .all(|&b| b != 0 && b != b'\r' && b != b'\n' && (b < 0x80 || eight_bit))
    {
        line.push(b'"');
        for &b in value {
            if b == b'"' || b == b'\\' {
                line.push(b'\\');
            }
            line.push(b);
        }
        line.push(b'"');
    } else {
        literal(pieces, line, Body::from(value), caps);
    }
}

/// Announces a literal at the end of `line` and queues its bytes.
pub(crate) fn literal(pieces: &mut Vec<Piece>, line: &mut Vec<u8>, data: Body, caps: &Caps) {
    announce(pieces, line, data, caps, "");
}

/// Announces a `literal8` (`~{n}`, RFC 3516, as UTF8=ACCEPT's APPEND takes the message) at the
/// end of `line` and queues its bytes.
pub(crate) fn literal8(pieces: &mut Vec<Piece>, line: &mut Vec<u8>, data: Body, caps: &Caps) {
    announce(pieces, line, data, caps, "~");
}

fn announce(pieces: &mut Vec<Piece>, line: &mut Vec<u8>, data: Body, caps: &Caps, mark: &str) {
    let sync = !caps.non_sync_literal(usize::try_from(data.len()).unwrap_or(usize::MAX));
    let announce = if sync {
        format!("{mark}{{{}}}\r\n", data.len())
    } else {
        format!("{mark}{{{}+}}\r\n", data.len())
    };
    line.extend_from_slice(announce.as_bytes());
    pieces.push(Piece::Text(std::mem::take(line)));
    pieces.push(Piece::Literal { data, sync });
}

/// Whether `keyword` is a valid IMAP flag keyword (an atom without `\`, `]`, ...).
/// A UID set in IMAP's compact form: sorted, runs as ranges (`1:3,7,9:10`).
pub(crate) fn uid_set(uids: &std::collections::BTreeSet<u32>) -> String {
    let mut out = String::new();
    let mut uids = uids.iter().copied().peekable();
    while let Some(start) = uids.next() {
        let mut end = start;
        while uids.peek() == Some(&(end.wrapping_add(1))) && end < u32::MAX {
            end += 1;
            uids.next();
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
    }
    out
}

pub(crate) fn is_atom(keyword: &str) -> bool {
    !keyword.is_empty()
        && keyword.bytes().all(|b| {
            b > 0x20
                && b < 0x7f
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// The flag list of a STORE or APPEND: system flags, then the keywords the server can keep.
/// Returns the list and the keywords left out.
pub(crate) fn flag_list(flags: &Flags, permanent: Option<&[String]>) -> (String, Vec<String>) {
    let mut out: Vec<String> = flags.system().map(|f| f.imap_name().to_owned()).collect();
    let keywords_allowed = permanent.is_none_or(|list| list.iter().any(|f| f == "\\*"));
    let mut dropped = Vec::new();
    for keyword in flags.keywords() {
        let listed =
            permanent.is_some_and(|list| list.iter().any(|f| f.eq_ignore_ascii_case(keyword)));
        if is_atom(keyword) && (keywords_allowed || listed) {
            out.push(keyword.to_owned());
        } else {
            dropped.push(keyword.to_owned());
        }
    }
    (format!("({})", out.join(" ")), dropped)
}

/// Flags as the server listed them (without `\Recent`).
pub(crate) fn parse_flags(names: &[String]) -> Flags {
    let mut flags = Flags::new();
    for name in names {
        match SystemFlag::ALL
            .iter()
            .find(|f| f.imap_name().eq_ignore_ascii_case(name))
        {
            Some(flag) => flags.set(*flag, true),
            None if name.starts_with('\\') => {}
            None => flags.add_keyword(name.clone()),
        }
    }
    flags
}

/// INTERNALDATE as IMAP writes it: `"25-Nov-2026 18:58:41 +0000"`.
pub(crate) fn date_time(millis: Millis) -> Option<String> {
    let date = chrono::DateTime::from_timestamp_millis(millis)?;
    Some(format!("\"{}\"", date.format("%d-%b-%Y %H:%M:%S +0000")))
}

/// How the server names folders: its personal namespace prefix and hierarchy delimiter, and
/// whether names travel in UTF-8 (UTF8=ACCEPT enabled) or modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Naming {
    pub prefix: String,
    pub delimiter: Option<char>,
    pub utf8: bool,
}

impl Naming {
    /// The server's name for a ferry folder path, or why it has none.
    pub fn to_server(&self, path: &str) -> Result<Vec<u8>, String> {
        if path.eq_ignore_ascii_case("INBOX") {
            return Ok(b"INBOX".to_vec());
        }
        let parts: Vec<&str> = path.split('/').collect();
        let delimiter = match self.delimiter {
            Some(d) => d,
            None if parts.len() == 1 => '/',
            None => {
                return Err(format!(
                    "{path}: the server has no folder hierarchy, so nested folders cannot be made"
                ));
            }
        };
        let mut name = self.prefix.clone();
        for (i, part) in parts.iter().enumerate() {
            if part.contains(delimiter) {
                return Err(format!(
                    "{path}: the folder name {part:?} contains {delimiter:?}, the server's \
                     hierarchy delimiter"
                ));
            }
            if i > 0 {
                name.push(delimiter);
            }
            // The first component INBOX keeps its canonical spelling.
            if i == 0 && part.eq_ignore_ascii_case("INBOX") {
                name.push_str("INBOX");
            } else if self.utf8 {
                name.push_str(part);
            } else {
                name.push_str(&mutf7::encode(part));
            }
        }
        Ok(name.into_bytes())
    }

    /// The ferry folder path of a server mailbox name.
    pub fn to_path(&self, raw: &[u8], delimiter: Option<char>) -> String {
        let name = String::from_utf8_lossy(raw);
        if name.eq_ignore_ascii_case("INBOX") {
            return "INBOX".to_owned();
        }
        let name = match name.strip_prefix(self.prefix.as_str()) {
            Some(rest) if !self.prefix.is_empty() && !rest.is_empty() => rest,
            _ => &name,
        };
        // With UTF8=ACCEPT names are UTF-8 as they are: "A&-B" is a name with "&-" in it.
        let decode = |part: &str| {
            if self.utf8 {
                part.to_owned()
            } else {
                mutf7::decode(part).unwrap_or_else(|| part.to_owned())
            }
        };
        match delimiter.or(self.delimiter) {
            Some(d) => name
                .split(d)
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 && part.eq_ignore_ascii_case("INBOX") {
                        "INBOX".to_owned()
                    } else {
                        decode(part)
                    }
                })
                .collect::<Vec<_>>()
                .join("/"),
            None => decode(name),
        }
    }
}

/// A folder's role from its LIST attributes.
pub(crate) fn special_use(attributes: &[String]) -> Option<SpecialUse> {
    attributes
        .iter()
        .find_map(|a| match a.to_ascii_lowercase().as_str() {
            "\\sent" => Some(SpecialUse::Sent),
            "\\drafts" => Some(SpecialUse::Drafts),
            "\\trash" => Some(SpecialUse::Trash),
            "\\junk" => Some(SpecialUse::Junk),
            "\\archive" => Some(SpecialUse::Archive),
            _ => None,
        })
}

/// Whether a LIST entry can hold messages.
pub(crate) fn selectable(attributes: &[String]) -> bool {
    !attributes
        .iter()
        .any(|a| a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        let set = |uids: &[u32]| uid_set(&uids.iter().copied().collect());
        assert_eq!(set(&[]), "");
        assert_eq!(set(&[5]), "5");
        assert_eq!(set(&[3, 1, 2, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(
            set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn names_round_trip_with_either_delimiter_and_a_prefix() {
        for naming in [
            Naming {
                prefix: String::new(),
                delimiter: Some('/'),
                utf8: false,
            },
            Naming {
                prefix: String::new(),
                delimiter: Some('.'),
                utf8: false,
            },
            Naming {
                prefix: "INBOX.".into(),
                delimiter: Some('.'),
                utf8: false,
            },
        ] {
            for path in [
                "INBOX",
                "Archive/2025",
                "Entwürfe",
                "Über/Straße & Co",
                "INBOX/Sub",
            ] {
                let raw = naming.to_server(path).expect("representable");
                assert!(raw.is_ascii(), "{raw:?}");
                assert_eq!(naming.to_path(&raw, naming.delimiter), path, "{naming:?}");
            }
        }
        let dotted = Naming {
            prefix: String::new(),
            delimiter: Some('.'),
            utf8: false,
        };
        // With UTF8=ACCEPT the same paths travel as UTF-8, "&" included.
        let utf8 = Naming {
            prefix: "INBOX.".into(),
            delimiter: Some('.'),
            utf8: true,
        };
        for path in ["Entwürfe/Ünter", "A&-B", "R&D", "INBOX"] {
            let raw = utf8.to_server(path).expect("representable");
            assert_eq!(utf8.to_path(&raw, utf8.delimiter), path);
        }
        assert_eq!(
            utf8.to_server("Entwürfe/Ünter").as_deref(),
            Ok("INBOX.Entwürfe.Ünter".as_bytes())
        );
        assert!(dotted.to_server("v1.2").is_err());
        assert_eq!(
            dotted.to_server("Entw\u{fc}rfe").as_deref(),
            Ok(&b"Entw&APw-rfe"[..])
        );
    }

    #[test]
    fn flag_lists_keep_only_what_the_server_can_store() {
        let flags = Flags::new()
            .with(SystemFlag::Seen)
            .with(SystemFlag::Flagged)
            .with_keyword("$Forwarded")
            .with_keyword("bad keyword");
        let (list, dropped) = flag_list(&flags, None);
        assert_eq!(list, "(\\Seen \\Flagged $Forwarded)");
        assert_eq!(dropped, vec!["bad keyword".to_owned()]);
        let permanent = vec!["\\Seen".to_owned(), "\\Flagged".to_owned()];
        let (list, dropped) = flag_list(&flags, Some(&permanent));
        assert_eq!(list, "(\\Seen \\Flagged)");
        assert_eq!(dropped.len(), 2);
        assert_eq!(
            parse_flags(&["\\Seen".into(), "\\Recent".into(), "$Junk".into()]),
            Flags::new().with(SystemFlag::Seen).with_keyword("$Junk")
        );
    }

    #[test]
    fn strings_needing_it_become_literals() {
        let caps = Caps::from_names(vec!["LITERAL+".into()]);
        let mut pieces = Vec::new();
        let mut line = b"LOGIN ".to_vec();
        quoted_or_literal(&mut pieces, &mut line, b"a\"b\\c", &caps);
        assert_eq!(line, b"LOGIN \"a\\\"b\\\\c\"");
        quoted_or_literal(&mut pieces, &mut line, "pässword".as_bytes(), &caps);
        assert!(line.is_empty());
        assert!(matches!(&pieces[0], Piece::Text(t) if t.ends_with(b"{9+}\r\n")));
        assert!(matches!(&pieces[1], Piece::Literal { sync: false, .. }));
        assert_eq!(
            date_time(0).as_deref(),
            Some("\"01-Jan-1970 00:00:00 +0000\"")
        );
    }
}
