//! Records: A/AAAA aliases to a load balancer, CNAME and TXT, each with its TXT ownership
//! companion; and the DNS validation records of a certificate (owned by the certificate).
//!
//! The rule: a record is `infra`'s when the companion `_infra-{type}.{name}` holds
//! `infra stack=S region=R owner=ADDRESS` for this stack. Create writes the record and its
//! companion in one CREATE batch, after checking that the name holds no record of that type;
//! delete sends both with the record's current values (Route53 deletes only an exact match).
//! A record without our companion is never changed or deleted.

use aws_sdk_route53 as route53;
use infra_core::model::{
    full_name, ownership_name, ownership_owner, ownership_value, Declared, HostedZone, Record,
    RecordData, Resource,
};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref, Stack};
use route53::types::{
    AliasTarget, Change, ChangeAction, ResourceRecord, ResourceRecordSet, RrType,
};

use super::{change, from_route53, write};
use crate::AwsProvider;

const COMPANION_TTL: i64 = 300;

/// The owner named by a companion set, when it is this stack's.
fn owner(set: &ResourceRecordSet, stack: &str, region: &str) -> Option<String> {
    if set.r#type() != &RrType::Txt {
        return None;
    }
    let value = set.resource_records().first()?.value().trim_matches('"');
    ownership_owner(value, stack, region).map(str::to_string)
}

fn find<'a>(
    sets: &'a [ResourceRecordSet],
    fqdn: &str,
    kind: &RrType,
) -> Option<&'a ResourceRecordSet> {
    sets.iter()
        .find(|s| from_route53(s.name()) == fqdn && s.r#type() == kind)
}

fn plain_set(fqdn: &str, kind: RrType, ttl: i64, values: &[String]) -> ResourceRecordSet {
    let records = values
        .iter()
        .map(|v| {
            ResourceRecord::builder()
                .value(v)
                .build()
                .expect("value is set")
        })
        .collect();
    ResourceRecordSet::builder()
        .name(fqdn)
        .r#type(kind)
        .ttl(ttl)
        .set_resource_records(Some(records))
        .build()
        .expect("name and type are set")
}

fn companion(fqdn: &str, kind: &RrType, value: &str) -> ResourceRecordSet {
    plain_set(
        &ownership_name(fqdn, kind.as_str()),
        RrType::Txt,
        COMPANION_TTL,
        &[format!("\"{value}\"")],
    )
}

/// The zone's id and name, from the zone as created or discovered.
fn zone_of<'a>(
    ctx: &'a Context<'_>,
    zone: &Ref<HostedZone>,
) -> Result<(&'a str, &'a str), ProviderError> {
    let observed = ctx
        .resolved
        .get(&zone.address())
        .ok_or_else(|| ProviderError::Unresolved(zone.address()))?;
    match &observed.resource {
        Resource::HostedZone(z) => Ok((observed.physical_id.as_str(), z.name())),
        _ => Err(ProviderError::Unresolved(zone.address())),
    }
}

/// The record set a declared record is written as.
fn desired_set(
    ctx: &Context<'_>,
    fqdn: &str,
    r: &Record,
) -> Result<ResourceRecordSet, ProviderError> {
    let kind = RrType::from(r.record_type());
    Ok(match &r.data {
        RecordData::Alias { load_balancer, .. } => {
            let lb = load_balancer.address();
            let target = AliasTarget::builder()
                .hosted_zone_id(
                    ctx.resolved
                        .attribute(&lb, attributes::CANONICAL_HOSTED_ZONE_ID)?,
                )
                .dns_name(ctx.resolved.attribute(&lb, attributes::DNS_NAME)?)
                .evaluate_target_health(false)
                .build()
                .expect("alias target fields are set");
            ResourceRecordSet::builder()
                .name(fqdn)
                .r#type(kind)
                .alias_target(target)
                .build()
                .expect("name and type are set")
        }
        RecordData::Cname { target, ttl } => {
            plain_set(fqdn, kind, i64::from(*ttl), std::slice::from_ref(target))
        }
        RecordData::Txt { values, ttl } => {
            let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
            plain_set(fqdn, kind, i64::from(*ttl), &quoted)
        }
    })
}

