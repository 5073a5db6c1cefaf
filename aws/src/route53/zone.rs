//! Hosted zones: an existing one looked up by name, or one the stack creates.
//!
//! CreateHostedZone has no tags; its CallerReference is the owner's mark instead:
//! `infra/{region}/{stack}/{id}`, so a create retried after a lost answer gets
//! HostedZoneAlreadyExists (AWS; moto 5.2 makes a second zone) and finds the zone rather than
//! making another. Route53 refuses a reference it has seen before, even of a deleted zone: a
//! zone made again after a destroy takes the next free `#N` suffix. Ownership tags are added
//! with ChangeTagsForResource, for people reading the console.

use aws_sdk_route53 as route53;
use infra_core::model::{HostedZone, Resource};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};
use route53::types::{Change, HostedZoneConfig, ResourceRecordSet, RrType, Tag, TagResourceType};

use super::{from_route53, list_record_sets, record, wait_insync, write, zone_id};
use crate::support::{api_error, error_code, ownership_tags};
use crate::AwsProvider;

/// How many zones of one logical id may be made over the stack's life.
const REFERENCE_SUFFIXES: usize = 100;

fn reference_prefix(region: &str, stack: &str) -> String {
    format!("infra/{region}/{stack}/")
}

/// The logical id a CallerReference names for this stack, if it does.
fn owner_of(reference: &str, region: &str, stack: &str) -> Option<String> {
    let rest = reference.strip_prefix(&reference_prefix(region, stack))?;
    Some(rest.split('#').next().unwrap_or(rest).to_string())
}

/// The stack's zones from one paginated ListHostedZones pass: those it made (by
/// CallerReference) and the existing ones it names. Their name servers come from the apex NS
/// record of the zone's record listing ([`name_servers`]), not from a GetHostedZone each.
pub(super) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let zones: Vec<route53::types::HostedZone> = p
        .route53
        .list_hosted_zones()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("route53:ListHostedZones", e))?;
    let mut out = Vec::new();
    for z in &zones {
        if let Some(id) = owner_of(z.caller_reference(), &stack.region, &stack.name) {
            let model = HostedZone::new(from_route53(z.name()));
            out.push(Observed::new(
                Address::new(Kind::HostedZone, id),
                zone_id(z.id()),
                model.into(),
            ));
        }
    }
    for d in &stack.resources {
        if let Resource::HostedZone(model @ HostedZone::Existing { name }) = &d.resource {
            if let Some(z) = zones.iter().find(|z| is_public_named(z, name)) {
                out.push(Observed::new(
                    d.address(),
                    zone_id(z.id()),
                    model.clone().into(),
                ));
            }
        }
    }
    Ok(out)
}

fn is_public_named(zone: &route53::types::HostedZone, name: &str) -> bool {
    from_route53(zone.name()) == name && !zone.config().is_some_and(|c| c.private_zone())
}

