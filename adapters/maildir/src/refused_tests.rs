//! Entries ferry cannot take as they are: each is listed and refused with a reason that names
//! it (so the report does), never left out without a word; and no symbolic link in the tree is
//! followed, for reading or writing.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::files::{io_error, read_error, refused};
use super::*;

fn new_store() -> (TempDir, MaildirStore) {
    let dir = TempDir::new().unwrap();
    let store = MaildirStore::open(&dir.path().join("mail"), true).unwrap();
    (dir, store)
}

async fn ids(store: &MaildirStore, folder: &str) -> Vec<String> {
    match store.list_items(folder, None).await.unwrap() {
        Listing::Full { items, .. } => items.into_iter().map(|item| item.id.0).collect(),
        other => panic!("unexpected listing {other:?}"),
    }
}

async fn paths(store: &MaildirStore) -> Vec<String> {
    let folders = store.list_folders().await.unwrap();
    folders.into_iter().map(|folder| folder.path).collect()
}

/// The reason `fetch` refuses an item with: permanent, so that the engine reports the item
/// as unreadable at once (and reads it again on the next run).
async fn refusal(store: &MaildirStore, folder: &str, id: &str) -> String {
    match store.fetch(folder, &NativeId(id.to_owned())).await {
        Err(StoreError::Permanent(reason)) => reason,
        other => panic!("{folder} {id}: expected a permanent refusal, got {other:?}"),
    }
}

fn set_mtime(path: &Path, time: SystemTime) {
    File::open(path).unwrap().set_modified(time).unwrap();
}