/// The record sets at `name` (a targeted ListResourceRecordSets, not the zone's whole pass).
async fn sets_at(
    p: &AwsProvider,
    zone: &str,
    names: &[&str],
) -> Result<Vec<ResourceRecordSet>, ProviderError> {
    let mut out = Vec::new();
    for name in names {
        let page = p
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(*name)
            .max_items(20)
            .send()
            .await
            .map_err(|e| crate::support::api_error("route53:ListResourceRecordSets", e))?;
        out.extend(
            page.resource_record_sets()
                .iter()
                .filter(|s| from_route53(s.name()) == *name)
                .cloned(),
        );
    }
    Ok(out)
}

/// Whether `zone` holds what `changes` write: every CREATE or UPSERT set as given, every
/// DELETE set gone.
pub(super) async fn reflects(
    p: &AwsProvider,
    zone: &str,
    changes: &[Change],
) -> Result<bool, ProviderError> {
    let wanted: Vec<(&ChangeAction, &ResourceRecordSet)> = changes
        .iter()
        .filter_map(|c| Some((c.action(), c.resource_record_set()?)))
        .collect();
    let names: Vec<String> = wanted.iter().map(|(_, s)| from_route53(s.name())).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let sets = sets_at(p, zone, &names).await?;
    Ok(wanted.iter().all(|(action, set)| {
        let found = find(&sets, &from_route53(set.name()), set.r#type());
        match action {
            ChangeAction::Delete => found.is_none(),
            _ => found.is_some_and(|f| same_set(f, set)),
        }
    }))
}

/// Same values (in any order), TTL and alias target.
fn same_set(a: &ResourceRecordSet, b: &ResourceRecordSet) -> bool {
    let values = |s: &ResourceRecordSet| {
        let mut v: Vec<String> = s
            .resource_records()
            .iter()
            .map(|r| match s.r#type() {
                RrType::Txt => r.value().to_string(),
                _ => from_route53(r.value()),
            })
            .collect();
        v.sort();
        v
    };
    let alias = |s: &ResourceRecordSet| s.alias_target().map(|t| from_route53(t.dns_name()));
    values(a) == values(b) && a.ttl() == b.ttl() && alias(a) == alias(b)
}

fn foreign(address: &Address, fqdn: &str, kind: &RrType, zone: &str) -> ProviderError {
    ProviderError::Other(format!(
        "{address}: `{fqdn}` already has a {} record in zone `{zone}` that infra did not create \
         (there is no `{}` TXT record naming this stack); infra never changes a record it did \
         not write: delete that record yourself (or choose another name), then apply again",
        kind.as_str(),
        ownership_name(fqdn, kind.as_str())
    ))
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let Resource::Record(r) = &desired.resource else {
        return Err(ProviderError::Other(format!(
            "{address} is not a Route53 record"
        )));
    };
    let (zone_id, zone_name) = zone_of(ctx, &r.zone)?;
    let fqdn = full_name(&r.name, zone_name);
    let kind = RrType::from(r.record_type());
    let companion_name = ownership_name(&fqdn, kind.as_str());
    let sets = sets_at(p, zone_id, &[&fqdn, &companion_name]).await?;
    let mine = find(&sets, &companion_name, &RrType::Txt)
        .and_then(|s| owner(s, ctx.stack, ctx.region))
        .is_some_and(|o| o == address.to_string());
    let set = desired_set(ctx, &fqdn, r)?;
    let value = ownership_value(ctx.stack, ctx.region, &address.to_string());
    let changes = match (find(&sets, &fqdn, &kind), mine) {
        (Some(_), false) => return Err(foreign(&address, &fqdn, &kind, zone_name)),
        // Written by an earlier apply that did not finish: bring it to what is declared.
        (_, true) => vec![
            change(ChangeAction::Upsert, set),
            change(ChangeAction::Upsert, companion(&fqdn, &kind, &value)),
        ],
        (None, false) => vec![
            change(ChangeAction::Create, set),
            change(ChangeAction::Create, companion(&fqdn, &kind, &value)),
        ],
    };
    write(p, ctx, &address, zone_id, changes).await?;
    Ok(observed(address, zone_id, &fqdn, desired.resource.clone()))
}

