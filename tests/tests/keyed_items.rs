//! Items that change in place, end to end against the in-memory store: a calendar and its
//! events migrated with the collection's properties, an edit carried as one update of the
//! same target item, an edit on both sides reported as a conflict on every run and never
//! retried until someone resolves it, a deletion carried only under `--delete-removed`, a lost
//! reply after an update committed settled without a false conflict, and a kind the target
//! cannot hold reported per item.

use ferry_engine::event::RunOutcome;
use ferry_engine::journal::ContentKey;
use ferry_engine::projection::report::Report;
use ferry_engine::{
    Config, Event, FolderKind, FolderSpec, Kind, MemoryLog, Quiet, Run, RunOptions, RunSummary,
    State, StopSignal, SystemClock,
};
use ferry_memory::{Faults, MemoryStore};

const WORK: &str = "Calendars/Work";

struct Pair {
    source: MemoryStore,
    target: MemoryStore,
    log: MemoryLog,
}

impl Pair {
    fn new(target_kinds: Vec<Kind>) -> Pair {
        let source = MemoryStore::new("source", 1);
        let target = MemoryStore::new("target", 2);
        source.set_kinds(vec![Kind::Event, Kind::Task]);
        target.set_kinds(target_kinds);
        source.user_create_collection(
            WORK,
            FolderSpec {
                display_name: Some("Work".into()),
                color: Some("#3366ff".into()),
                ..FolderSpec::of(FolderKind::Calendar)
            },
        );
        for (key, hour) in [("uid-a", 9), ("uid-b", 10), ("uid-c", 11)] {
            source.user_put(WORK, key, Kind::Event, event(key, hour, "planning"));
        }
        Pair {
            source,
            target,
            log: MemoryLog::new(ContentKey::from_secret([3; 32]), Vec::new()),
        }
    }

    async fn run(&self, delete_removed: bool) -> (RunSummary, Vec<Event>) {
        let before = self.log.events().len();
        let history = self.log.events().iter().find_map(|event| match event {
            Event::RunStarted { source, target, .. } => Some((source.clone(), target.clone())),
            _ => None,
        });
        let mut run = Run::new(ferry_engine::RunContext {
            source: &self.source,
            target: &self.target,
            log: &self.log,
            state: State::replay(&self.log.events()),
            options: RunOptions {
                delete_removed,
                ..RunOptions::default()
            },
            config: Config {
                backoff_base_ms: 1,
                backoff_max_ms: 5,
                ..Config::default()
            },
            clock: &SystemClock,
            watcher: &Quiet,
            stop: StopSignal::new(),
            pacers: None,
        });
        let summary = run
            .execute(history.as_ref().map(|(s, t)| (s.as_str(), t.as_str())))
            .await
            .expect("the run ends");
        let new: Vec<Event> = self.log.events()[before..]
            .iter()
            .cloned()
            .flat_map(Event::flatten)
            .collect();
        (summary, new)
    }

    fn report(&self) -> Report {
        ferry_engine::projection::fold(&self.log.events())
    }

    /// The target's events as (key, text).
    fn target_events(&self) -> Vec<(String, String)> {
        keyed(&self.target, WORK)
    }
}

fn keyed(store: &MemoryStore, folder: &str) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = store
        .keyed_contents(folder)
        .into_iter()
        .map(|(key, bytes, _)| (key, String::from_utf8_lossy(&bytes).into_owned()))
        .collect();
    items.sort();
    items
}

/// An event starting at `hour`: the same size whatever the hour.
fn event(key: &str, hour: u8, summary: &str) -> Vec<u8> {
    format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{key}\r\nDTSTART:20261207T{hour:02}0000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    .into_bytes()
}

fn writes(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, Event::WriteIntent { .. }))
        .count()
}

