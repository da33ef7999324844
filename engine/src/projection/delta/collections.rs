//! A collection's properties (display name, colour, description) follow its source
//! collection's: ferry changes them on the target only from what it last set there, so a
//! collection someone else made, or a property changed on the target behind ferry's back,
//! is left as it is (the target store refuses the change as a conflict).

use crate::item::{CollectionProps, FolderKind};
use crate::projection::source::SourceFolder;
use crate::projection::target::TargetFolder;

/// The change of properties target collection `target` needs to match `source`, as
/// (from, to): `None` when it matches, is a mail folder, or is not ferry's. A collection about
/// to be made (`target` is `None`) is made with its display name and colour, so only a
/// description is left to set.
pub fn props_change(
    source: &SourceFolder,
    target: Option<&TargetFolder>,
) -> Option<(CollectionProps, CollectionProps)> {
    if source.spec.kind == FolderKind::Mail {
        return None;
    }
    let to = source.props();
    let from = match target {
        None => CollectionProps::of(&source.spec, None),
        Some(target) => target.props.clone()?,
    };
    (from != to).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::FolderSpec;

    fn calendar(display: &str, description: Option<&str>) -> SourceFolder {
        SourceFolder {
            spec: FolderSpec {
                display_name: Some(display.into()),
                color: Some("#112233".into()),
                ..FolderSpec::of(FolderKind::Calendar)
            },
            description: description.map(str::to_owned),
            ..SourceFolder::default()
        }
    }

    fn made(source: &SourceFolder) -> TargetFolder {
        TargetFolder {
            created_by_ferry: true,
            props: Some(CollectionProps::of(&source.spec, None)),
            ..TargetFolder::default()
        }
    }

    #[test]
    fn a_collection_made_now_gets_its_description_after_and_nothing_else() {
        let plain = calendar("Work", None);
        assert_eq!(props_change(&plain, None), None);
        let described = calendar("Work", Some("Team dates"));
        let (from, to) = props_change(&described, None).expect("a description to set");
        assert_eq!(from.description, None);
        assert_eq!(to.description.as_deref(), Some("Team dates"));
        assert_eq!(from.differences(&to), vec!["description"]);
    }

    #[test]
    fn a_change_on_the_source_is_planned_from_what_ferry_set() {
        let before = calendar("Work", Some("Team dates"));
        let mut target = made(&before);
        target.props = Some(before.props());
        assert_eq!(props_change(&before, Some(&target)), None);
        let renamed = calendar("Arbeit", Some("Team dates"));
        let (from, to) = props_change(&renamed, Some(&target)).expect("a change");
        assert_eq!(from, before.props());
        assert_eq!(from.differences(&to), vec!["display name"]);
    }

    #[test]
    fn collections_ferry_did_not_make_and_mail_folders_are_left_alone() {
        let source = calendar("Work", Some("Team dates"));
        let found = TargetFolder {
            observed: true,
            ..TargetFolder::default()
        };
        assert_eq!(props_change(&source, Some(&found)), None);
        let mail = SourceFolder::default();
        assert_eq!(props_change(&mail, None), None);
    }
}