fn observed(address: Address, zone_id: &str, fqdn: &str, resource: Resource) -> Observed {
    let kind = match &resource {
        Resource::Record(r) => r.record_type(),
        _ => "",
    };
    Observed::new(address, format!("{zone_id}/{fqdn}/{kind}"), resource)
        .with_attribute(attributes::FQDN, fqdn)
        .with_attribute(attributes::HTTPS_URL, format!("https://{fqdn}"))
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let Resource::Record(r) = &desired.resource else {
        return Err(ProviderError::Other(format!(
            "{address} is not a Route53 record"
        )));
    };
    let (zone_id, zone_name) = zone_of(ctx, &r.zone)?;
    let fqdn = full_name(&r.name, zone_name);
    // Discovery found our companion: the record is ours to change.
    let set = desired_set(ctx, &fqdn, r)?;
    write(
        p,
        ctx,
        &address,
        zone_id,
        vec![change(ChangeAction::Upsert, set)],
    )
    .await?;
    Ok(observed(address, zone_id, &fqdn, desired.resource.clone()))
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let mut parts = prior.physical_id.splitn(3, '/');
    let (Some(zone_id), Some(fqdn), Some(kind)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ProviderError::Other(format!(
            "{}: `{}` is not ZONE/NAME/TYPE",
            prior.address, prior.physical_id
        )));
    };
    let kind = RrType::from(kind);
    let companion_name = ownership_name(fqdn, kind.as_str());
    let sets = sets_at(p, zone_id, &[fqdn, &companion_name]).await?;
    let changes = owned_deletes(&sets, fqdn, &kind, ctx, &prior.address.to_string());
    write(p, ctx, &prior.address, zone_id, changes).await
}

/// `ZONE_ID/NAME/TYPE`, a record's physical id (the form `infra import` takes), in parts.
fn parse_id(address: &Address, id: &str) -> Result<(String, String, RrType), ProviderError> {
    let mut parts = id.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(zone), Some(name), Some(kind)) if !zone.is_empty() && !name.is_empty() => Ok((
            super::zone_id(zone),
            from_route53(name),
            RrType::from(kind.to_ascii_uppercase().as_str()),
        )),
        _ => Err(ProviderError::Other(format!(
            "{address}: `{id}` is not ZONE_ID/NAME/TYPE (e.g. Z0123456789/closet.example.com/A)"
        ))),
    }
}

/// A record someone else wrote, for `infra import`; `others` name the load balancers an alias
/// may point at.
pub(super) async fn read(
    p: &AwsProvider,
    address: &Address,
    id: &str,
    others: &[Observed],
) -> Result<Option<Observed>, ProviderError> {
    let (zone_id, fqdn, kind) = parse_id(address, id)?;
    let zone = p.route53.get_hosted_zone().id(&zone_id).send().await;
    let zone_name = match zone.map_err(|e| crate::support::api_error("route53:GetHostedZone", e)) {
        Ok(out) => out.hosted_zone().map(|z| from_route53(z.name())),
        Err(err) if crate::support::error_code(&err) == Some("NoSuchHostedZone") => None,
        Err(err) => return Err(err),
    };
    let Some(zone_name) = zone_name else {
        return Ok(None);
    };
    let sets = sets_at(p, &zone_id, &[&fqdn]).await?;
    Ok(find(&sets, &fqdn, &kind)
        .and_then(|set| to_model(set, &zone_id, &zone_name, &fqdn, others))
        .map(|record| observed(address.clone(), &zone_id, &fqdn, record.into())))
}

