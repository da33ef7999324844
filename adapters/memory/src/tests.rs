//! Tests of the in-memory store.
use super::*;

#[tokio::test]
async fn delete_folder_removes_only_an_empty_folder() {
    let store = MemoryStore::new("target", 1);
    store
        .create_folder("Old", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    store
        .create_folder("Full", &ferry_engine::FolderSpec::mail())
        .await
        .unwrap();
    let id = store.deliver("Full", b"kept".to_vec(), Flags::new(), None);

    store.delete_folder("Old").await.unwrap();
    assert!(!store.contents().contains_key("Old"));
    // Gone already: a repeated deletion.
    store.delete_folder("Old").await.unwrap();

    let err = store.delete_folder("Full").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("holds 1 message"), "{err}");
    assert_eq!(store.contents()["Full"][0].0, id);

    let err = store.delete_folder("INBOX").await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert!(store.contents().contains_key("INBOX"));
}
