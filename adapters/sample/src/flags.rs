//! The flags and keywords of a sample message, by the kind of its folder.

use ferry_engine::{Flags, SystemFlag};

use crate::folders::Kind;

/// The flags of a message, by folder; `None` for unseen mail still in `new/`.
pub(crate) fn sample_flags(rng: &mut fastrand::Rng, kind: Kind) -> Option<Flags> {
    let mut flags = Flags::new();
    let percent = |rng: &mut fastrand::Rng, p: u32| rng.u32(0..100) < p;
    match kind {
        Kind::Inbox => {
            if percent(rng, 12) {
                return None;
            }
            flags.set(SystemFlag::Seen, !percent(rng, 12));
            flags.set(
                SystemFlag::Answered,
                flags.has(SystemFlag::Seen) && percent(rng, 12),
            );
            flags.set(SystemFlag::Flagged, percent(rng, 6));
            if percent(rng, 4) {
                flags.add_keyword("$Forwarded");
            }
            if percent(rng, 2) {
                flags.add_keyword("$Junk");
            }
            if percent(rng, 8) {
                flags.add_keyword("Work");
            }
        }
        Kind::Sent => flags.set(SystemFlag::Seen, true),
        Kind::Drafts => {
            flags.set(SystemFlag::Draft, true);
            flags.set(SystemFlag::Seen, percent(rng, 80));
            flags.set(SystemFlag::Flagged, percent(rng, 15));
        }
        Kind::Trash => {
            flags.set(SystemFlag::Seen, percent(rng, 90));
            flags.set(SystemFlag::Deleted, percent(rng, 20));
        }
        Kind::Archive => {
            flags.set(SystemFlag::Seen, percent(rng, 97));
            flags.set(SystemFlag::Answered, percent(rng, 20));
            flags.set(SystemFlag::Flagged, percent(rng, 3));
            if percent(rng, 5) {
                flags.add_keyword("$Forwarded");
            }
        }
        Kind::Work => {
            flags.set(SystemFlag::Seen, percent(rng, 85));
            flags.set(SystemFlag::Flagged, percent(rng, 10));
            flags.set(SystemFlag::Answered, percent(rng, 15));
            if percent(rng, 40) {
                flags.add_keyword("Work");
            }
        }
        Kind::Newsletters => {
            flags.set(SystemFlag::Seen, percent(rng, 60));
            if percent(rng, 10) {
                flags.add_keyword("$Junk");
            }
        }
    }
    Some(flags)
}