#[tokio::test]
async fn an_edit_is_one_update_and_a_conflict_waits_for_its_resolution() {
    let pair = Pair::new(vec![Kind::Event]);

    // First run: the calendar with its properties, and its three events.
    let (summary, _) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(summary.counts.copied, 3);
    let spec = pair
        .target
        .spec(WORK)
        .expect("the calendar is on the target");
    assert_eq!(spec.kind, FolderKind::Calendar);
    assert_eq!(spec.display_name.as_deref(), Some("Work"));
    assert_eq!(spec.color.as_deref(), Some("#3366ff"));
    assert_eq!(pair.target_events(), keyed(&pair.source, WORK));
    let ids_before = pair.target.contents()[WORK]
        .iter()
        .map(|(id, ..)| id.clone())
        .collect::<Vec<_>>();

    // 10:00 → 11:00 on the source: the same size, one update of the same target item.
    pair.source
        .user_put(WORK, "uid-b", Kind::Event, event("uid-b", 11, "planning"));
    let (summary, _) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!((summary.counts.updated, summary.counts.copied), (1, 0));
    assert_eq!(pair.target_events(), keyed(&pair.source, WORK));
    let ids_after = pair.target.contents()[WORK]
        .iter()
        .map(|(id, ..)| id.clone())
        .collect::<Vec<_>>();
    assert_eq!(ids_after, ids_before, "an update keeps the target item");

    // Edited on both sides: a conflict, and the target's edit stays.
    pair.source
        .user_put(WORK, "uid-a", Kind::Event, event("uid-a", 9, "review"));
    let theirs = event("uid-a", 9, "moved");
    pair.target
        .user_put(WORK, "uid-a", Kind::Event, theirs.clone());
    for _ in 0..2 {
        let (summary, events) = pair.run(false).await;
        assert_eq!(summary.outcome, RunOutcome::CompletedWithFailures);
        assert_eq!(summary.counts.conflicts, 1);
        assert_eq!(writes(&events), 0, "a conflict is not retried");
        assert_eq!(pair.report().conflict_items(), 1);
        let on_target = pair.target_events();
        assert!(on_target.contains(&("uid-a".into(), String::from_utf8_lossy(&theirs).into())));
    }

    // Resolved: the user deletes the target item; the next run converges.
    assert!(pair.target.user_delete_key(WORK, "uid-a"));
    let (summary, _) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(pair.target_events(), keyed(&pair.source, WORK));
    assert_eq!(pair.report().conflict_items(), 0);

    // A deletion on the source: carried only under --delete-removed.
    assert!(pair.source.user_delete_key(WORK, "uid-c"));
    let (summary, _) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(pair.target_events().len(), 3);
    let (summary, _) = pair.run(true).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(summary.counts.deleted, 1);
    assert_eq!(pair.target_events(), keyed(&pair.source, WORK));
}

#[tokio::test]
async fn a_deletion_on_the_source_never_deletes_what_changed_on_the_target() {
    let pair = Pair::new(vec![Kind::Event]);
    pair.run(false).await;
    assert!(pair.source.user_delete_key(WORK, "uid-c"));
    let theirs = event("uid-c", 11, "kept by someone");
    pair.target
        .user_put(WORK, "uid-c", Kind::Event, theirs.clone());
    let (summary, _) = pair.run(true).await;
    assert_eq!(summary.outcome, RunOutcome::CompletedWithFailures);
    assert_eq!(summary.counts.conflicts, 1);
    assert!(
        pair.target_events()
            .contains(&("uid-c".into(), String::from_utf8_lossy(&theirs).into()))
    );
    let report = pair.report();
    let reasons: Vec<&String> = report
        .folders
        .values()
        .flat_map(|f| f.conflicts.keys())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("deleted on the source")),
        "{reasons:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reply_lost_after_an_update_committed_is_not_a_conflict() {
    let pair = Pair::new(vec![Kind::Event]);
    pair.run(false).await;
    pair.source
        .user_put(WORK, "uid-b", Kind::Event, event("uid-b", 12, "planning"));
    // Every write lands and its reply is lost: the update is sent again, refused (the
    // version moved on), and the target item found holding ferry's content.
    pair.target.set_faults(Faults {
        lost_reply: 1.0,
        ..Faults::default()
    });
    let (summary, events) = pair.run(false).await;
    pair.target.set_faults(Faults::default());
    assert_eq!(summary.outcome, RunOutcome::Completed, "{events:#?}");
    assert_eq!(summary.counts.updated, 1);
    assert_eq!(summary.counts.conflicts, 0);
    assert_eq!(pair.target_events(), keyed(&pair.source, WORK));
    // The next run finds nothing to do: ferry knows the version its own update made.
    let (summary, events) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(writes(&events), 0);
}

