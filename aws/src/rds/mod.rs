//! RDS: DB subnet groups and DB instances.

mod db_instance;
mod db_subnet_group;

use aws_sdk_rds::types::Tag;
use infra_core::model::{Declared, Resource};
use infra_core::provider::{Context, DeleteOptions};
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use crate::support::{api_error, ownership_tags};
use crate::AwsProvider;

pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let (groups, instances) = futures::try_join!(
        db_subnet_group::discover(p, stack),
        db_instance::discover(p, stack)
    )?;
    Ok([groups, instances].concat())
}

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    match &desired.resource {
        Resource::DbSubnetGroup(group) => db_subnet_group::create(p, ctx, desired, group).await,
        Resource::DbInstance(db) => db_instance::create(p, ctx, desired, db).await,
        other => Err(not_rds(&desired.address(), other.kind())),
    }
}

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    match &desired.resource {
        Resource::DbSubnetGroup(group) => {
            db_subnet_group::update(p, ctx, desired, group, prior).await
        }
        Resource::DbInstance(db) => db_instance::update(p, ctx, desired, db, prior, changed).await,
        other => Err(not_rds(&desired.address(), other.kind())),
    }
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
    options: DeleteOptions,
) -> Result<(), ProviderError> {
    match prior.address.kind {
        Kind::DbSubnetGroup => db_subnet_group::delete(p, ctx, prior).await,
        Kind::DbInstance => db_instance::delete(p, ctx, prior, options).await,
        other => Err(not_rds(&prior.address, other)),
    }
}

pub(crate) async fn wait_ready(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<Observed, ProviderError> {
    match observed.address.kind {
        Kind::DbInstance => db_instance::wait_ready(p, ctx, observed).await,
        _ => Ok(observed.clone()),
    }
}

pub(crate) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    match address.kind {
        Kind::DbSubnetGroup => db_subnet_group::read(p, address, physical_id).await,
        Kind::DbInstance => db_instance::read(p, stack, address, physical_id).await,
        other => Err(not_rds(address, other)),
    }
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    let arn = match observed.attributes.get(attributes::ARN) {
        Some(arn) => arn.clone(),
        None => match observed.address.kind {
            Kind::DbSubnetGroup => db_subnet_group::describe_subnet_group(p, &observed.physical_id)
                .await?
                .db_subnet_group_arn()
                .unwrap_or_default()
                .to_string(),
            _ => db_instance::describe_instance(p, &observed.physical_id)
                .await?
                .db_instance_arn()
                .unwrap_or_default()
                .to_string(),
        },
    };
    p.rds
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(tags(ctx.stack, &observed.address.id)))
        .send()
        .await
        .map_err(|e| api_error("rds:AddTagsToResource", e))?;
    Ok(())
}

fn not_rds(address: &Address, kind: Kind) -> ProviderError {
    ProviderError::Other(format!(
        "{address} is a {kind}; the rds module serves rds_db_subnet_group and rds_db_instance"
    ))
}

fn tags(stack: &str, id: &str) -> Vec<Tag> {
    ownership_tags(stack, id)
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}