/// Take over an imported record: write its companion naming this stack (the record itself is
/// not changed). A companion naming another owner is refused.
pub(super) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    let address = &observed.address;
    let (zone_id, fqdn, kind) = parse_id(address, &observed.physical_id)?;
    let companion_name = ownership_name(&fqdn, kind.as_str());
    let sets = sets_at(p, &zone_id, &[&companion_name]).await?;
    let value = ownership_value(ctx.stack, ctx.region, &address.to_string());
    if let Some(existing) = find(&sets, &companion_name, &RrType::Txt) {
        let text = existing
            .resource_records()
            .first()
            .map_or("", |r| r.value().trim_matches('"'));
        if text == value {
            return Ok(());
        }
        return Err(ProviderError::Other(format!(
            "{address}: `{fqdn}` {} is already claimed by `{companion_name}` (\"{text}\"); \
             infra takes over a record only when no other owner names it",
            kind.as_str()
        )));
    }
    let create = change(ChangeAction::Create, companion(&fqdn, &kind, &value));
    write(p, ctx, address, &zone_id, vec![create]).await
}

/// DELETEs, with the exact current values, of the record of `kind` at `fqdn` and its companion,
/// when the companion names `owner` in this stack; nothing otherwise.
fn owned_deletes(
    sets: &[ResourceRecordSet],
    fqdn: &str,
    kind: &RrType,
    ctx: &Context<'_>,
    owner_address: &str,
) -> Vec<route53::types::Change> {
    let companion_name = ownership_name(fqdn, kind.as_str());
    let Some(companion) = find(sets, &companion_name, &RrType::Txt)
        .filter(|s| owner(s, ctx.stack, ctx.region).as_deref() == Some(owner_address))
    else {
        return Vec::new();
    };
    let mut changes = vec![change(ChangeAction::Delete, companion.clone())];
    if let Some(record) = find(sets, fqdn, kind) {
        changes.push(change(ChangeAction::Delete, record.clone()));
    }
    changes
}

/// Write a certificate's DNS validation CNAMEs (`(name, value)` as ACM gives them) into `zone`
/// with companions naming the certificate, in one batch, and wait until they are served. A
/// name already holding the same CNAME without our companion is left as it is (it validates
/// the certificate all the same); one holding another value is refused.
pub(crate) async fn write_validation(
    p: &AwsProvider,
    ctx: &Context<'_>,
    owner_address: &Address,
    zone: &Ref<HostedZone>,
    records: &[(String, String)],
) -> Result<(), ProviderError> {
    let (zone_id, zone_name) = zone_of(ctx, zone)?;
    let value = ownership_value(ctx.stack, ctx.region, &owner_address.to_string());
    let mut changes = Vec::new();
    for (name, target) in records {
        let fqdn = from_route53(name);
        let companion_name = ownership_name(&fqdn, "CNAME");
        let sets = sets_at(p, zone_id, &[&fqdn, &companion_name]).await?;
        let mine = find(&sets, &companion_name, &RrType::Txt)
            .and_then(|s| owner(s, ctx.stack, ctx.region))
            .is_some();
        let current = find(&sets, &fqdn, &RrType::Cname);
        let same = current.is_some_and(|s| {
            s.resource_records().first().map(|r| r.value()) == Some(target.as_str())
        });
        let action = match (current, mine) {
            (Some(_), false) if same => continue,
            (Some(_), false) => {
                return Err(foreign(owner_address, &fqdn, &RrType::Cname, zone_name))
            }
            (_, true) => ChangeAction::Upsert,
            (None, false) => ChangeAction::Create,
        };
        let set = plain_set(
            name,
            RrType::Cname,
            COMPANION_TTL,
            std::slice::from_ref(target),
        );
        changes.push(change(action.clone(), set));
        changes.push(change(action, companion(&fqdn, &RrType::Cname, &value)));
    }
    write(p, ctx, owner_address, zone_id, changes).await
}

/// Whether `sets` hold every validation CNAME of `wanted` (`NAME CNAME VALUE` lines, as the
/// certificate's `validation_records` attribute): true when ACM has published none yet.
pub(super) fn validation_served(sets: &[ResourceRecordSet], wanted: &str) -> bool {
    wanted.lines().all(|line| {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(_), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return true;
        };
        find(sets, &from_route53(name), &RrType::Cname).is_some_and(|s| {
            s.resource_records()
                .iter()
                .any(|r| from_route53(r.value()) == from_route53(value))
        })
    })
}

