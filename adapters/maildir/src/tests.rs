use std::fs;
use std::path::Path;

use ferry_engine::{ItemInfo, SpecialUse, SystemFlag};
use tempfile::TempDir;

use super::files::{from_millis, to_millis};
use super::names::escape_hostname;
use super::*;

fn key() -> ContentKey {
    ContentKey::from_secret([7; 32])
}

fn new_store() -> (TempDir, MaildirStore) {
    let dir = TempDir::new().unwrap();
    let store = MaildirStore::open(&dir.path().join("mail"), true).unwrap();
    (dir, store)
}

async fn items(store: &MaildirStore, folder: &str) -> Vec<ItemInfo> {
    match store.list_items(folder, None).await.unwrap() {
        Listing::Full { items, token: None } => items,
        other => panic!("unexpected listing {other:?}"),
    }
}

async fn paths(store: &MaildirStore) -> Vec<String> {
    store
        .list_folders()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn append_list_fetch_set_flags_delete() {
    let (_tmp, store) = new_store();
    assert!(store.describe().starts_with("maildir:/"));
    assert!(store.capabilities().keywords && store.capabilities().rename);
    let flags = Flags::new()
        .with(SystemFlag::Seen)
        .with(SystemFlag::Flagged);
    let probe = store.prepare_append("INBOX").await.unwrap();
    assert!(
        probe.0.contains(&format!("P{}Q", std::process::id())),
        "{probe:?}"
    );
    let date = 1_700_000_000_123;
    let body = Body::from(b"Subject: hi\r\n\r\nbody\r\n");
    let id = store.append("INBOX", &body, &flags, Some(date), &probe);
    let id = id.await.unwrap().unwrap();
    assert_eq!(id.0, probe.0);
    assert_eq!(
        names(&store.root().join("cur")),
        [format!("{}:2,FS", probe.0)]
    );
    assert!(names(&store.root().join("tmp")).is_empty());
    store.flush().await.unwrap();

    let listed = items(&store, "INBOX").await;
    assert_eq!(
        listed,
        [ItemInfo {
            id: id.clone(),
            size: 21,
            flags: flags.clone(),
            date: Some(date),
            keyed: None,
            content: None,
        }]
    );
    assert_eq!(
        store.fetch("INBOX", &id).await.unwrap(),
        b"Subject: hi\r\n\r\nbody\r\n"
    );

    // Renamed under the index by a flag change: still found by its unique name.
    let answered = Flags::new()
        .with(SystemFlag::Answered)
        .with_keyword("$Forwarded");
    store.set_flags("INBOX", &id, &answered).await.unwrap();
    assert_eq!(
        names(&store.root().join("cur")),
        [format!("{}:2,PR", probe.0)]
    );
    assert_eq!(items(&store, "inbox").await[0].flags, answered);
    assert_eq!(store.fetch("INBOX", &id).await.unwrap().len(), 21);
    store.flush().await.unwrap();

    store.delete("INBOX", &id).await.unwrap();
    store.delete("INBOX", &id).await.unwrap();
    assert!(items(&store, "INBOX").await.is_empty());
    let missing = store.fetch("INBOX", &id).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing:?}");
    let missing = store.set_flags("INBOX", &id, &flags).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing:?}");
    store.flush().await.unwrap();
}

