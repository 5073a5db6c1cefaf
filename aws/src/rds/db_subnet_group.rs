//! RDS DB subnet groups: discovery by name prefix and tags, create, update, delete, read, and
//! the group in model form.

use aws_config::retry::RetryConfig;
use aws_sdk_rds::types::{DbSubnetGroup as AwsSubnetGroup, Tag};
use futures::future::try_join_all;
use infra_core::model::{DbSubnetGroup, Declared};
use infra_core::naming::physical_name;
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref, Stack};

use super::{tag_pairs, tags};
use crate::support::{api_error, create_once, is_not_found, owned_id, wait_for, Poll};
use crate::AwsProvider;

const MAX_SUBNET_GROUP_NAME: usize = 255;

/// The deterministic name of a subnet group (lowercase: RDS stores subnet group names so).
fn subnet_group_name(stack: &str, desired: &Declared) -> String {
    physical_name(stack, desired, MAX_SUBNET_GROUP_NAME)
}

fn subnet_ids(ctx: &Context<'_>, group: &DbSubnetGroup) -> Result<Vec<String>, ProviderError> {
    group
        .subnets
        .iter()
        .map(|s| ctx.resolved.physical_id(s).map(str::to_string))
        .collect()
}

/// Subnet groups carry no tags in DescribeDBSubnetGroups, and that call has no tag filter: list
/// them all (one paginated call), then read tags (one call each, concurrently) only for the
/// groups whose name starts with the stack's name, as every name infra gives them does.
pub(super) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let groups: Vec<AwsSubnetGroup> = p
        .rds
        .describe_db_subnet_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("rds:DescribeDBSubnetGroups", e))?;
    let prefix = name_prefix(&stack.name);
    let candidates = groups.iter().filter(|g| {
        g.db_subnet_group_name()
            .is_some_and(|n| n.starts_with(&prefix))
    });
    let owned = try_join_all(candidates.map(|g| async move {
        let arn = g.db_subnet_group_arn().unwrap_or_default();
        let tags = list_tags(p, arn).await?;
        Ok::<_, ProviderError>(owned_id(&stack.name, tag_pairs(&tags)).map(|id| (id, g)))
    }))
    .await?;
    Ok(owned
        .into_iter()
        .flatten()
        .map(|(id, g)| observe_subnet_group(&id, g))
        .collect())
}

/// `{stack}-`, the start of every physical name in the stack (read off a name the naming scheme
/// gives, so it follows the scheme's character rules).
fn name_prefix(stack: &str) -> String {
    let probe = Declared {
        id: "x".into(),
        resource: DbSubnetGroup::new("", &[]).into(),
    };
    let name = physical_name(stack, &probe, MAX_SUBNET_GROUP_NAME);
    match name.rsplitn(3, '-').nth(2) {
        Some(stack_part) => format!("{stack_part}-"),
        None => String::new(),
    }
}

async fn list_tags(p: &AwsProvider, arn: &str) -> Result<Vec<Tag>, ProviderError> {
    let out = p
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| api_error("rds:ListTagsForResource", e))?;
    Ok(out.tag_list().to_vec())
}

pub(super) async fn describe_subnet_group(
    p: &AwsProvider,
    name: &str,
) -> Result<AwsSubnetGroup, ProviderError> {
    let out = p
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
        .map_err(|e| api_error("rds:DescribeDBSubnetGroups", e))?;
    out.db_subnet_groups()
        .first()
        .cloned()
        .ok_or_else(|| ProviderError::Api {
            operation: "rds:DescribeDBSubnetGroups".into(),
            code: "DBSubnetGroupNotFoundFault".into(),
            message: format!("no DB subnet group named {name}"),
        })
}

fn observe_subnet_group(id: &str, group: &AwsSubnetGroup) -> Observed {
    let mut subnets: Vec<Ref<_>> = group
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier())
        .map(Ref::from_id)
        .collect();
    subnets.sort();
    let resource = DbSubnetGroup {
        description: group
            .db_subnet_group_description()
            .unwrap_or_default()
            .to_string(),
        subnets,
    };
    let name = group.db_subnet_group_name().unwrap_or_default();
    let mut observed = Observed::new(Address::new(Kind::DbSubnetGroup, id), name, resource.into());
    if let Some(arn) = group.db_subnet_group_arn() {
        observed = observed.with_attribute(attributes::ARN, arn);
    }
    observed
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    group: &DbSubnetGroup,
) -> Result<Observed, ProviderError> {
    let name = subnet_group_name(ctx.stack, desired);
    let subnets = subnet_ids(ctx, group)?;
    tracing::debug!(subnet_group = %name, "creating DB subnet group");
    // No client token: a group with this name already tagged for this stack and id is ours.
    let found = create_once(
        p.options.max_attempts,
        || async {
            match describe_subnet_group(p, &name).await {
                Ok(g) => {
                    let tags = list_tags(p, g.db_subnet_group_arn().unwrap_or_default()).await?;
                    let ours = owned_id(ctx.stack, tag_pairs(&tags)).as_deref()
                        == Some(desired.id.as_str());
                    Ok(ours.then_some(g))
                }
                Err(err) if is_not_found(&err) => Ok(None),
                Err(err) => Err(err),
            }
        },
        || async {
            let out = p
                .rds
                .create_db_subnet_group()
                .db_subnet_group_name(&name)
                .db_subnet_group_description(&group.description)
                .set_subnet_ids(Some(subnets.clone()))
                .set_tags(Some(tags(ctx.stack, &desired.id)))
                .customize()
                .config_override(
                    aws_sdk_rds::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await
                .map_err(|e| api_error("rds:CreateDBSubnetGroup", e))?;
            out.db_subnet_group().cloned().ok_or_else(|| {
                ProviderError::Other(format!(
                    "rds:CreateDBSubnetGroup returned no group for {name}"
                ))
            })
        },
    )
    .await?;
    Ok(observe_subnet_group(&desired.id, &found))
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    group: &DbSubnetGroup,
    prior: &Observed,
) -> Result<Observed, ProviderError> {
    let out = p
        .rds
        .modify_db_subnet_group()
        .db_subnet_group_name(&prior.physical_id)
        .db_subnet_group_description(&group.description)
        .set_subnet_ids(Some(subnet_ids(ctx, group)?))
        .send()
        .await
        .map_err(|e| api_error("rds:ModifyDBSubnetGroup", e))?;
    let found = match out.db_subnet_group() {
        Some(found) => found.clone(),
        None => describe_subnet_group(p, &prior.physical_id).await?,
    };
    Ok(observe_subnet_group(&desired.id, &found))
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let name = prior.physical_id.as_str();
    let deleted = p
        .rds
        .delete_db_subnet_group()
        .db_subnet_group_name(name)
        .send()
        .await
        .map_err(|e| api_error("rds:DeleteDBSubnetGroup", e));
    match deleted {
        Ok(_) => {}
        Err(err) if is_not_found(&err) => return Ok(()),
        Err(err) => return Err(err),
    }
    wait_for(
        ctx.progress,
        &prior.address,
        "deleted",
        p.options.wait_timeout,
        || async {
            match describe_subnet_group(p, name).await {
                Ok(g) => Ok(Poll::Pending(
                    g.subnet_group_status().unwrap_or("deleting").to_string(),
                )),
                Err(err) if is_not_found(&err) => Ok(Poll::Ready(())),
                Err(err) => Err(err),
            }
        },
    )
    .await
}

pub(super) async fn read(
    p: &AwsProvider,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    match describe_subnet_group(p, physical_id).await {
        Ok(group) => Ok(Some(observe_subnet_group(&address.id, &group))),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}