/// The name servers of a zone, one per line, from its apex NS record.
pub(super) fn name_servers(sets: &[ResourceRecordSet], zone_name: &str) -> String {
    sets.iter()
        .find(|s| s.r#type() == &RrType::Ns && from_route53(s.name()) == zone_name)
        .map(|s| {
            s.resource_records()
                .iter()
                .map(|r| r.value().trim_end_matches('.').to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The public zone named `name` (ListHostedZonesByName lists from that name on, in order).
async fn by_name(p: &AwsProvider, name: &str) -> Result<Option<String>, ProviderError> {
    let out = p
        .route53
        .list_hosted_zones_by_name()
        .dns_name(name)
        .send()
        .await
        .map_err(|e| api_error("route53:ListHostedZonesByName", e))?;
    Ok(out
        .hosted_zones()
        .iter()
        .find(|z| is_public_named(z, name))
        .map(|z| zone_id(z.id())))
}

/// A zone with its name servers (GetHostedZone: the listings do not carry them).
async fn observe(
    p: &AwsProvider,
    address: Address,
    model: HostedZone,
    id: &str,
) -> Result<Observed, ProviderError> {
    let id = zone_id(id);
    let out = p
        .route53
        .get_hosted_zone()
        .id(&id)
        .send()
        .await
        .map_err(|e| api_error("route53:GetHostedZone", e))?;
    let servers = out
        .delegation_set()
        .map(|d| d.name_servers().join("\n"))
        .unwrap_or_default();
    Ok(Observed::new(address, id, model.into()).with_attribute(attributes::NAME_SERVERS, servers))
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    model: &HostedZone,
) -> Result<Observed, ProviderError> {
    let name = model.name();
    if let HostedZone::Existing { .. } = model {
        return match by_name(p, name).await? {
            Some(id) => observe(p, address.clone(), model.clone(), &id).await,
            None => Err(ProviderError::Other(format!(
                "{address}: there is no public hosted zone `{name}` in this account; create it \
                 (and delegate the domain to its name servers) or declare HostedZone::new(\"{name}\")"
            ))),
        };
    }
    let base = format!("{}{}", reference_prefix(ctx.region, ctx.stack), address.id);
    for n in 0..REFERENCE_SUFFIXES {
        let reference = if n == 0 {
            base.clone()
        } else {
            format!("{base}#{n}")
        };
        if let Some(id) = by_reference(p, name, &reference).await? {
            return finish(p, ctx, address, model, &id, None).await;
        }
        let sent = p
            .route53
            .create_hosted_zone()
            .name(name)
            .caller_reference(&reference)
            .hosted_zone_config(
                HostedZoneConfig::builder()
                    .comment(format!("infra stack {}", ctx.stack))
                    .private_zone(false)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| api_error("route53:CreateHostedZone", e));
        match sent {
            Ok(out) => {
                let id = out
                    .hosted_zone()
                    .map(|z| z.id().to_string())
                    .unwrap_or_default();
                let change = out.change_info().map(|c| c.id().to_string());
                return finish(p, ctx, address, model, &id, change).await;
            }
            // Made by a lost earlier attempt (found on the next turn), or a deleted zone's.
            Err(err) if error_code(&err) == Some("HostedZoneAlreadyExists") => {
                if let Some(id) = by_reference(p, name, &reference).await? {
                    return finish(p, ctx, address, model, &id, None).await;
                }
            }
            Err(err) => return Err(err),
        }
    }
    Err(ProviderError::Other(format!(
        "{address}: every CallerReference `{base}#N` is used; rename the zone's logical id"
    )))
}

/// The zone named `name` made with `reference`.
async fn by_reference(
    p: &AwsProvider,
    name: &str,
    reference: &str,
) -> Result<Option<String>, ProviderError> {
    let out = p
        .route53
        .list_hosted_zones_by_name()
        .dns_name(name)
        .send()
        .await
        .map_err(|e| api_error("route53:ListHostedZonesByName", e))?;
    Ok(out
        .hosted_zones()
        .iter()
        .find(|z| from_route53(z.name()) == name && z.caller_reference() == reference)
        .map(|z| zone_id(z.id())))
}

/// Tag a new zone, wait until its creation is INSYNC, and report it.
async fn finish(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    model: &HostedZone,
    id: &str,
    change: Option<String>,
) -> Result<Observed, ProviderError> {
    let id = zone_id(id);
    let tags = ownership_tags(ctx.stack, &address.id)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    p.route53
        .change_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(&id)
        .set_add_tags(Some(tags))
        .send()
        .await
        .map_err(|e| api_error("route53:ChangeTagsForResource", e))?;
    if let Some(change) = change {
        wait_insync(p, ctx, address, &change).await?;
    }
    observe(p, address.clone(), model.clone(), &id).await
}

/// Delete a zone the stack made, with the records this stack left in it (their companions name
/// it: validation records of a certificate deleted by hand, say), once it holds nothing else
/// but its own SOA and NS records; any other record is reported and nothing deleted.
pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let address = &prior.address;
    let Resource::HostedZone(model) = &prior.resource else {
        return Ok(());
    };
    let sets = match list_record_sets(p, &prior.physical_id).await {
        Err(err) if error_code(&err) == Some("NoSuchHostedZone") => return Ok(()),
        other => other?,
    };
    let ours = record::stack_deletes(&sets, ctx, |_| true);
    let left = foreign_records(&sets, model.name(), &ours);
    if !left.is_empty() {
        return Err(ProviderError::Other(format!(
            "{address}: zone `{}` ({}) still holds records infra did not create:\n{}\n\
             infra never deletes what it did not write: move or delete them, then destroy again",
            model.name(),
            prior.physical_id,
            left.join("\n")
        )));
    }
    write(p, ctx, address, &prior.physical_id, ours).await?;
    let out = p
        .route53
        .delete_hosted_zone()
        .id(&prior.physical_id)
        .send()
        .await
        .map_err(|e| api_error("route53:DeleteHostedZone", e));
    match out {
        Err(err) if error_code(&err) == Some("NoSuchHostedZone") => Ok(()),
        Err(err) => Err(err),
        Ok(out) => match out.change_info() {
            Some(c) => wait_insync(p, ctx, address, c.id()).await,
            None => Ok(()),
        },
    }
}

/// `  NAME TYPE` of each record other than the apex SOA and NS and those `ours` deletes.
fn foreign_records(sets: &[ResourceRecordSet], zone_name: &str, ours: &[Change]) -> Vec<String> {
    let deleted = |s: &ResourceRecordSet| {
        ours.iter().any(|c| {
            c.resource_record_set()
                .is_some_and(|d| d.name() == s.name() && d.r#type() == s.r#type())
        })
    };
    sets.iter()
        .filter(|s| {
            let apex = from_route53(s.name()) == zone_name;
            let own = apex && matches!(s.r#type(), RrType::Soa | RrType::Ns);
            !(own || deleted(s))
        })
        .map(|s| format!("  {} {}", from_route53(s.name()), s.r#type().as_str()))
        .collect()
}