#[tokio::test]
async fn reads_new_and_cur_and_follows_renames_by_others() {
    let (_tmp, store) = new_store();
    let root = store.root().to_path_buf();
    fs::write(root.join("new/1.M1P1.host"), b"new mail").unwrap();
    fs::write(root.join("cur/2.M1P1.host:2,S"), b"old mail").unwrap();
    fs::write(root.join("tmp/3.M1P1.host"), b"half").unwrap();
    fs::write(root.join("cur/.nfs0001"), b"debris").unwrap();
    let listed = items(&store, "INBOX").await;
    let ids: Vec<&str> = listed.iter().map(|i| i.id.0.as_str()).collect();
    assert_eq!(ids, ["1.M1P1.host", "2.M1P1.host"]);
    assert_eq!(listed[0].flags, Flags::new());
    assert_eq!(listed[1].flags, Flags::new().with(SystemFlag::Seen));

    // A mail reader moves the new message to cur/ and flags it: fetch finds it again.
    fs::rename(
        root.join("new/1.M1P1.host"),
        root.join("cur/1.M1P1.host:2,FS"),
    )
    .unwrap();
    let id = NativeId("1.M1P1.host".into());
    assert_eq!(store.fetch("INBOX", &id).await.unwrap(), b"new mail");
    // set_flags moves a message out of new/ too.
    fs::write(root.join("new/4.M1P1.host"), b"x").unwrap();
    let id = NativeId("4.M1P1.host".into());
    store
        .set_flags("INBOX", &id, &Flags::new().with(SystemFlag::Seen))
        .await
        .unwrap();
    assert!(root.join("cur/4.M1P1.host:2,S").is_file());
}

