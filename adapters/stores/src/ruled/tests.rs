use ferry_engine::store::Listing;
use ferry_engine::{Flags, Store};
use ferry_memory::MemoryStore;

use super::*;

fn source() -> MemoryStore {
    let store = MemoryStore::new("memory:source", 1);
    store.set_change_tokens(true);
    for (folder, body) in [
        ("INBOX", "a"),
        ("Junk", "spam"),
        ("Junk/Old", "old spam"),
        ("Old Mail", "b"),
        ("Old Mail/2019", "c"),
        ("Archive 2019", "d"),
        ("Archive 2020", "e"),
        ("Archive 2020", "f"),
    ] {
        store.deliver(folder, body.as_bytes().to_vec(), Flags::default(), None);
    }
    store
}

fn ruled(store: MemoryStore) -> Ruled {
    let rules = FolderRules::new(
        &["Junk".to_owned()],
        &[
            ("Old Mail".to_owned(), "Archive".to_owned()),
            ("Archive 2019".to_owned(), "Archive".to_owned()),
            ("Archive 2020".to_owned(), "Archive".to_owned()),
        ],
    )
    .expect("rules");
    Ruled::new(Box::new(store), rules)
}

fn ids(listing: &Listing) -> Vec<String> {
    match listing {
        Listing::Full { items, .. } => items.iter().map(|i| i.id.0.clone()).collect(),
        Listing::Changes { changed, .. } => changed.iter().map(|i| i.id.0.clone()).collect(),
    }
}

#[tokio::test]
async fn folders_are_listed_as_the_rules_say() {
    let store = ruled(source());
    let paths: Vec<String> = store
        .list_folders()
        .await
        .expect("listed")
        .into_iter()
        .map(|f| f.path)
        .collect();
    // Junk and below are left out; Old Mail and both archives are merged into Archive, and
    // Old Mail's subfolder follows it.
    assert_eq!(paths, ["Archive", "Archive/2019", "INBOX"]);
}

#[tokio::test]
async fn a_merged_folder_lists_and_reads_every_member() {
    let store = ruled(source());
    store.list_folders().await.expect("listed");
    let listing = store.list_items("Archive", None).await.expect("listing");
    let ids = ids(&listing);
    assert_eq!(ids.len(), 4, "{ids:?}");
    let mut bodies = Vec::new();
    for id in &ids {
        let body = store
            .fetch("Archive", &NativeId(id.clone()))
            .await
            .expect("read");
        bodies.push(String::from_utf8(body.to_vec().expect("bytes")).expect("utf-8"));
    }
    bodies.sort();
    assert_eq!(bodies, ["b", "d", "e", "f"]);
    // Read together, answers come back in the order asked.
    let asked: Vec<NativeId> = ids.iter().rev().cloned().map(NativeId).collect();
    let many = store.fetch_many("Archive", &asked).await.expect("read");
    for (id, body) in asked.iter().zip(many) {
        let one = store.fetch("Archive", id).await.expect("read");
        assert_eq!(body.expect("read").to_vec().ok(), one.to_vec().ok());
    }
    // A renamed folder with one member keeps its ids.
    let renamed = store
        .list_items("Archive/2019", None)
        .await
        .expect("listing");
    assert!(ids_plain(&renamed), "{renamed:?}");
}

fn ids_plain(listing: &Listing) -> bool {
    ids(listing).iter().all(|id| !id.contains(SEPARATOR))
}

#[tokio::test]
async fn a_merged_folder_lists_changes_since_its_token() {
    let memory = source();
    memory.set_change_listings(ferry_memory::ChangeListings::Changes);
    let handle = memory.clone();
    let store = ruled(memory);
    store.list_folders().await.expect("listed");
    let Listing::Full { token, .. } = store.list_items("Archive", None).await.expect("listing")
    else {
        panic!("a first listing is full");
    };
    let token = token.expect("a merged token");
    handle.deliver("Archive 2019", b"g".to_vec(), Flags::default(), None);
    let listing = store
        .list_items("Archive", Some(&token))
        .await
        .expect("listing");
    match listing {
        Listing::Changes { changed, .. } => {
            assert_eq!(changed.len(), 1, "{changed:?}");
            assert!(changed[0].id.0.starts_with("Archive 2019\u{1f}"));
        }
        Listing::Full { .. } => panic!("a token of the merged folder lists changes"),
    }
    // A token that is not the merged folder's lists in full.
    let full = store
        .list_items("Archive", Some("7:1"))
        .await
        .expect("listing");
    assert!(matches!(full, Listing::Full { ref items, .. } if items.len() == 5));
}

#[tokio::test]
async fn a_merged_folder_changes_validity_when_a_folder_joins() {
    let memory = source();
    let handle = memory.clone();
    let store = ruled(memory);
    let validity = |folders: Vec<FolderInfo>| {
        folders
            .into_iter()
            .find(|f| f.path == "Archive")
            .and_then(|f| f.validity)
    };
    let before = validity(store.list_folders().await.expect("listed"));
    assert!(before.is_some());
    assert_eq!(
        before,
        validity(store.list_folders().await.expect("listed"))
    );
    handle.deliver("Archive", b"h".to_vec(), Flags::default(), None);
    let after = validity(store.list_folders().await.expect("listed"));
    assert_ne!(
        before, after,
        "a new member changes the merged folder's validity"
    );
}

#[tokio::test]
async fn the_source_is_never_written() {
    let store = ruled(source());
    let refused = store
        .create_folder("X", &FolderSpec::mail())
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("only read"), "{refused}");
    assert!(
        store
            .delete("INBOX", &NativeId("1:1".into()))
            .await
            .is_err()
    );
    assert!(
        store
            .set_flags("INBOX", &NativeId("1:1".into()), &Flags::default())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_excluded_folder_is_not_found() {
    let store = ruled(source());
    store.list_folders().await.expect("listed");
    let error = store.list_items("Junk", None).await.expect_err("left out");
    assert!(matches!(error, StoreError::NotFound(_)), "{error}");
}
