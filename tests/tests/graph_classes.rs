//! Tenant to tenant, every item class: calendars, contacts, tasks, notes and journals travel
//! whole through the mailbox import/export API beside the mail, as keyed items (search key
//! and change key). Initial, no-op, delta (an event edited in place, a contact deleted, a task
//! added), a target-side edit reported as a conflict and left as it is, and replies to
//! committed imports lost: checked from both emulated tenants' own state.

use std::collections::BTreeMap;

use ferry_graph_emulator::world::{Folder, Mailbox, new_id};
use ferry_tests::graph::{Tenant, UPN};
use ferry_tests::imap::copied;

/// Every item not in a mail folder, by (folder path, class) → sorted (subject, body, key).
type Items = BTreeMap<(String, String), Vec<(String, String, Vec<u8>)>>;

fn other_items(tenant: &Tenant) -> Items {
    tenant.emulator.with_world(|world| {
        let mailbox = &world.tenant.users[0].mailbox;
        let path = |mut id: String| {
            let mut names = Vec::new();
            while let Some(folder) = mailbox.folders.get(&id) {
                if folder.parent.is_none() {
                    break;
                }
                names.push(folder.display_name.clone());
                id = folder.parent.clone().unwrap_or_default();
            }
            names.reverse();
            names.join("/")
        };
        let mut out: Items = BTreeMap::new();
        for item in mailbox.messages.values().filter(|m| m.class != "IPM.Note") {
            out.entry((path(item.folder.clone()), item.class.clone()))
                .or_default()
                .push((
                    item.subject.clone(),
                    item.body.clone(),
                    item.search_key.clone(),
                ));
        }
        for list in out.values_mut() {
            list.sort();
        }
        out
    })
}

/// The source mailbox as its user filled it.
fn fill(mailbox: &mut Mailbox) {
    let calendar = mailbox.well_known("calendar");
    let team = new_id("AQMkAGFld");
    mailbox.folders.insert(
        team.clone(),
        Folder {
            id: team.clone(),
            display_name: "Team".into(),
            parent: Some(calendar),
            well_known: None,
            class: "IPF.Appointment".into(),
        },
    );
    for (folder, class, count) in [
        ("calendar", "IPM.Appointment", 30),
        (team.as_str(), "IPM.Appointment", 5),
        ("contacts", "IPM.Contact", 20),
        ("tasks", "IPM.Task", 10),
        ("notes", "IPM.StickyNote", 5),
        ("journal", "IPM.Activity", 3),
    ] {
        for n in 0..count {
            mailbox
                .put_item(
                    folder,
                    class,
                    &format!("{class} {n}"),
                    &format!("body {n} ü"),
                )
                .expect("folder");
        }
    }
    for n in 0..10 {
        let mime = format!(
            "From: a@example.com\r\nSubject: mail {n}\r\nMessage-ID: <m{n}@x>\r\n\r\nhello\r\n"
        );
        mailbox
            .deliver("inbox", mime.into_bytes(), chrono::Utc::now())
            .expect("deliver");
    }
}

/// The id of the item of `class` whose subject is `subject` in the mailbox of `tenant`.
fn item_id(tenant: &Tenant, subject: &str) -> String {
    tenant.emulator.with_world(|world| {
        world.tenant.users[0]
            .mailbox
            .messages
            .values()
            .find(|m| m.subject == subject)
            .map(|m| m.id.clone())
            .unwrap_or_else(|| panic!("no {subject}"))
    })
}

#[test]
fn calendars_contacts_tasks_notes_and_journals_travel_whole_between_tenants() {
    let from = Tenant::start(None, |_| {});
    let to = Tenant::start(None, |_| {});
    from.emulator
        .with_world(|world| fill(&mut world.tenant.users[0].mailbox));
    let run = |extra: &[&str]| {
        let output = from
            .command(&from.uri(), &to.uri(), "t2t", extra)
            .output()
            .expect("run ferry");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };

    // Initial, with replies to committed imports lost: each found by its key, none doubled.
    to.emulator
        .with_world(|world| world.faults.lose_create_replies = 4);
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    let wanted = other_items(&from);
    assert_eq!(wanted.values().map(Vec::len).sum::<usize>(), 73);
    assert_eq!(other_items(&to), wanted, "every item, whole, once");
    assert_eq!(
        to.mailbox()
            .iter()
            .filter(|m| m["class"] == "IPM.Note")
            .count(),
        10
    );
    let imports = to.emulator.counters(UPN).imports;
    assert_eq!(imports, 83, "one import per item and message");

    // No-op.
    let exports = from.emulator.counters(UPN).exports;
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(copied(&out), 0, "{out}");
    assert_eq!(from.emulator.counters(UPN).exports, exports);
    assert_eq!(to.emulator.counters(UPN).imports, imports);

    // Delta: an event edited, a contact deleted, a task added.
    let event = item_id(&from, "IPM.Appointment 7");
    let target_event = item_id(&to, "IPM.Appointment 7");
    let contact = item_id(&from, "IPM.Contact 3");
    from.emulator.with_world(|world| {
        let mailbox = &mut world.tenant.users[0].mailbox;
        mailbox.edit(&event, chrono::Utc::now(), |m| {
            m.body = "moved to 11:00".into()
        });
        mailbox.purge(&contact);
        mailbox.put_item("tasks", "IPM.Task", "IPM.Task new", "do it");
    });
    let (code, out) = run(&["--delete-removed"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(other_items(&to), other_items(&from));
    assert_eq!(
        item_id(&to, "IPM.Appointment 7"),
        target_event,
        "the event updated in place, not copied and deleted"
    );
    assert_eq!(
        to.emulator.counters(UPN).imports,
        imports + 2,
        "one update, one create"
    );

    // Verified against the target: nothing missing, nothing to write.
    let (code, out) = run(&["--verify-target"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(copied(&out), 0, "{out}");
    assert_eq!(to.emulator.counters(UPN).imports, imports + 2);

    // A target-side edit meets a source edit: a conflict, the target's kept.
    let target_task = item_id(&to, "IPM.Task 2");
    let source_task = item_id(&from, "IPM.Task 2");
    to.emulator.with_world(|world| {
        world.tenant.users[0]
            .mailbox
            .edit(&target_task, chrono::Utc::now(), |m| {
                m.body = "done on the target".into()
            });
    });
    from.emulator.with_world(|world| {
        world.tenant.users[0]
            .mailbox
            .edit(&source_task, chrono::Utc::now(), |m| {
                m.body = "changed on the source".into()
            });
    });
    let (_, out) = run(&[]);
    assert!(out.contains("in conflict"), "{out}");
    let kept = to.emulator.with_world(|world| {
        world.tenant.users[0].mailbox.messages[&target_task]
            .body
            .clone()
    });
    assert_eq!(kept, "done on the target", "never overwritten");
}
