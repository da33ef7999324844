//! Reading messages: listing the items of the folders that changed (each EXAMINE and FETCH
//! planned from STATUS, all sent at once on one connection), and fetching bodies (the EXAMINE
//! sent beside the FETCH when no connection has the folder selected).

use std::collections::{BTreeSet, HashMap};

use ferry_engine::body::Body;
use ferry_engine::event::NativeId;
use ferry_engine::store::{Listing, StoreError, StoreResult};

use crate::conn::{Collect, Done};
use crate::fetch::{INLINE_BUDGET, fetch_bodies};
use crate::ids::{current_uid, parse_id};
use crate::listing::{PlannedListing, listing_from, unchanged};
use crate::pool::{enable_pending, run};
use crate::refusal::own;
use crate::status::status_items;
use crate::{ImapStore, lock};

impl ImapStore {
    /// The bodies `uids_of(UIDVALIDITY)` names in `folder`, on a session with it selected, and
    /// the UIDVALIDITY they belong to. A session that must select it first sends the EXAMINE
    /// and the FETCH together (one round trip, not two): the FETCH names UIDs of the
    /// `assumed` UIDVALIDITY, which the EXAMINE must confirm, else what it fetched is dropped.
    async fn fetch_selected(
        &self,
        folder: &str,
        assumed: u32,
        uids_of: impl Fn(u32) -> BTreeSet<u32>,
    ) -> StoreResult<(u32, HashMap<u32, Body>)> {
        let inner = &self.inner;
        let slot = inner.slot(Some(folder)).await?;
        let gate = slot.gate.clone().read_owned().await;
        if let Some(selected) = slot.selected(folder) {
            let bodies = fetch_bodies(
                &slot,
                uids_of(selected.validity),
                inner.spool_dir.as_deref(),
            )
            .await?;
            drop(gate);
            return Ok((selected.validity, bodies));
        }
        drop(gate);
        let _gate = slot.gate.clone().write_owned().await;
        if let Some(selected) = slot.selected(folder) {
            let bodies = fetch_bodies(
                &slot,
                uids_of(selected.validity),
                inner.spool_dir.as_deref(),
            )
            .await?;
            return Ok((selected.validity, bodies));
        }
        let (selected, fetched) = futures::future::join(
            inner.select(&slot, folder),
            fetch_bodies(&slot, uids_of(assumed), inner.spool_dir.as_deref()),
        )
        .await;
        let selected = selected?;
        Ok(if selected.validity == assumed {
            (assumed, fetched?)
        } else {
            (selected.validity, HashMap::new())
        })
    }

    /// Lists one folder select first: what the folder's UIDVALIDITY and HIGHESTMODSEQ are
    /// decides the FETCH. For a folder whose STATUS was out of date.
    async fn list_selected(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        let (alone, selected) = self.inner.exclusive(folder).await?;
        let qresync = alone.slot.session.caps.qresync;
        let plan = PlannedListing::new(
            (0, folder),
            (selected.validity, selected.highest_modseq),
            since,
            qresync,
        );
        let mut fetched = Vec::new();
        if selected.exists > 0 || plan.incremental().is_some() {
            for fetch in plan.fetch_commands() {
                fetched.push(run(&alone.slot, fetch, Collect::All).await?);
            }
        }
        listing_from(folder, &selected, &fetched, plan.incremental(), qresync)
    }
}

