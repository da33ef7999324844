use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use ferry_engine::{Listing, Store};
use tempfile::TempDir;

use super::*;
use crate::body::wrap;
use crate::encode::{base64, encoded_words_b, encoded_words_q, quoted_printable, rfc5322_date};
use ferry_maildir::MaildirStore;

/// Every file under `root`: relative path → (bytes, mtime).
fn tree(root: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let mtime = fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(relative, (fs::read(&path).unwrap(), mtime));
            }
        }
    }
    files
}

/// The message files: those in cur/ and new/.
fn messages(root: &Path) -> Vec<(String, Vec<u8>)> {
    tree(root)
        .into_iter()
        .filter(|(path, _)| path.contains("cur/") || path.contains("new/"))
        .map(|(path, (bytes, _))| (path, bytes))
        .collect()
}

fn headers(message: &[u8]) -> &[u8] {
    let end = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &message[..end + 2]
}

#[test]
fn same_seed_same_tree() {
    let (a, b, c) = (
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
    );
    let spec = SampleSpec {
        messages: 60,
        seed: 42,
    };
    let first = generate(a.path(), &spec).unwrap();
    let second = generate(b.path(), &spec).unwrap();
    assert_eq!(first, second);
    assert_eq!(tree(a.path()), tree(b.path()));
    generate(
        c.path(),
        &SampleSpec {
            messages: 60,
            seed: 43,
        },
    )
    .unwrap();
    assert_ne!(tree(a.path()), tree(c.path()));
    // A second sample into the same directory is refused.
    let err = generate(a.path(), &spec).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
}

#[test]
fn counts_sizes_and_special_messages() {
    for count in [20, 500] {
        let dir = TempDir::new().unwrap();
        let summary = generate(
            dir.path(),
            &SampleSpec {
                messages: count,
                seed: 7,
            },
        )
        .unwrap();
        let files = messages(dir.path());
        assert_eq!(files.len(), count);
        assert_eq!(summary.messages, count);
        assert_eq!(
            summary.bytes,
            files.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
        );
        assert_eq!(summary.folders.len(), 10);

        let without_id = files
            .iter()
            .filter(|(_, m)| {
                !String::from_utf8_lossy(headers(m))
                    .to_ascii_lowercase()
                    .contains("\r\nmessage-id:")
            })
            .count();
        assert_eq!(without_id, 1, "messages without a Message-ID");

        let mut by_content: HashMap<&[u8], Vec<&str>> = HashMap::new();
        for (path, bytes) in &files {
            by_content.entry(bytes).or_default().push(path);
        }
        let copies: Vec<&Vec<&str>> = by_content
            .values()
            .filter(|paths| paths.len() > 1)
            .collect();
        assert_eq!(copies.len(), 1, "one message is duplicated");
        assert_eq!(copies[0].len(), 2, "exactly twice");
        let folder = |p: &str| {
            Path::new(p)
                .parent()
                .unwrap()
                .parent()
                .map(Path::to_path_buf)
        };
        assert_eq!(
            folder(copies[0][0]),
            folder(copies[0][1]),
            "in the same folder"
        );

        for (path, bytes) in &files {
            // CRLF only, headers ASCII.
            assert!(
                !bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
                "{path}: bare LF"
            );
            assert!(headers(bytes).is_ascii(), "{path}: non-ASCII header");
            assert!(bytes.len() < 260_000, "{path}: {} bytes", bytes.len());
        }
        if count == 500 {
            let all = files
                .iter()
                .map(|(_, b)| String::from_utf8_lossy(b))
                .collect::<String>();
            for needle in [
                "=?UTF-8?B?",
                "=?UTF-8?Q?",
                "multipart/alternative",
                "multipart/mixed",
                "Content-Transfer-Encoding: base64",
                "Content-Transfer-Encoding: quoted-printable",
                "Content-Transfer-Encoding: 8bit",
                "filename*=UTF-8''",
            ] {
                assert!(all.contains(needle), "no {needle}");
            }
            let small = files
                .iter()
                .filter(|(_, b)| (2_000..=20_500).contains(&b.len()))
                .count();
            assert!(
                small * 100 / count >= 70,
                "mostly 2-20 KB: {small} of {count}"
            );
            let names: String = files.iter().map(|(p, _)| p.as_str()).collect();
            for letters in ["2,S", "2,RS", "2,DS", "new/"] {
                assert!(names.contains(letters), "no {letters}");
            }
        }
    }
}

#[tokio::test]
async fn maildir_store_reads_the_sample() {
    let dir = TempDir::new().unwrap();
    let summary = generate(
        dir.path(),
        &SampleSpec {
            messages: 300,
            seed: 1,
        },
    )
    .unwrap();
    let store = MaildirStore::open(dir.path(), false).unwrap();
    let folders = store.list_folders().await.unwrap();
    let paths: Vec<&str> = folders.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, summary.folders);
    assert!(paths.contains(&"Projects/Ærø") && paths.contains(&"Работа"));
    assert!(dir.path().join(".Projects.&AMY-r&APg-").is_dir());
    assert!(dir.path().join(".Работа").is_dir());

    let mut total = 0;
    let mut keywords = Vec::new();
    for folder in &folders {
        let Listing::Full { items, .. } = store.list_items(&folder.path, None).await.unwrap()
        else {
            panic!("full listing expected");
        };
        assert!(!items.is_empty(), "{} is empty", folder.path);
        for item in &items {
            keywords.extend(item.flags.keywords().map(str::to_owned));
            assert!(item.date.is_some());
        }
        let first = store.fetch(&folder.path, &items[0].id).await.unwrap();
        assert_eq!(first.len() as u64, items[0].size);
        total += items.len();
    }
    assert_eq!(total, 300);
    for keyword in ["$Forwarded", "$Junk", "Work"] {
        assert!(keywords.iter().any(|k| k == keyword), "no {keyword}");
    }
}

#[test]
fn helpers_encode_correctly() {
    assert_eq!(rfc5322_date(0, 0), "Thu, 1 Jan 1970 00:00:00 +0000");
    assert_eq!(
        rfc5322_date(1_709_251_199, 60),
        "Fri, 1 Mar 2024 00:59:59 +0100"
    );
    assert_eq!(
        rfc5322_date(1_700_000_000, -300),
        "Tue, 14 Nov 2023 17:13:20 -0500"
    );
    let mut out = String::new();
    base64(b"Entw\xc3\xbcrfe", &mut out);
    assert_eq!(out, "RW50d8O8cmZl");
    assert_eq!(
        encoded_words_q("Grüße aus"),
        "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus?="
    );
    assert_eq!(encoded_words_b("Привет"), "=?UTF-8?B?0J/RgNC40LLQtdGC?=");
    assert_eq!(
        quoted_printable("a=b \r\nü".as_bytes()),
        "a=3Db=20\r\n=C3=BC"
    );
    let long = "x".repeat(200);
    assert!(
        quoted_printable(long.as_bytes())
            .split("\r\n")
            .all(|l| l.len() <= 76)
    );
    let mut wrapped = String::new();
    wrap("one two three", 7, &mut wrapped);
    assert_eq!(wrapped, "one two\r\nthree\r\n");
}