/// Delete every record of `zone_id` whose companion names `owner_address` (one listing pass).
pub(crate) async fn remove_owned(
    p: &AwsProvider,
    ctx: &Context<'_>,
    owner_address: &Address,
    zone_id: &str,
) -> Result<(), ProviderError> {
    let sets = super::list_record_sets(p, zone_id).await?;
    let owner_text = owner_address.to_string();
    let changes = stack_deletes(&sets, ctx, |owner| owner == owner_text);
    write(p, ctx, owner_address, zone_id, changes).await
}

/// DELETEs of every record in `sets` whose companion names this stack and an owner for which
/// `owned` holds, with their companions.
pub(super) fn stack_deletes(
    sets: &[ResourceRecordSet],
    ctx: &Context<'_>,
    owned: impl Fn(&str) -> bool,
) -> Vec<route53::types::Change> {
    let mut changes = Vec::new();
    for s in sets {
        let Some(owner) = owner(s, ctx.stack, ctx.region).filter(|o| owned(o)) else {
            continue;
        };
        let name = from_route53(s.name());
        let Some((kind, fqdn)) = name
            .strip_prefix("_infra-")
            .and_then(|rest| rest.split_once('.'))
        else {
            continue;
        };
        let kind = RrType::from(kind.to_ascii_uppercase().as_str());
        changes.extend(owned_deletes(sets, fqdn, &kind, ctx, &owner));
    }
    changes
}

/// The records of one zone that this stack's companions name as `route53_record`s.
pub(super) fn observe_zone(
    stack: &Stack,
    zone_id: &str,
    zone_name: &str,
    sets: &[ResourceRecordSet],
    others: &[Observed],
) -> Vec<Observed> {
    let mut out = Vec::new();
    for s in sets {
        let Some(owner) = owner(s, &stack.name, &stack.region) else {
            continue;
        };
        let Ok(address) = owner.parse::<Address>() else {
            continue;
        };
        let name = from_route53(s.name());
        let Some((kind, fqdn)) = name
            .strip_prefix("_infra-")
            .and_then(|rest| rest.split_once('.'))
        else {
            continue;
        };
        let kind = RrType::from(kind.to_ascii_uppercase().as_str());
        if address.kind != Kind::Record {
            continue;
        }
        if let Some(record) =
            find(sets, fqdn, &kind).and_then(|r| to_model(r, zone_id, zone_name, fqdn, others))
        {
            out.push(observed(address, zone_id, fqdn, record.into()));
        }
    }
    out
}

/// A record set in model form; an alias names the load balancer by its physical id (ARN) when
/// the stack has one with that DNS name, else by the DNS name (which shows as a difference).
fn to_model(
    set: &ResourceRecordSet,
    zone_id: &str,
    zone_name: &str,
    fqdn: &str,
    others: &[Observed],
) -> Option<Record> {
    let name = fqdn
        .strip_suffix(zone_name)
        .map(|n| n.trim_end_matches('.').to_string())?;
    let values: Vec<String> = set
        .resource_records()
        .iter()
        .map(|r| r.value().to_string())
        .collect();
    let ttl = u32::try_from(set.ttl().unwrap_or_default()).unwrap_or_default();
    let data = match (set.r#type(), set.alias_target()) {
        (RrType::A | RrType::Aaaa, Some(alias)) => {
            let dns = from_route53(alias.dns_name());
            let dns = dns.strip_prefix("dualstack.").unwrap_or(&dns);
            let lb = others
                .iter()
                .find(|o| {
                    o.attributes
                        .get(attributes::DNS_NAME)
                        .is_some_and(|d| d.eq_ignore_ascii_case(dns))
                })
                .map_or_else(|| dns.to_string(), |o| o.physical_id.clone());
            RecordData::Alias {
                load_balancer: Ref::from_id(lb),
                ipv6: set.r#type() == &RrType::Aaaa,
            }
        }
        (RrType::Cname, None) => RecordData::Cname {
            target: from_route53(values.first()?),
            ttl,
        },
        (RrType::Txt, None) => RecordData::Txt {
            values: values
                .iter()
                .map(|v| v.trim_matches('"').to_string())
                .collect(),
            ttl,
        },
        _ => return None,
    };
    Some(Record {
        zone: Ref::from_id(zone_id),
        name,
        data,
    })
}