/// One connection lists every folder that changed: each EXAMINE and its UID FETCH are
/// planned from the folder's STATUS (from the folder listing) and all go out at once, so
/// the folders cost one round trip together instead of two each. The answer to each
/// EXAMINE confirms what its FETCH assumed (same UIDVALIDITY, a HIGHESTMODSEQ for a
/// CHANGEDSINCE); a folder where it does not is listed again on its own, select first.
pub(crate) async fn list_items_many(
    store: &ImapStore,
    asks: &[(&str, Option<&str>)],
) -> StoreResult<Vec<StoreResult<Listing>>> {
    let inner = &store.inner;
    if lock(&inner.server).is_none() {
        // What the server can do decides the commands: learn it from a first session.
        drop(inner.any().await?);
    }
    let caps = inner.caps();
    let qresync = caps.qresync;
    let mut out: Vec<Option<StoreResult<Listing>>> = asks.iter().map(|_| None).collect();
    let mut planned = Vec::new();
    lock(&inner.inline).clear();
    let mut inline_left = INLINE_BUDGET;
    for (index, &(folder, since)) in asks.iter().enumerate() {
        let cached = lock(&inner.statuses).get(folder).copied();
        let status = match cached {
            Some(status) if status.uid_validity.is_some() => status,
            // A lost session is the whole call's failure (`?`); the server's refusal of
            // this folder is its own, unless it asked to slow down.
            _ => match inner
                .status_answer(folder, status_items(&caps, inner.read_only))
                .await?
            {
                Ok(status) => status,
                Err(error @ StoreError::Throttled { .. }) => return Err(error),
                Err(error) => {
                    out[index] = Some(Err(own(error)));
                    continue;
                }
            },
        };
        if let Some(listing) = unchanged(&status, since, qresync) {
            // Nothing changed: no EXAMINE, no FETCH; the token stays as it was.
            out[index] = Some(Ok(listing));
            continue;
        }
        let Some(validity) = status.uid_validity else {
            out[index] = Some(Err(StoreError::Permanent(format!(
                "STATUS {folder}: the server gave no UIDVALIDITY, so its messages cannot \
                 be tracked"
            ))));
            continue;
        };
        let mut plan = PlannedListing::new(
            (index, folder),
            (validity, status.highest_modseq.unwrap_or(0)),
            since,
            qresync,
        )
        .in_select(status.uid_next);
        if let Some(bound) = plan.inline_bound(status.uid_next)
            && bound <= inline_left
        {
            inline_left -= bound;
            plan.inline = true;
        }
        match inner.select_command(&caps, folder, plan.select_since()) {
            Ok(select) => planned.push((plan, select)),
            Err(error) => out[index] = Some(Err(error)),
        }
    }
    if !planned.is_empty() {
        let alone = inner.alone().await?;
        *lock(&alone.slot.selected) = None;
        // Every command is queued before the first answer is awaited, in this order, and
        // the server answers them in order.
        let mut commands = Vec::new();
        let mut plans = Vec::new();
        for (plan, select) in planned {
            commands.push(run(&alone.slot, select, Collect::All));
            for fetch in plan.fetch_commands() {
                commands.push(run(&alone.slot, fetch, Collect::All));
            }
            plans.push(plan);
        }
        let (enabled, answers) = futures::future::join(
            enable_pending(&alone.slot),
            futures::future::join_all(commands),
        )
        .await;
        enabled?;
        let mut answers = answers.into_iter();
        let mut selected_last = None;
        let mut again = Vec::new();
        // A refusal that asks to slow down is the whole call's, once every answer is
        // taken.
        let mut throttled = None;
        for plan in &plans {
            let Some(examined) = answers.next() else {
                break;
            };
            let fetched: Vec<StoreResult<Done>> =
                answers.by_ref().take(plan.fetch_count()).collect();
            let examined = examined?;
            let selected = match inner.selected_from(plan.folder, &examined) {
                Ok(selected) => selected,
                Err(error) => {
                    selected_last = None;
                    match own(error) {
                        error @ StoreError::Throttled { .. } => throttled = Some(error),
                        error => out[plan.index] = Some(Err(error)),
                    }
                    continue;
                }
            };
            selected_last = Some(selected.clone());
            let mut fetched = fetched.into_iter().collect::<StoreResult<Vec<Done>>>()?;
            if !plan.confirmed_by(&selected) {
                again.push(plan.index);
                continue;
            }
            if plan.in_select {
                // The changes came with the EXAMINE.
                fetched.insert(0, examined);
            }
            if plan.inline {
                inner.keep_inline(plan.folder, selected.validity, &mut fetched);
            }
            match listing_from(
                plan.folder,
                &selected,
                &fetched,
                plan.incremental(),
                qresync,
            )
            .map_err(own)
            {
                Err(error @ StoreError::Throttled { .. }) => throttled = Some(error),
                listing => out[plan.index] = Some(listing),
            }
        }
        *lock(&alone.slot.selected) = selected_last;
        drop(alone);
        if let Some(error) = throttled {
            return Err(error);
        }
        for index in again {
            let (folder, since) = asks[index];
            out[index] = Some(match store.list_selected(folder, since).await {
                Err(error @ (StoreError::Permanent(_) | StoreError::NotFound(_))) => Err(error),
                Err(error) => return Err(error),
                Ok(listing) => Ok(listing),
            });
        }
    }
    Ok(out
        .into_iter()
        .zip(asks)
        .map(|(listing, (folder, _))| {
            listing.unwrap_or_else(|| {
                Err(StoreError::Transient(format!(
                    "{folder}: the server gave no UIDVALIDITY in its status"
                )))
            })
        })
        .collect())
}

/// The body of message `id` in `folder`.
pub(crate) async fn fetch(store: &ImapStore, folder: &str, id: &NativeId) -> StoreResult<Body> {
    let shared = store.inner.shared(folder).await?;
    let uid = current_uid(folder, id, shared.selected.validity)?;
    match fetch_bodies(
        &shared.slot,
        BTreeSet::from([uid]),
        store.inner.spool_dir.as_deref(),
    )
    .await?
    .remove(&uid)
    {
        Some(body) => Ok(body),
        None => Err(StoreError::NotFound(format!("{folder}: UID {uid} is gone"))),
    }
}

/// The bodies of `ids` in `folder`: those a change listing carried, the others fetched.
pub(crate) async fn fetch_many(
    store: &ImapStore,
    folder: &str,
    ids: &[NativeId],
) -> StoreResult<Vec<StoreResult<Body>>> {
    let inner = &store.inner;
    // The ids' UIDVALIDITY, as the listing that named them saw it.
    let assumed = ids.iter().find_map(parse_id).map_or(0, |(v, _)| v);
    let uids_of = |validity: u32| -> BTreeSet<u32> {
        ids.iter()
            .filter_map(parse_id)
            .filter(|(v, _)| *v == validity)
            .map(|(_, uid)| uid)
            .collect()
    };
    // Bodies the change listing carried need no request at all.
    let mut wanted = uids_of(assumed);
    let cached = inner.take_inline(folder, assumed, &mut wanted);
    let (validity, mut bodies) = if wanted.is_empty() && !cached.is_empty() {
        (assumed, HashMap::new())
    } else {
        let wanted_of = |validity: u32| {
            if validity == assumed {
                wanted.clone()
            } else {
                uids_of(validity)
            }
        };
        store.fetch_selected(folder, assumed, wanted_of).await?
    };
    if validity == assumed {
        bodies.extend(
            cached
                .into_iter()
                .map(|(uid, body)| (uid, Body::from(body))),
        );
    }
    Ok(ids
        .iter()
        .map(|id| {
            let uid = current_uid(folder, id, validity)?;
            bodies
                .remove(&uid)
                .ok_or_else(|| StoreError::NotFound(format!("{folder}: UID {uid} is gone")))
        })
        .collect())
}
