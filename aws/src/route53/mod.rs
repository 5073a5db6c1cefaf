//! Route53: hosted zones and the records the stack writes into them.
//!
//! Route53 is global and its zones can be tagged but its records cannot. A zone the stack
//! creates is found by its CallerReference (`infra/{region}/{stack}/{id}`, see [`zone`]); an
//! existing zone by its name. Records are owned through a TXT companion written in the same
//! change batch ([`infra_core::model::ownership_name`]); discovery reads each zone the stack
//! uses in one paginated ListResourceRecordSets pass.
//!
//! ChangeResourceRecordSets answers PENDING; GetChange says INSYNC once every Route53 name
//! server serves the change (moto 5.2 answers INSYNC at once). Every write waits for INSYNC.

pub(crate) mod record;
mod zone;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_route53 as route53;
use infra_core::model::{normalize_name, Certificate, Declared, HostedZone, Resource};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};
use route53::types::{Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet};

use crate::support::{api_error, error_code, wait_for, Poll};
use crate::AwsProvider;

/// How long a change may take to reach every Route53 name server (AWS: usually under 60 s).
const INSYNC_WITHIN: Duration = Duration::from_secs(10 * 60);

/// The stack's zones and records. `others` (every other service's discoveries) gives the load
/// balancers alias records point at, and its certificates validated in a zone are reported so
/// only while the zone serves their validation records.
pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
    others: &mut [Observed],
) -> Result<Vec<Observed>, ProviderError> {
    let mut zones = zone::discover(p, stack).await?;
    let mut out = Vec::new();
    let mut served: BTreeMap<Address, Vec<ResourceRecordSet>> = BTreeMap::new();
    for z in &mut zones {
        let Resource::HostedZone(model) = &z.resource else {
            continue;
        };
        let sets = list_record_sets(p, &z.physical_id).await?;
        out.extend(record::observe_zone(
            stack,
            &z.physical_id,
            model.name(),
            &sets,
            others,
        ));
        let servers = zone::name_servers(&sets, model.name());
        z.attributes
            .insert(attributes::NAME_SERVERS.to_string(), servers);
        served.insert(z.address.clone(), sets);
    }
    for certificate in others.iter_mut() {
        unvalidated_unless_served(certificate, &served);
    }
    out.extend(zones);
    Ok(out)
}

/// A certificate validated in a zone that does not serve its validation records (the zone was
/// added to an existing certificate, is not made yet, or the records were deleted) is reported
/// without the zone, so the plan writes them.
fn unvalidated_unless_served(
    certificate: &mut Observed,
    served: &BTreeMap<Address, Vec<ResourceRecordSet>>,
) {
    let Resource::Certificate(Certificate::Request {
        validate_in: validate_in @ Some(_),
        ..
    }) = &mut certificate.resource
    else {
        return;
    };
    let wanted = certificate
        .attributes
        .get(attributes::VALIDATION_RECORDS)
        .map_or("", String::as_str);
    let zone = validate_in.as_ref().map(|z| z.address());
    let ok = zone
        .and_then(|z| served.get(&z))
        .is_some_and(|sets| record::validation_served(sets, wanted));
    if !ok {
        *validate_in = None;
    }
}

/// A zone's id without the `/hostedzone/` prefix Route53 puts on it.
fn zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// A name as Route53 reports it (`\052` for `*`, a final dot), as the model keeps it.
fn from_route53(name: &str) -> String {
    normalize_name(&name.replace("\\052", "*"))
}

/// Every record set of a zone, in one paginated pass.
pub(crate) async fn list_record_sets(
    p: &AwsProvider,
    zone: &str,
) -> Result<Vec<ResourceRecordSet>, ProviderError> {
    let mut out = Vec::new();
    let mut next: Option<(String, route53::types::RrType, Option<String>)> = None;
    loop {
        let (name, kind, identifier) = match next.take() {
            Some((n, t, i)) => (Some(n), Some(t), i),
            None => (None, None, None),
        };
        let page = p
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .set_start_record_name(name)
            .set_start_record_type(kind)
            .set_start_record_identifier(identifier)
            .send()
            .await
            .map_err(|e| api_error("route53:ListResourceRecordSets", e))?;
        out.extend(page.resource_record_sets().iter().cloned());
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(n), Some(t)) => {
                next = Some((
                    n.to_string(),
                    t.clone(),
                    page.next_record_identifier().map(str::to_string),
                ))
            }
            _ => return Ok(out),
        }
    }
}