#[tokio::test]
async fn a_kind_the_target_cannot_hold_is_skipped_with_the_reason() {
    let pair = Pair::new(vec![Kind::Event]);
    pair.source
        .user_create_collection("Tasks", FolderSpec::of(FolderKind::TaskList));
    pair.source.user_put(
        "Tasks",
        "task-1",
        Kind::Task,
        b"BEGIN:VTODO\r\nUID:task-1\r\n".to_vec(),
    );
    let (summary, _) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::CompletedWithFailures);
    let skipped: Vec<&String> = summary.delta.skipped.iter().map(|s| &s.reason).collect();
    assert_eq!(skipped, ["the target cannot hold tasks"]);
    assert!(
        pair.target.spec("Tasks").is_none(),
        "no task list is created"
    );
    assert_eq!(pair.target_events(), keyed(&pair.source, WORK));
}

#[tokio::test]
async fn without_versions_an_edit_behind_ferrys_back_is_still_never_overwritten() {
    // Neither side gives versions (no ETags): every item is read again on every run, and an
    // update is preceded by a look at what the target holds.
    let pair = Pair::new(vec![Kind::Event]);
    pair.source.set_versions(false);
    pair.target.set_versions(false);
    pair.run(false).await;
    // An edit at the same size on the source alone: seen, and carried.
    pair.source
        .user_put(WORK, "uid-c", Kind::Event, event("uid-c", 12, "planning"));
    let (summary, _) = pair.run(false).await;
    assert_eq!(
        (summary.outcome, summary.counts.updated),
        (RunOutcome::Completed, 1)
    );
    assert_eq!(pair.target_events(), keyed(&pair.source, WORK));
    // Edited on both sides: a conflict, the target's edit stays.
    pair.source
        .user_put(WORK, "uid-a", Kind::Event, event("uid-a", 9, "review"));
    let theirs = event("uid-a", 9, "moved");
    pair.target
        .user_put(WORK, "uid-a", Kind::Event, theirs.clone());
    let (summary, _) = pair.run(true).await;
    assert_eq!(summary.outcome, RunOutcome::CompletedWithFailures);
    assert_eq!(summary.counts.conflicts, 1);
    assert!(
        pair.target_events()
            .contains(&("uid-a".into(), String::from_utf8_lossy(&theirs).into()))
    );
}

#[tokio::test]
async fn a_collections_properties_follow_the_source_and_a_target_side_change_is_kept() {
    use ferry_engine::CollectionProps;
    let pair = Pair::new(vec![Kind::Event]);
    let props = |display: &str, color: &str, description: &str| CollectionProps {
        display_name: Some(display.into()),
        color: Some(color.into()),
        description: Some(description.into()),
    };
    pair.source
        .user_set_props(WORK, &props("Work", "#3366ff", "Team dates"));

    // Made with its display name and colour, then described: all three as on the source.
    let (summary, _) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(pair.target.props(WORK), pair.source.props(WORK));
    let (_, events) = pair.run(false).await;
    assert_eq!(writes(&events), 0, "a no-op changes nothing");

    // Renamed and recoloured on the source: one change of the target collection.
    pair.source
        .user_set_props(WORK, &props("Arbeit", "#00aa00", "Team dates"));
    let (summary, events) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(writes(&events), 1);
    assert_eq!(pair.target.props(WORK), pair.source.props(WORK));

    // Described anew on both sides: the target's words stay, the run says why, every time.
    pair.source
        .user_set_props(WORK, &props("Arbeit", "#00aa00", "Dates of the team"));
    pair.target
        .user_set_props(WORK, &props("Arbeit", "#00aa00", "Mine"));
    for _ in 0..2 {
        let (summary, events) = pair.run(false).await;
        assert_eq!(summary.outcome, RunOutcome::CompletedWithFailures);
        let reason = events.iter().find_map(|event| match event {
            Event::WriteFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.contains("description is \"Mine\"")),
            "{reason:?}"
        );
        assert_eq!(
            pair.target
                .props(WORK)
                .and_then(|p| p.description)
                .as_deref(),
            Some("Mine")
        );
    }

    // Resolved by taking the source's words on the target: the next run converges.
    pair.target
        .user_set_props(WORK, &props("Arbeit", "#00aa00", "Dates of the team"));
    let (summary, _) = pair.run(false).await;
    assert_eq!(summary.outcome, RunOutcome::Completed);
    let (_, events) = pair.run(false).await;
    assert_eq!(writes(&events), 0);
    assert_eq!(pair.target.props(WORK), pair.source.props(WORK));
}
