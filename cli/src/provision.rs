//! `--create-target-mailbox SKU`: the target user of a `graph:` URI created when the tenant has
//! none of that name, then given a licence of the SKU the operator names, before the run.
//! Each step is asked of the tenant first (done already: nothing is written) and journaled as
//! intent and outcome around its one request, so a run stopped anywhere in between ends, when
//! run again, with one user licensed once (`ferry audit` shows the steps).

use std::io::Write;
use std::time::Duration;

use anyhow::bail;
use ferry_engine::{Event, EventLog, ProvisionStep, Side, StoreError};
use ferry_graph::provision::{Provisioner, User};
use ferry_journal::Journal;

use crate::migrate::{PairArgs, StoreUnusable};
use crate::preflight::retried;

/// How long a new user may take to be listed (directory replication), then its mailbox to
/// be reachable once licensed (Exchange provisions it after the licence).
const USER_VISIBLE_WAIT: Duration = Duration::from_secs(120);
const MAILBOX_READY_WAIT: Duration = Duration::from_secs(1800);
const POLL: Duration = Duration::from_secs(5);

/// What `--create-target-mailbox` asks for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The SKU's part number (ENTERPRISEPACK) or id.
    pub sku: &'a str,
    /// The user's usage location (ISO 3166 country code), needed to license it.
    pub usage_location: Option<&'a str>,
}

fn provisioner(pair: &PairArgs) -> anyhow::Result<Provisioner> {
    if !pair.to.starts_with("graph:") {
        bail!(
            "--create-target-mailbox creates a Microsoft 365 mailbox: the target must be a \
             graph: URI, not {}",
            pair.to
        );
    }
    Provisioner::open(&pair.to, pair.secret(Side::Target)).map_err(unusable)
}

fn unusable(error: StoreError) -> anyhow::Error {
    anyhow::Error::new(StoreUnusable(format!(
        "creating the target mailbox: {error}"
    )))
}

/// For a plan: whether the target user exists (nothing is written).
pub async fn user_exists(pair: &PairArgs) -> anyhow::Result<bool> {
    let provisioner = provisioner(pair)?;
    Ok(retried(|| provisioner.lookup())
        .await
        .map_err(unusable)?
        .is_some())
}

/// Who else hears of each step, after the journal holds it: (step, user, done).
pub type Told = dyn Fn(&ProvisionStep, &str, bool) + Send + Sync;

/// Creates and licenses the target user where it is not yet, journaling each step (and
/// telling `also`, when given).
pub async fn provision(
    pair: &PairArgs,
    request: &Request<'_>,
    (journal, also): (&Journal<Event>, Option<&Told>),
    notices: &mut dyn Write,
) -> anyhow::Result<()> {
    let provisioner = provisioner(pair)?;
    let upn = provisioner.upn().to_string();
    let record = |step: ProvisionStep, done: bool| -> anyhow::Result<()> {
        EventLog::append(
            journal,
            &[Event::Provisioning {
                step: step.clone(),
                user: upn.clone(),
                done,
                at: ferry_engine::Clock::now_ms(&ferry_engine::SystemClock),
            }],
        )?;
        if let Some(also) = also {
            also(&step, &upn, done);
        }
        Ok(())
    };
    let sku = retried(|| provisioner.sku(request.sku))
        .await
        .map_err(unusable)?;
    let found = retried(|| provisioner.lookup()).await.map_err(unusable)?;
    let licensed = found
        .as_ref()
        .is_some_and(|user| user.licenses.contains(&sku.id));
    if !licensed && sku.free <= 0 {
        return Err(unusable(StoreError::Unusable(format!(
            "no free licence of {} in the tenant for {upn}: free or buy one, then run again \
             (nothing was created)",
            sku.part_number
        ))));
    }
    let user = match found {
        Some(user) => user,
        None => {
            record(ProvisionStep::CreateUser, false)?;
            let display_name = upn.split('@').next().unwrap_or(&upn).to_string();
            retried(|| provisioner.create_user(&display_name, request.usage_location))
                .await
                .map_err(unusable)?;
            let user = visible(&provisioner).await?;
            record(ProvisionStep::CreateUser, true)?;
            writeln!(notices, "created the user {upn} in the target tenant")?;
            user
        }
    };
    if !user.licenses.contains(&sku.id) {
        let step = ProvisionStep::AssignLicense {
            sku: sku.id.clone(),
        };
        record(step.clone(), false)?;
        retried(|| provisioner.assign(&sku.id))
            .await
            .map_err(unusable)?;
        record(step, true)?;
        writeln!(
            notices,
            "assigned a licence of {} to {upn}",
            sku.part_number
        )?;
    }
    mailbox_ready(&provisioner, notices).await
}

/// The user just created, once the directory lists it.
async fn visible(provisioner: &Provisioner) -> anyhow::Result<User> {
    let started = std::time::Instant::now();
    loop {
        if let Some(user) = retried(|| provisioner.lookup()).await.map_err(unusable)? {
            return Ok(user);
        }
        if started.elapsed() > USER_VISIBLE_WAIT {
            return Err(unusable(StoreError::Transient(format!(
                "{} was created but is not listed after {} s; run again later",
                provisioner.upn(),
                USER_VISIBLE_WAIT.as_secs()
            ))));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until Exchange has made the licensed user's mailbox.
async fn mailbox_ready(provisioner: &Provisioner, notices: &mut dyn Write) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut told = false;
    while !retried(|| provisioner.mailbox_ready())
        .await
        .map_err(unusable)?
    {
        if started.elapsed() > MAILBOX_READY_WAIT {
            return Err(unusable(StoreError::Transient(format!(
                "the mailbox of {} is not ready {} min after its licence; run again later",
                provisioner.upn(),
                MAILBOX_READY_WAIT.as_secs() / 60
            ))));
        }
        if !told {
            writeln!(
                notices,
                "waiting for Exchange to provision the mailbox of {}",
                provisioner.upn()
            )?;
            told = true;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}