#[tokio::test]
async fn folder_directories_whose_names_map_to_no_folder_are_reported() {
    let (_tmp, store) = new_store();
    let root = store.root().to_path_buf();
    for dir in ["..evil/cur", ".foo..bar/cur", ".trailing./new", ".Good/cur"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("..evil/cur/1.a.host:2,S"), b"mail").unwrap();
    fs::write(root.join(".foo..bar/cur/2.b.host:2,"), b"mail").unwrap();
    fs::write(root.join("cur/3.c.host:2,S"), b"inbox mail").unwrap();
    // Debris is no folder: a dot file, a directory without cur/ or new/.
    fs::write(root.join(".dovecot.lda-dupes"), b"").unwrap();
    fs::create_dir_all(root.join("..tmponly/tmp")).unwrap();

    // Not folders: no path can stand for them...
    assert_eq!(paths(&store).await, ["Good", "INBOX"]);
    // ...but INBOX lists each, so that the run reports it and ends with failures.
    assert_eq!(
        ids(&store, "INBOX").await,
        ["..evil", ".foo..bar", ".trailing.", "3.c.host"]
    );
    for name in ["..evil", ".foo..bar", ".trailing."] {
        let reason = refusal(&store, "INBOX", name).await;
        let shown = root.join(name).display().to_string();
        assert!(reason.contains(&shown), "{reason}");
        assert!(reason.contains("empty part"), "{reason}");
        assert!(reason.contains("rename the directory"), "{reason}");
    }
    assert_eq!(
        store
            .fetch("INBOX", &NativeId("3.c.host".into()))
            .await
            .unwrap(),
        b"inbox mail"
    );

    // The operator renames one: it is a folder now, and its entry is gone from INBOX.
    fs::rename(root.join("..evil"), root.join(".evil")).unwrap();
    let gone = store
        .fetch("INBOX", &NativeId("..evil".into()))
        .await
        .unwrap_err();
    assert!(matches!(gone, StoreError::NotFound(_)), "{gone:?}");
    assert_eq!(paths(&store).await, ["Good", "INBOX", "evil"]);
    assert_eq!(ids(&store, "evil").await, ["1.a.host"]);
    assert!(!ids(&store, "INBOX").await.contains(&"..evil".to_owned()));
    // Ids that are no such directory are not found (and never leave the root).
    for id in [".Good", "../mail", ".nothing"] {
        let err = store
            .fetch("INBOX", &NativeId(id.into()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{id}: {err:?}");
    }
}

#[tokio::test]
async fn a_new_unmappable_folder_directory_changes_the_inbox_token() {
    let (_tmp, store) = new_store();
    let root = store.root().to_path_buf();
    let past = SystemTime::now() - Duration::from_secs(60);
    for dir in [root.join("new"), root.join("cur")] {
        set_mtime(&dir, past);
    }
    let token = match store.list_items("INBOX", None).await.unwrap() {
        Listing::Full {
            token: Some(token), ..
        } => token,
        other => panic!("no token: {other:?}"),
    };
    let unchanged = store.list_items("INBOX", Some(&token)).await.unwrap();
    assert!(
        matches!(unchanged, Listing::Changes { .. }),
        "{unchanged:?}"
    );

    // Nothing of INBOX changes but a directory that appears in the root.
    fs::create_dir_all(root.join("..evil/cur")).unwrap();
    match store.list_items("INBOX", Some(&token)).await.unwrap() {
        Listing::Full { items, .. } => {
            let ids: Vec<&str> = items.iter().map(|item| item.id.0.as_str()).collect();
            assert_eq!(ids, ["..evil"]);
        }
        other => panic!("the new directory went unseen: {other:?}"),
    }
    // Seen: its token holds until something changes again.
    let token = match store.list_items("INBOX", None).await.unwrap() {
        Listing::Full {
            token: Some(token), ..
        } => token,
        other => panic!("no token: {other:?}"),
    };
    let unchanged = store.list_items("INBOX", Some(&token)).await.unwrap();
    assert!(
        matches!(unchanged, Listing::Changes { .. }),
        "{unchanged:?}"
    );
    fs::remove_dir_all(root.join("..evil")).unwrap();
    let changed = store.list_items("INBOX", Some(&token)).await.unwrap();
    assert!(matches!(changed, Listing::Full { .. }), "{changed:?}");
}

#[tokio::test]
async fn message_files_that_are_links_are_not_followed() {
    let (tmp, store) = new_store();
    let root = store.root().to_path_buf();
    let secret = tmp.path().join("shadow");
    fs::write(&secret, b"root:$6$not-for-users").unwrap();
    // Larger than a piece: the path that reads a message from its file in pieces.
    let large = tmp.path().join("large");
    fs::write(&large, vec![b'x'; 2 * PIECE_BYTES + 1]).unwrap();
    fs::write(root.join("cur/1.a.host:2,S"), b"a real message").unwrap();
    symlink(&secret, root.join("cur/2.b.host:2,S")).unwrap();
    symlink(&large, root.join("new/3.c.host")).unwrap();
    // Links that stay inside the tree are not followed either: absolute and relative.
    symlink(root.join("cur/1.a.host:2,S"), root.join("cur/4.d.host:2,")).unwrap();
    symlink("1.a.host:2,S", root.join("cur/5.e.host:2,")).unwrap();

    let listed = match store.list_items("INBOX", None).await.unwrap() {
        Listing::Full { items, .. } => items,
        other => panic!("unexpected listing {other:?}"),
    };
    let ids: Vec<&str> = listed.iter().map(|item| item.id.0.as_str()).collect();
    assert_eq!(
        ids,
        ["1.a.host", "2.b.host", "3.c.host", "4.d.host", "5.e.host"]
    );
    // Nothing is taken from what a link leads to, not even its size.
    assert!(
        listed[1..]
            .iter()
            .all(|item| item.size == 0 && item.date.is_none())
    );
    for (id, file) in [
        ("2.b.host", "cur/2.b.host:2,S"),
        ("3.c.host", "new/3.c.host"),
        ("4.d.host", "cur/4.d.host:2,"),
        ("5.e.host", "cur/5.e.host:2,"),
    ] {
        let reason = refusal(&store, "INBOX", id).await;
        assert!(reason.contains("symbolic link"), "{reason}");
        assert!(
            reason.contains(&root.join(file).display().to_string()),
            "{reason}"
        );
    }
    assert_eq!(
        store
            .fetch("INBOX", &NativeId("1.a.host".into()))
            .await
            .unwrap(),
        b"a real message"
    );

    // A regular file replaced by a link after the listing is not followed either.
    fs::remove_file(root.join("cur/1.a.host:2,S")).unwrap();
    symlink(&secret, root.join("cur/1.a.host:2,S")).unwrap();
    let reason = refusal(&store, "INBOX", "1.a.host").await;
    assert!(reason.contains("symbolic link"), "{reason}");
}

#[tokio::test]
async fn directories_dangling_links_and_special_files_are_reported() {
    let (tmp, store) = new_store();
    let root = store.root().to_path_buf();
    fs::create_dir(root.join("cur/1.a.host:2,S")).unwrap();
    fs::create_dir(root.join("new/2.b.host")).unwrap();
    symlink(tmp.path().join("nowhere"), root.join("cur/3.c.host:2,")).unwrap();
    // A FIFO: opening it must not wait for a writer.
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        root.join("cur/4.d.host:2,"),
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("new/5.e.host")).unwrap();
    fs::write(root.join("cur/6.f.host:2,"), b"mail").unwrap();

    assert_eq!(
        ids(&store, "INBOX").await,
        [
            "1.a.host", "2.b.host", "3.c.host", "4.d.host", "5.e.host", "6.f.host"
        ]
    );
    for (id, what) in [
        ("1.a.host", "a directory"),
        ("2.b.host", "a directory"),
        ("3.c.host", "symbolic link"),
        ("4.d.host", "not a regular file"),
        ("5.e.host", "not a regular file"),
    ] {
        let reason = refusal(&store, "INBOX", id).await;
        assert!(reason.contains(what), "{id}: {reason}");
    }
}

#[tokio::test]
async fn folder_directories_that_are_links_are_not_followed() {
    let (tmp, store) = new_store();
    let root = store.root().to_path_buf();
    // A folder outside the tree (another user's, say), linked in as a folder...
    let elsewhere = tmp.path().join("elsewhere");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(elsewhere.join(sub)).unwrap();
    }
    fs::write(elsewhere.join("cur/1.a.host:2,S"), b"someone else's mail").unwrap();
    symlink(&elsewhere, root.join(".Linked")).unwrap();
    // ...a folder of the tree linked in under another name...
    store
        .create_folder("Real", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    fs::write(root.join(".Real/cur/2.b.host:2,"), b"mail").unwrap();
    symlink(root.join(".Real"), root.join(".Alias")).unwrap();
    // ...and a folder whose cur/ is a link.
    store
        .create_folder("Work", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    fs::remove_dir(root.join(".Work/cur")).unwrap();
    symlink(elsewhere.join("cur"), root.join(".Work/cur")).unwrap();

    // Listed, so that the engine reports each as a folder it could not list, with the reason.
    assert_eq!(
        paths(&store).await,
        ["Alias", "INBOX", "Linked", "Real", "Work"]
    );
    for folder in ["Linked", "Alias", "Work"] {
        let err = store.list_items(folder, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Permanent(_)), "{folder}: {err:?}");
        assert!(err.to_string().contains("symbolic link"), "{folder}: {err}");
    }
    assert_eq!(ids(&store, "Real").await, ["2.b.host"]);

    // Nothing is read, written or created through them.
    for folder in ["Linked", "Work"] {
        let reason = refusal(&store, folder, "1.a.host").await;
        assert!(reason.contains("symbolic link"), "{folder}: {reason}");
    }
    let probe = store.prepare_append("Linked").await.unwrap();
    let err = store
        .append("Linked", &Body::from(b"x"), &Flags::new(), None, &probe)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    let err = store
        .create_folder("Linked", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    let err = store.rename_folder("Real", "Linked").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert_eq!(fs::read_dir(elsewhere.join("cur")).unwrap().count(), 1);
    assert_eq!(fs::read_dir(elsewhere.join("tmp")).unwrap().count(), 0);
    assert!(!elsewhere.join(MAILDIRFOLDER).exists());

    // A link to nothing (or to a directory that is no folder) is not created through.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    symlink(&empty, root.join(".Fresh")).unwrap();
    let err = store
        .create_folder("Fresh", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
}

#[tokio::test]
async fn two_files_with_one_unique_name_are_both_accounted_for() {
    let (_tmp, store) = new_store();
    let root = store.root().to_path_buf();
    fs::write(root.join("cur/1.a.host:2,S"), b"first").unwrap();
    fs::write(root.join("cur/1.a.host:2,RS"), b"second").unwrap();
    fs::write(root.join("new/2.b.host"), b"new copy").unwrap();
    fs::write(root.join("cur/2.b.host:2,S"), b"cur copy").unwrap();

    // One is the message (the first name in cur/, the cur/ one over new/), the other an item
    // of its own that is reported.
    assert_eq!(
        ids(&store, "INBOX").await,
        ["1.a.host", "2.b.host", "cur/1.a.host:2,S", "new/2.b.host"]
    );
    let fetch = async |id: &str| store.fetch("INBOX", &NativeId(id.into())).await;
    assert_eq!(fetch("1.a.host").await.unwrap(), b"second");
    assert_eq!(fetch("2.b.host").await.unwrap(), b"cur copy");
    for (id, unique) in [
        ("cur/1.a.host:2,S", "1.a.host"),
        ("new/2.b.host", "2.b.host"),
    ] {
        let reason = refusal(&store, "INBOX", id).await;
        assert!(reason.contains("unique name"), "{reason}");
        assert!(reason.contains(&format!("{unique:?}")), "{reason}");
        let file = root.join(id).display().to_string();
        assert!(reason.contains(&file), "{reason}");
    }

    // A message moved from new/ to cur/ while the folder was listed is gone when read:
    // nothing to report.
    fs::remove_file(root.join("new/2.b.host")).unwrap();
    let gone = fetch("new/2.b.host").await.unwrap_err();
    assert!(matches!(gone, StoreError::NotFound(_)), "{gone:?}");
    // Ids that name no such entry are not found; nothing outside the folder is looked at.
    for id in ["tmp/x", "cur/../../etc/passwd", "cur/.hidden", "cur/"] {
        let err = fetch(id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{id}: {err:?}");
    }
}

#[tokio::test]
async fn a_keywords_file_that_is_a_link_is_not_followed() {
    let (tmp, store) = new_store();
    store
        .create_folder("Work", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    let dir = store.root().join(".Work");
    let outside = tmp.path().join("outside");
    fs::write(&outside, "0 secret\n").unwrap();
    symlink(&outside, dir.join(info::KEYWORDS_FILE)).unwrap();
    fs::write(dir.join("cur/1.a.host:2,a"), b"x").unwrap();

    let err = store.list_items("Work", None).await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // Keywords are not written through it either.
    let probe = store.prepare_append("Work").await.unwrap();
    let flags = Flags::new().with_keyword("Later");
    let err = store
        .append("Work", &Body::from(b"y"), &flags, None, &probe)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert_eq!(fs::read_to_string(&outside).unwrap(), "0 secret\n");
    assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
}

#[tokio::test]
async fn a_delivery_does_not_write_through_a_link_in_tmp() {
    let (tmp, store) = new_store();
    let outside = tmp.path().join("outside");
    fs::write(&outside, b"precious").unwrap();
    let probe = store.prepare_append("INBOX").await.unwrap();
    symlink(&outside, store.root().join("tmp").join(&probe.0)).unwrap();
    let id = store
        .append(
            "INBOX",
            &Body::from(b"message"),
            &Flags::new(),
            None,
            &probe,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"precious");
    assert_eq!(store.fetch("INBOX", &id).await.unwrap(), b"message");
    let delivered = store.root().join("cur").join(format!("{}:2,", probe.0));
    assert!(fs::symlink_metadata(&delivered).unwrap().is_file());
}

#[tokio::test]
async fn find_appended_does_not_take_a_link_for_a_write() {
    let (tmp, store) = new_store();
    let key = ContentKey::from_secret([7; 32]);
    let message = b"From: a@example.org\r\n\r\nhello\r\n";
    let outside = tmp.path().join("outside");
    fs::write(&outside, message).unwrap();
    let probe = store.prepare_append("INBOX").await.unwrap();
    let planted = store.root().join("cur").join(format!("{}:2,S", probe.0));
    symlink(&outside, planted).unwrap();
    let found = store
        .find_appended("INBOX", &probe, &key.hash(message), &key)
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn refused_access_and_read_only_file_systems_are_worth_another_run() {
    use io::ErrorKind as K;
    let err = io_error("writing /m/tmp/x".into(), K::PermissionDenied.into());
    assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
    assert!(err.to_string().contains("writing /m/tmp/x"), "{err}");
    assert!(err.to_string().contains("fix the permissions"), "{err}");
    assert!(err.to_string().contains("the next run does it"), "{err}");
    // A read-only file system or a full disk takes no write at all: the run ends at once.
    let err = io_error("x".into(), K::ReadOnlyFilesystem.into());
    assert!(matches!(err, StoreError::Unusable(_)), "{err:?}");
    assert!(err.to_string().contains("writable"), "{err}");
    for kind in [K::StorageFull, K::QuotaExceeded] {
        let err = io_error("writing /m/tmp/x".into(), kind.into());
        assert!(matches!(err, StoreError::Full(_)), "{kind:?}: {err:?}");
        assert!(err.to_string().contains("free space"), "{err}");
    }
    // The other classes are as they were.
    let err = io_error("x".into(), K::NotFound.into());
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = io_error("x".into(), K::AlreadyExists.into());
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    // A refused entry is permanent, with its reason.
    let err = io_error(
        "message file /m/cur/x".into(),
        refused("a directory, not a file"),
    );
    assert_eq!(
        err,
        StoreError::Permanent("message file /m/cur/x: a directory, not a file".into())
    );
    // A read that access is refused to is reported at once (the engine reads unreadable
    // items and lists unreadable folders again on every run) and says what to fix.
    let err = read_error("listing /m/cur".into(), K::PermissionDenied.into());
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("fix the permissions"), "{err}");
}
