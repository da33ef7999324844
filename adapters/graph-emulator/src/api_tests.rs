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
    call_at(world, method, &format!("/users/{UPN}{path}"), "", body)
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

fn call_at(
    world: &mut World,
    method: &str,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = world.handle(&Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        body: body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
        base: "http://127.0.0.1/v1.0".into(),
        ..Request::default()
    });
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, json)
}

#[test]
fn an_export_imported_into_another_mailbox_keeps_the_item_and_its_search_key() {
    let mut world = World::new(Tenant::new(
        "contoso",
        "app-1",
        &[UPN.to_string(), "bob@contoso.test".to_string()],
    ));
    let sku = world.tenant.skus[0].sku_id.clone();
    for user in &mut world.tenant.users {
        user.licenses.push(sku.clone());
    }
    let mime =
        b"From: a@example.com\r\nSubject: kept\r\nMessage-ID: <k@x>\r\n\r\nhello\r\n".to_vec();
    let source = world.tenant.users[0]
        .mailbox
        .deliver(
            "inbox",
            mime,
            chrono::Utc::now() - chrono::Duration::days(3),
        )
        .expect("deliver");
    world.tenant.users[0]
        .mailbox
        .edit(&source, chrono::Utc::now(), |m| {
            m.is_read = true;
            m.categories = vec!["Blue".into()];
        });
    let (_, settings) = call(&mut world, "GET", "/settings/exchange", None);
    let from = settings["primaryMailboxId"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, settings) = call_at(
        &mut world,
        "GET",
        "/users/bob@contoso.test/settings/exchange",
        "",
        None,
    );
    let to = settings["primaryMailboxId"]
        .as_str()
        .expect("id")
        .to_string();

    // More than 20 ids at once are refused; an unknown id is an error of its own in a 200.
    let many: Vec<String> = (0..21).map(|i| format!("id{i}")).collect();
    let (status, _) = call_at(
        &mut world,
        "POST",
        &format!("/admin/exchange/mailboxes/{from}/exportItems"),
        "",
        Some(json!({"itemIds": many})),
    );
    assert_eq!(status, 400);
    let (status, exported) = call_at(
        &mut world,
        "POST",
        &format!("/admin/exchange/mailboxes/{from}/exportItems"),
        "",
        Some(json!({"itemIds": [source, "missing"]})),
    );
    assert_eq!(status, 200);
    let data = exported["value"][0]["data"]
        .as_str()
        .expect("data")
        .to_string();
    assert_eq!(exported["value"][1]["error"]["code"], "ErrorItemNotFound");

    let (status, session) = call_at(
        &mut world,
        "POST",
        &format!("/admin/exchange/mailboxes/{to}/createImportSession"),
        "",
        None,
    );
    assert_eq!(status, 200);
    let url = session["importUrl"].as_str().expect("url");
    let token = url.split("authtoken=").nth(1).expect("token").to_string();
    let inbox = world.tenant.users[1].mailbox.well_known("inbox");
    let import = |world: &mut World, body: Value| {
        call_at(
            world,
            "POST",
            &format!("/import/{to}"),
            &format!("authtoken={token}"),
            Some(body),
        )
    };
    let (status, made) = import(
        &mut world,
        json!({"FolderId": inbox, "Mode": "create", "Data": data}),
    );
    assert_eq!(status, 200, "{made}");
    let made_id = made["itemId"].as_str().expect("itemId").to_string();
    let (kept, copy) = (
        &world.tenant.users[0].mailbox.messages[&source],
        &world.tenant.users[1].mailbox.messages[&made_id],
    );
    assert_ne!(made_id, source);
    assert_eq!(
        (copy.is_read, &copy.categories, copy.received),
        (true, &vec!["Blue".to_string()], kept.received)
    );
    assert_eq!(copy.search_key, kept.search_key, "the search key travels");
    assert_eq!(copy.internet_message_id, kept.internet_message_id);

    // Sent again, a create makes a second item: nothing makes imports idempotent.
    let (status, _) = import(
        &mut world,
        json!({"FolderId": inbox, "Mode": "create", "Data": data}),
    );
    assert_eq!(status, 200);
    assert_eq!(world.tenant.users[1].mailbox.in_folder(&inbox).len(), 2);
    // An update names the item and its change key; a stale change key is refused.
    let (status, _) = import(
        &mut world,
        json!({"FolderId": inbox, "Mode": "update", "Data": data, "ItemId": made_id, "ChangeKey": "stale"}),
    );
    assert_eq!(status, 409);
    let (status, updated) = import(
        &mut world,
        json!({"FolderId": inbox, "Mode": "update", "Data": data, "ItemId": made_id, "ChangeKey": made["changeKey"]}),
    );
    assert_eq!(
        (status, updated["itemId"].as_str()),
        (200, Some(made_id.as_str()))
    );
    assert_ne!(updated["changeKey"], made["changeKey"]);
    // Without its token the URL is refused; the items list shows the search key on request.
    let (status, _) = call_at(
        &mut world,
        "POST",
        &format!("/import/{to}"),
        "authtoken=nope",
        Some(json!({"FolderId": inbox, "Mode": "create", "Data": data})),
    );
    assert_eq!(status, 401);
    let (status, items) = call_at(
        &mut world,
        "GET",
        &format!("/admin/exchange/mailboxes/{to}/folders/inbox/items"),
        "$expand=singleValueExtendedProperties($filter=id eq 'Binary 0x300B')",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(items["value"].as_array().map(Vec::len), Some(2));
    assert!(
        items["value"][0]["singleValueExtendedProperties"][0]["value"].is_string(),
        "{items}"
    );
}

#[test]
fn items_of_every_class_go_through_export_and_import_but_not_through_the_messages_api() {
    let mut world = World::new(Tenant::new(
        "contoso",
        "app-1",
        &[UPN.to_string(), "bob@contoso.test".to_string()],
    ));
    let sku = world.tenant.skus[0].sku_id.clone();
    for user in &mut world.tenant.users {
        user.licenses.push(sku.clone());
    }
    let meeting = world.tenant.users[0]
        .mailbox
        .put_item("calendar", "IPM.Appointment", "Review", "Room 4")
        .expect("calendar");
    let (_, settings) = call(&mut world, "GET", "/settings/exchange", None);
    let from = settings["primaryMailboxId"]
        .as_str()
        .expect("id")
        .to_string();
    let bob = |world: &mut World| {
        let (_, settings) = call_at(
            world,
            "GET",
            "/users/bob@contoso.test/settings/exchange",
            "",
            None,
        );
        settings["primaryMailboxId"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let to = bob(&mut world);

    // The import/export API lists the calendar with its class; the mailFolders API does not.
    let (_, folders) = call_at(
        &mut world,
        "GET",
        &format!("/admin/exchange/mailboxes/{to}/folders"),
        "$top=50",
        None,
    );
    let calendar = folders["value"]
        .as_array()
        .expect("folders")
        .iter()
        .find(|f| f["type"] == "IPF.Appointment")
        .expect("a calendar")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, mail) = call(&mut world, "GET", "/mailFolders", Some(json!(null)));
    assert!(
        mail["value"]
            .as_array()
            .expect("folders")
            .iter()
            .all(|f| f["displayName"] != "Calendar")
    );
    let (status, _) = call(&mut world, "GET", "/mailFolders/calendar/messages", None);
    assert_eq!(status, 404, "a calendar is not a mail folder");

    let (_, exported) = call_at(
        &mut world,
        "POST",
        &format!("/admin/exchange/mailboxes/{from}/exportItems"),
        "",
        Some(json!({"itemIds": [meeting]})),
    );
    let data = exported["value"][0]["data"]
        .as_str()
        .expect("data")
        .to_string();
    let (_, session) = call_at(
        &mut world,
        "POST",
        &format!("/admin/exchange/mailboxes/{to}/createImportSession"),
        "",
        None,
    );
    let token = session["importUrl"]
        .as_str()
        .expect("url")
        .split("authtoken=")
        .nth(1)
        .expect("token")
        .to_string();
    let (status, made) = call_at(
        &mut world,
        "POST",
        &format!("/import/{to}"),
        &format!("authtoken={token}"),
        Some(json!({"FolderId": calendar, "Mode": "create", "Data": data})),
    );
    assert_eq!(status, 200, "{made}");
    let (_, items) = call_at(
        &mut world,
        "GET",
        &format!("/admin/exchange/mailboxes/{to}/folders/{calendar}/items"),
        "",
        None,
    );
    assert_eq!(items["value"][0]["type"], "IPM.Appointment");
    let copy = &world.tenant.users[1].mailbox.messages[made["itemId"].as_str().expect("id")];
    assert_eq!(
        (copy.subject.as_str(), copy.body.as_str()),
        ("Review", "Room 4")
    );
    let (_, messages) = call_at(
        &mut world,
        "GET",
        "/users/bob@contoso.test/messages",
        "",
        None,
    );
    assert_eq!(
        messages["value"].as_array().map(Vec::len),
        Some(0),
        "no appointment among messages"
    );

    // A folder of another class is made with its type; an item deleted is gone.
    let (status, made_folder) = call_at(
        &mut world,
        "POST",
        &format!("/admin/exchange/mailboxes/{to}/folders"),
        "",
        Some(json!({"displayName": "Team", "type": "IPF.Contact"})),
    );
    assert_eq!(
        (status, made_folder["type"].as_str()),
        (201, Some("IPF.Contact"))
    );
    let item = made["itemId"].as_str().expect("id").to_string();
    let (status, _) = call_at(
        &mut world,
        "DELETE",
        &format!("/admin/exchange/mailboxes/{to}/folders/{calendar}/items/{item}"),
        "",
        None,
    );
    assert_eq!(status, 400, "disposalType is required");
    let (status, _) = call_at(
        &mut world,
        "DELETE",
        &format!("/admin/exchange/mailboxes/{to}/folders/{calendar}/items/{item}"),
        "disposalType=hardDelete",
        None,
    );
    assert_eq!(status, 204);
    assert!(!world.tenant.users[1].mailbox.messages.contains_key(&item));
}

#[test]
fn users_are_listed_a_page_at_a_time() {
    let mut world = world();
    for n in 0..250 {
        world
            .tenant
            .add_user(&format!("u{n}@contoso.test"), &format!("User {n}"));
    }
    // 100 a page by default, the rest behind nextLink.
    let (status, first) = call_at(&mut world, "GET", "/users", "", None);
    assert_eq!(status, 200);
    assert_eq!(first["value"].as_array().map(Vec::len), Some(100));
    let next = first["@odata.nextLink"].as_str().expect("a next page");
    let query = next.split_once('?').map_or("", |(_, q)| q);
    let (_, second) = call_at(&mut world, "GET", "/users", query, None);
    assert_eq!(second["value"][0]["displayName"], "User 99");
    // $top up to 999: every one of the 251 users in one page.
    let (_, all) = call_at(&mut world, "GET", "/users", "$top=999", None);
    assert_eq!(all["value"].as_array().map(Vec::len), Some(251));
    assert!(all["@odata.nextLink"].is_null());
}
