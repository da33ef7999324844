//! Checks made before a run creates or writes anything: the two ends are two different stores,
//! neither inside the other; the journal belongs to this pair and is whole; on a first run,
//! the source (and a server target) answer. A refused start leaves nothing behind.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use ferry_engine::pacer::Pacer;
use ferry_engine::{Event, Store};
use ferry_journal::Journal;

/// A Maildir URI's path, resolved through symbolic links and `..` as far as it exists (the rest,
/// not created yet, appended as written, without `.` and `..`).
pub fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("resolving the path {}", path.display()))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(resolved) => {
                let mut out = resolved;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(_) => match (existing.parent(), existing.components().next_back()) {
                (Some(parent), Some(Component::Normal(name))) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                (Some(parent), Some(Component::ParentDir)) => {
                    // `missing/..`: the missing part and its `..` cancel out.
                    existing = parent.parent().unwrap_or(parent);
                }
                (Some(parent), _) => existing = parent,
                (None, _) => return Ok(absolute),
            },
        }
    }
}

/// Refuses a pair whose two Maildirs are one store, or one inside the other (after resolving
/// symbolic links and `..`): ferry would copy into the mailbox it reads, and the next run would
/// copy the copies.
pub fn distinct_ends(from: &str, to: &str) -> anyhow::Result<()> {
    if from == to {
        bail!("the source and the target are the same store ({from})");
    }
    let (Some(source), Some(target)) = (from.strip_prefix("maildir:"), to.strip_prefix("maildir:"))
    else {
        return Ok(());
    };
    if source.is_empty() || target.is_empty() {
        return Ok(());
    }
    let source = canonical(Path::new(source))?;
    let target = canonical(Path::new(target))?;
    if source == target {
        bail!(
            "the source and the target are the same store: {from} and {to} are both {}",
            source.display()
        );
    }
    if target.starts_with(&source) {
        bail!(
            "the target {} is inside the source {}: ferry would write into the mailbox it \
             migrates (its users would see the copies, and the next run would copy them again); \
             give a target outside the source",
            target.display(),
            source.display()
        );
    }
    if source.starts_with(&target) {
        bail!(
            "the source {} is inside the target {}: ferry would copy the source into itself; \
             give a target outside the source",
            source.display(),
            target.display()
        );
    }
    Ok(())
}

/// The journal's directory key for a pair: the same for every spelling of the same Maildir.
pub fn pair_key(from: &str, to: &str) -> (String, String) {
    let spell = |uri: &str| match uri.strip_prefix("maildir:") {
        Some(path) if !path.is_empty() => canonical(Path::new(path))
            .map(|path| format!("maildir:{}", path.display()))
            .unwrap_or_else(|_| uri.to_owned()),
        _ => uri.to_owned(),
    };
    (spell(from), spell(to))
}

/// Checks every record of the journal (authenticity, position, chain, head, the store's own
/// checksums) before a run relies on it or appends to it. Runs beside `load`, which reads the
/// checkpoint and the records after it.
pub fn verified<T>(
    journal: &Journal<Event>,
    load: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T>
where
    T: Send,
{
    std::thread::scope(|scope| {
        let check = scope.spawn(|| journal.verify());
        let loaded = load();
        let checked = check
            .join()
            .map_err(|_| anyhow::anyhow!("the journal check stopped unexpectedly"))?;
        checked.with_context(|| {
            format!(
                "checking the journal at {} before the run (nothing was written)",
                journal.path().display()
            )
        })?;
        loaded
    })
}

/// On a first run: the source answers (and a server target), so a start that cannot work
/// creates no journal and no target. `tenants` are the budgets each end shares with other
/// mailboxes (a project's Microsoft 365 endpoint): the check waits its turn in them too.
pub async fn ends_answer(
    source: &dyn Store,
    target: Option<&dyn Store>,
    tenants: &[Option<std::sync::Arc<Pacer>>; 2],
) -> Result<(), (ferry_engine::Side, ferry_engine::StoreError)> {
    answers(source, tenants[0].as_deref())
        .await
        .map_err(|error| (ferry_engine::Side::Source, error))?;
    if let Some(target) = target {
        answers(target, tenants[1].as_deref())
            .await
            .map_err(|error| (ferry_engine::Side::Target, error))?;
    }
    Ok(())
}

/// Tries a store's folder listing, as long as the server asks (see [`retried`]).
async fn answers(
    store: &dyn Store,
    tenant: Option<&Pacer>,
) -> Result<(), ferry_engine::StoreError> {
    retried(|| async {
        let permit = match tenant {
            Some(tenant) => Some(tenant.admit(0).await),
            None => None,
        };
        let listed = store.list_folders().await;
        if let (Some(tenant), Err(ferry_engine::StoreError::Throttled { retry_after_ms, .. })) =
            (tenant, &listed)
        {
            tenant.throttled(std::time::Duration::from_millis(
                retry_after_ms.unwrap_or(1000),
            ));
        } else if let Some(permit) = permit {
            permit.done();
        }
        listed
    })
    .await
    .map(|_| ())
}

/// Makes a call outside a run; a throttled or transient answer is waited out and the call
/// made again a few times (as long as the server asks), like every call of a run.
pub async fn retried<T, F, Fut>(mut call: F) -> Result<T, ferry_engine::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ferry_engine::StoreError>>,
{
    const ATTEMPTS: u32 = 8;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let wait_ms = match call().await {
            Ok(value) => return Ok(value),
            Err(ferry_engine::StoreError::Throttled { retry_after_ms, .. })
                if attempt < ATTEMPTS =>
            {
                retry_after_ms.unwrap_or(1000)
            }
            Err(ferry_engine::StoreError::Transient(_)) if attempt < ATTEMPTS => {
                250 << attempt.min(5)
            }
            Err(error) => return Err(error),
        };
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
    }
}