#[tokio::test]
async fn keywords_use_the_dovecot_keywords_file() {
    let (_tmp, store) = new_store();
    store
        .create_folder("Work", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    let dir = store.root().join(".Work");
    fs::write(dir.join("dovecot-keywords"), "0 $Junk\n2 Later\n").unwrap();
    let flags = Flags::new()
        .with(SystemFlag::Seen)
        .with_keyword("$Forwarded")
        .with_keyword("Later")
        .with_keyword("Project");
    let probe = store.prepare_append("Work").await.unwrap();
    store
        .append("Work", &Body::from(b"m"), &flags, None, &probe)
        .await
        .unwrap();
    // Project takes the first free slot, b.
    assert_eq!(names(&dir.join("cur")), [format!("{}:2,PSbc", probe.0)]);
    assert_eq!(
        fs::read_to_string(dir.join("dovecot-keywords")).unwrap(),
        "0 $Junk\n1 Project\n2 Later\n"
    );
    assert_eq!(items(&store, "Work").await[0].flags, flags);

    // A file written by Dovecot, with a letter the table does not name.
    fs::write(dir.join("cur/9.M1P1.host:2,RSaz"), b"x").unwrap();
    let listed = items(&store, "Work").await;
    let dovecot = listed.iter().find(|i| i.id.0 == "9.M1P1.host").unwrap();
    let expected = Flags::new()
        .with(SystemFlag::Answered)
        .with(SystemFlag::Seen)
        .with_keyword("$Junk");
    assert_eq!(dovecot.flags, expected);
}

#[tokio::test]
async fn folders_nested_encoded_and_special() {
    let (_tmp, store) = new_store();
    for folder in ["Archive/2025", "Entwürfe", "Sent", "spam", "R&D"] {
        store
            .create_folder(folder, &ferry_engine::FolderSpec::mail())
            .await
            .unwrap();
    }
    store
        .create_folder("Archive/2025", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap(); // exists: fine
    store
        .create_folder("INBOX", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    let root = store.root();
    // Only the folder asked for: ferry mirrors the source's folder list, parents included.
    assert!(!root.join(".Archive").exists());
    assert!(root.join(".Archive.2025/maildirfolder").is_file());
    assert!(root.join(".Archive.2025/new").is_dir() && root.join(".Archive.2025/tmp").is_dir());
    assert!(root.join(".Entw&APw-rfe/cur").is_dir());
    assert!(root.join(".R&-D/cur").is_dir());

    // Raw UTF-8 directory names, Dovecot's files and debris.
    fs::create_dir_all(root.join(".Работа/cur")).unwrap();
    fs::create_dir_all(root.join(".OnlyTmp/tmp")).unwrap();
    fs::create_dir_all(root.join(".a..b/cur")).unwrap();
    fs::write(root.join("dovecot-uidlist"), "3 V1 N1\n").unwrap();
    fs::write(root.join(".dovecot.lda-dupes"), "").unwrap();
    fs::write(root.join("subscriptions"), "Sent\n").unwrap();

    let folders = store.list_folders().await.unwrap();
    let listed: Vec<(&str, Option<SpecialUse>)> = folders
        .iter()
        .map(|f| (f.path.as_str(), f.special_use))
        .collect();
    assert_eq!(
        listed,
        [
            ("Archive/2025", None),
            ("Entwürfe", None),
            ("INBOX", Some(SpecialUse::Inbox)),
            ("R&D", None),
            ("Sent", Some(SpecialUse::Sent)),
            ("spam", Some(SpecialUse::Junk)),
            ("Работа", None),
        ]
    );
    assert!(folders.iter().all(|f| f.validity.is_none()));

    // Both spellings can be read and written.
    for folder in ["Entwürfe", "Работа", "Archive/2025"] {
        let probe = store.prepare_append(folder).await.unwrap();
        store
            .append(folder, &Body::from(b"x"), &Flags::new(), None, &probe)
            .await
            .unwrap();
        assert_eq!(items(&store, folder).await.len(), 1, "{folder}");
    }
    assert_eq!(names(&root.join(".Работа/cur")).len(), 1);

    for bad in ["a.b", "x//y", "/lead", ""] {
        let err = store
            .create_folder(bad, &ferry_engine::FolderSpec::mail())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Permanent(_)), "{bad:?}: {err:?}");
    }
    let err = store
        .create_folder("v1.2", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hierarchy separator"), "{err}");
    let err = store.list_items("Nope", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn two_directories_for_one_folder_are_refused() {
    let (_tmp, store) = new_store();
    fs::create_dir_all(store.root().join(".Entw&APw-rfe/cur")).unwrap();
    fs::create_dir_all(store.root().join(".Entwürfe/cur")).unwrap();
    let err = store.list_folders().await.unwrap_err();
    assert!(matches!(err, StoreError::Unusable(_)), "{err:?}");
    assert!(err.to_string().contains("Entwürfe"), "{err}");
}

#[tokio::test]
async fn rename_moves_only_that_folder() {
    let (_tmp, store) = new_store();
    store
        .create_folder("Old", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    store
        .create_folder("Old/Child", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    let probe = store.prepare_append("Old").await.unwrap();
    let id = store
        .append("Old", &Body::from(b"kept"), &Flags::new(), None, &probe)
        .await
        .unwrap()
        .unwrap();
    store.rename_folder("Old", "New/Ärger").await.unwrap();
    assert_eq!(paths(&store).await, ["INBOX", "New/Ärger", "Old/Child"]);
    assert!(store.root().join(".New.&AMQ-rger/cur").is_dir());
    assert_eq!(store.fetch("New/Ärger", &id).await.unwrap(), b"kept");
    // Repeated: from is gone and to exists.
    store.rename_folder("Old", "New/Ärger").await.unwrap();
    let err = store.rename_folder("Gone", "Elsewhere").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .rename_folder("Old/Child", "New/Ärger")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    store.rename_folder("New/Ärger", "New/Ärger").await.unwrap();
    // A leftover directory that is not a folder is not overwritten.
    fs::create_dir_all(store.root().join(".Debris/tmp/x")).unwrap();
    let err = store
        .rename_folder("New/Ärger", "Debris")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    let err = store.rename_folder("INBOX", "Mail").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn find_appended_checks_content_and_clears_tmp() {
    let (_tmp, store) = new_store();
    let key = key();
    let message = b"From: a@example.org\r\n\r\nhello\r\n";

    let probe = store.prepare_append("INBOX").await.unwrap();
    store
        .append("INBOX", &Body::from(message), &Flags::new(), None, &probe)
        .await
        .unwrap();
    let found = store
        .find_appended("INBOX", &probe, &key.hash(message), &key)
        .await
        .unwrap();
    assert_eq!(found, [NativeId(probe.0.clone())]);
    let other = store
        .find_appended("INBOX", &probe, &key.hash(b"other"), &key)
        .await
        .unwrap();
    assert!(other.is_empty());

    // A write cut short before its rename: not applied, and the partial file goes.
    let cut = store.prepare_append("INBOX").await.unwrap();
    fs::write(store.root().join("tmp").join(&cut.0), &message[..10]).unwrap();
    let found = store
        .find_appended("INBOX", &cut, &key.hash(message), &key)
        .await
        .unwrap();
    assert!(found.is_empty());
    assert!(names(&store.root().join("tmp")).is_empty());
    // A folder that does not exist holds nothing.
    let found = store
        .find_appended("Nope", &cut, &key.hash(message), &key)
        .await
        .unwrap();
    assert!(found.is_empty());
}

#[tokio::test]
async fn unique_names_differ() {
    let (_tmp, store) = new_store();
    let a = store.prepare_append("INBOX").await.unwrap();
    let b = store.prepare_append("INBOX").await.unwrap();
    assert_ne!(a, b);
    assert!(check_id(&a.0).is_ok());
    assert_eq!(escape_hostname("a/b:c"), "a\\057b\\072c");
}

#[test]
fn open_refuses_what_is_not_a_maildir() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("missing");
    let err = MaildirStore::open(&missing, false).unwrap_err();
    assert!(matches!(err, StoreError::Unusable(_)), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    let err = MaildirStore::open(tmp.path(), false).unwrap_err();
    assert!(err.to_string().contains("no cur/ or new/"), "{err}");
    let err = MaildirStore::open(tmp.path(), true).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    let err = MaildirStore::open(&tmp.path().join("notes.txt"), true).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");

    let created = MaildirStore::open(&missing, true).unwrap();
    assert!(created.root().join("tmp").is_dir());
    drop(created);
    MaildirStore::open(&missing, false).unwrap();
}

#[test]
fn millis_round_trip() {
    for ms in [0, 1_700_000_000_123, -1, -86_400_001] {
        assert_eq!(to_millis(from_millis(ms).unwrap()), ms);
    }
}

#[tokio::test]
async fn a_large_message_is_read_from_its_file_in_pieces_even_after_a_rename() {
    let (_tmp, store) = new_store();
    let mut message = b"From: a@example.org\r\nSubject: large\r\n\r\n".to_vec();
    while message.len() < 3 * PIECE_BYTES + 77 {
        message.extend_from_slice(b"a line of a large message's body\r\n");
    }
    // Appends with no flags; the new id and the probe used.
    let put = async |folder: &str, body: &Body| {
        let probe = store.prepare_append(folder).await.unwrap();
        let flags = Flags::new();
        let id = store.append(folder, body, &flags, None, &probe).await;
        (id.unwrap().unwrap(), probe)
    };
    let (id, _) = put("INBOX", &Body::from(message.clone())).await;
    let body = store.fetch("INBOX", &id).await.unwrap();
    assert!(body.in_memory().is_none(), "{body:?} is held whole");
    // A mail client renames the file (a flag change) while the body is in use: it is still
    // read whole, from the file it opened.
    store
        .set_flags("INBOX", &id, &Flags::new().with(SystemFlag::Seen))
        .await
        .unwrap();
    assert!(body == message);
    // Written back piece by piece into another folder: the same bytes.
    store
        .create_folder("Copy", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    let (copied, probe) = put("Copy", &body).await;
    assert!(store.fetch("Copy", &copied).await.unwrap() == message);
    assert_eq!(
        store
            .find_appended("Copy", &probe, &key().hash(&message), &key())
            .await
            .unwrap(),
        [copied]
    );
    // A small one stays in memory.
    let (small, _) = put("INBOX", &Body::from(b"Subject: s\r\n\r\nx\r\n")).await;
    assert!(
        store
            .fetch("INBOX", &small)
            .await
            .unwrap()
            .in_memory()
            .is_some()
    );
}

#[tokio::test]
async fn delete_folder_removes_an_empty_folder_and_nothing_else() {
    let (_tmp, store) = new_store();
    let root = store.root().to_path_buf();
    store
        .create_folder("Old", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    store
        .create_folder("Old/Child", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    // Dovecot's files beside the messages, and a leftover in tmp/ older than 36 hours.
    fs::write(root.join(".Old/dovecot-uidlist"), "3 V1 N1\n").unwrap();
    fs::write(root.join(".Old/dovecot.index.log"), "").unwrap();
    let leftover = root.join(".Old/tmp/1.leftover.host");
    fs::write(&leftover, "x").unwrap();
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 3600);
    fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    store.delete_folder("Old").await.unwrap();
    store.flush().await.unwrap();
    assert!(!root.join(".Old").exists());
    // Its subfolder is a directory of its own: it stays.
    assert_eq!(paths(&store).await, ["INBOX", "Old/Child"]);
    // Gone already, or never there: fine (a repeated deletion).
    store.delete_folder("Old").await.unwrap();
    store.delete_folder("Never").await.unwrap();
}

#[tokio::test]
async fn delete_folder_refuses_a_folder_holding_anything_and_leaves_it_intact() {
    let (_tmp, store) = new_store();
    let root = store.root().to_path_buf();

    // A message ferry wrote.
    store
        .create_folder("Full", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    let probe = store.prepare_append("Full").await.unwrap();
    let id = store
        .append("Full", &Body::from(b"kept"), &Flags::new(), None, &probe)
        .await
        .unwrap()
        .unwrap();
    let err = store.delete_folder("Full").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("holds 1 message"), "{err}");
    assert_eq!(store.fetch("Full", &id).await.unwrap(), b"kept");
    assert_eq!(
        names(&root.join(".Full")),
        ["cur", "maildirfolder", "new", "tmp"]
    );

    // A message someone delivered into new/.
    store
        .create_folder("Fresh", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    fs::write(root.join(".Fresh/new/1.delivered.host"), "hi").unwrap();
    let err = store.delete_folder("Fresh").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(root.join(".Fresh/new/1.delivered.host").is_file());
    assert!(root.join(".Fresh/cur").is_dir());

    // A delivery in progress in tmp/.
    store
        .create_folder("Busy", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    fs::write(root.join(".Busy/tmp/2.partial.host"), "par").unwrap();
    let err = store.delete_folder("Busy").await.unwrap_err();
    assert!(err.to_string().contains("being delivered"), "{err}");
    assert!(root.join(".Busy/tmp/2.partial.host").is_file());
    assert!(root.join(".Busy/cur").is_dir() && root.join(".Busy/new").is_dir());

    // A file that is no part of a Maildir folder.
    store
        .create_folder("Odd", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    fs::write(root.join(".Odd/notes.txt"), "mine").unwrap();
    let err = store.delete_folder("Odd").await.unwrap_err();
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert!(root.join(".Odd/notes.txt").is_file() && root.join(".Odd/cur").is_dir());
    assert_eq!(
        paths(&store).await,
        ["Busy", "Fresh", "Full", "INBOX", "Odd"]
    );

    // A link where cur/ should be is not followed: what it leads to stays.
    let elsewhere = root.parent().unwrap().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("precious"), "x").unwrap();
    store
        .create_folder("Linked", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    fs::remove_dir(root.join(".Linked/cur")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join(".Linked/cur")).unwrap();
    let err = store.delete_folder("Linked").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(elsewhere.join("precious").is_file());
    assert!(root.join(".Linked/new").is_dir());

    // INBOX is the root: never deleted.
    let err = store.delete_folder("INBOX").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(root.join("cur").is_dir());
}
