//! `World::handle` without a socket: requests in, answers and state out.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Request, World};
use crate::world::Tenant;

const UPN: &str = "alice@contoso.test";

fn world() -> World {
    let mut world = World::new(Tenant::new("contoso", "app-1", &[UPN.to_string()]));
    let sku = world.tenant.skus[0].sku_id.clone();
    world.tenant.users[0].licenses.push(sku);
    world
}

fn call(world: &mut World, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let response = world.handle(&Request {
        method: method.into(),
        path: format!("/users/{UPN}{path}"),
        body: body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
        base: "http://127.0.0.1/v1.0".into(),
        ..Request::default()
    });
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, json)
}

#[test]
fn a_folder_deleted_for_good_takes_its_subfolders_and_their_messages() {
    let mut world = world();
    let (status, projects) = call(
        &mut world,
        "POST",
        "/mailFolders",
        Some(json!({"displayName": "Projects"})),
    );
    assert_eq!(status, 201);
    let projects = projects["id"].as_str().expect("id").to_string();
    let (status, old) = call(
        &mut world,
        "POST",
        &format!("/mailFolders/{projects}/childFolders"),
        Some(json!({"displayName": "Old"})),
    );
    assert_eq!(status, 201);
    let old = old["id"].as_str().expect("id").to_string();
    let mailbox = &mut world.tenant.users[0].mailbox;
    let mime = b"From: a@example.com\r\nSubject: x\r\n\r\nhello\r\n".to_vec();
    let kept = mailbox
        .deliver("inbox", mime.clone(), chrono::Utc::now())
        .expect("deliver");
    let folder_name = mailbox.folders[&old].id.clone();
    mailbox
        .deliver(&folder_name, mime, chrono::Utc::now())
        .expect("deliver");

    // A well-known folder cannot go.
    let (status, error) = call(
        &mut world,
        "POST",
        "/mailFolders/inbox/permanentDelete",
        None,
    );
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (403, Some("ErrorDeleteDistinguishedFolder"))
    );

    let (status, _) = call(
        &mut world,
        "POST",
        &format!("/mailFolders/{projects}/permanentDelete"),
        None,
    );
    assert_eq!(status, 204);
    let mailbox = &world.tenant.users[0].mailbox;
    assert!(!mailbox.folders.contains_key(&projects) && !mailbox.folders.contains_key(&old));
    assert_eq!(
        mailbox.messages.keys().cloned().collect::<Vec<_>>(),
        vec![kept],
        "the message below went with its folder, the Inbox's stayed"
    );
    let (status, _) = call(&mut world, "GET", &format!("/mailFolders/{old}"), None);
    assert_eq!(status, 404);
}
