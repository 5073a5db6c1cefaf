//! Auto Scaling Groups and their CPU target-tracking policy.

mod group;
mod refresh;
mod scaling_policy;

use aws_sdk_autoscaling::types::{AutoScalingGroup as AwsGroup, Filter};
use infra_core::model::Declared;
use infra_core::provider::{Context, TAG_STACK};
use infra_core::{Address, Observed, ProviderError, Stack};

use crate::support::{api_error, owned_id};
use crate::AwsProvider;

pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let groups: Vec<AwsGroup> = p
        .asg
        .describe_auto_scaling_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_STACK}"))
                .values(&stack.name)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("autoscaling:DescribeAutoScalingGroups", e))?;
    let owned: Vec<(String, AwsGroup)> = groups
        .into_iter()
        .filter_map(|g| owned_id(&stack.name, tag_pairs(&g)).map(|id| (id, g)))
        .collect();
    if owned.is_empty() {
        return Ok(Vec::new());
    }
    let policies = scaling_policy::cpu_policies(p).await?;
    Ok(owned
        .iter()
        .map(|(id, g)| group::observe(id, g, &policies))
        .collect())
}

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    group::create(p, ctx, desired).await
}

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    group::update(p, ctx, desired, prior, changed).await
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    group::delete(p, ctx, prior).await
}

pub(crate) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    group::read(p, stack, address, physical_id).await
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    group::adopt(p, ctx, observed).await
}

fn tag_pairs(group: &AwsGroup) -> impl Iterator<Item = (&str, &str)> {
    group
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}