/// One change of a batch.
fn change(action: ChangeAction, set: ResourceRecordSet) -> Change {
    Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .expect("action and record set are set")
}

/// Send `changes` as one (atomic) batch and wait until Route53 serves them.
pub(crate) async fn write(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    zone: &str,
    changes: Vec<Change>,
) -> Result<(), ProviderError> {
    if changes.is_empty() {
        return Ok(());
    }
    let id = match send(p, zone, changes.clone()).await {
        Ok(id) => id,
        // A batch whose answer was lost, sent again by the SDK's retry, finds its own records
        // (CREATE: "already exists"; DELETE: "not found"). Batches are atomic: when the zone
        // holds exactly what the batch writes, the first attempt landed.
        Err(e)
            if error_code(&e) == Some("InvalidChangeBatch")
                && record::reflects(p, zone, &changes).await? =>
        {
            let upserts: Vec<Change> = changes
                .into_iter()
                .filter(|c| c.action() != &ChangeAction::Delete)
                .filter_map(|c| c.resource_record_set().cloned())
                .map(|set| change(ChangeAction::Upsert, set))
                .collect();
            if upserts.is_empty() {
                return Ok(());
            }
            // UPSERTs of what is there change nothing and give a change to wait for.
            send(p, zone, upserts).await?
        }
        Err(e) => return Err(e),
    };
    wait_insync(p, ctx, address, &id).await
}

/// Send one batch; the change's id.
async fn send(p: &AwsProvider, zone: &str, changes: Vec<Change>) -> Result<String, ProviderError> {
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .expect("changes are set");
    let out = p
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| api_error("route53:ChangeResourceRecordSets", e))?;
    Ok(out
        .change_info()
        .map(|c| c.id().to_string())
        .unwrap_or_default())
}

/// Wait until GetChange reports a change INSYNC.
async fn wait_insync(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    change_id: &str,
) -> Result<(), ProviderError> {
    wait_for(ctx.progress, address, "INSYNC", INSYNC_WITHIN, || async {
        let out = p
            .route53
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| api_error("route53:GetChange", e))?;
        match out.change_info().map(|c| c.status()) {
            Some(ChangeStatus::Insync) => Ok(Poll::Ready(())),
            status => Ok(Poll::Pending(
                status.map_or("PENDING", |s| s.as_str()).to_string(),
            )),
        }
    })
    .await
}

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    match &desired.resource {
        Resource::HostedZone(z) => zone::create(p, ctx, &desired.address(), z).await,
        _ => record::create(p, ctx, desired).await,
    }
}

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
) -> Result<Observed, ProviderError> {
    match &desired.resource {
        // Every field of a zone forces a replacement.
        Resource::HostedZone(_) => Ok(prior.clone()),
        _ => record::update(p, ctx, desired).await,
    }
}

/// A record to import (`ZONE_ID/NAME/TYPE`). A zone is not imported: a zone made elsewhere is
/// declared `HostedZone::existing(NAME)` and found by name.
pub(crate) async fn read(
    p: &AwsProvider,
    address: &Address,
    physical_id: &str,
    others: &[Observed],
) -> Result<Option<Observed>, ProviderError> {
    if address.kind != Kind::Record {
        return Err(ProviderError::Other(format!(
            "{address}: a hosted zone is not imported; declare a zone made elsewhere as \
             HostedZone::existing(NAME): it is found by name and never changed or deleted"
        )));
    }
    record::read(p, address, physical_id, others).await
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    match observed.address.kind {
        Kind::Record => record::adopt(p, ctx, observed).await,
        _ => Err(ProviderError::Other(format!(
            "{}: a hosted zone is not imported; declare it HostedZone::existing(NAME)",
            observed.address
        ))),
    }
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    match &prior.resource {
        Resource::HostedZone(HostedZone::Existing { .. }) => Ok(()),
        Resource::HostedZone(HostedZone::New { .. }) => zone::delete(p, ctx, prior).await,
        _ => record::delete(p, ctx, prior).await,
    }
}
