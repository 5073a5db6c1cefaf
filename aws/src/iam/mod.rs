//! IAM: roles with their instance profile, managed-policy attachments and inline policy.
//!
//! IAM is global: a stack's roles live under the path `/infra/{region}/{stack}/` and are named
//! `{stack}-{region}-{id}`. Discovery is one paginated GetAccountAuthorizationDetails (roles
//! only): unlike ListRoles it carries each role's tags, inline policies, attached policies and
//! instance profiles, so no call is made per role.

mod document;
mod role;

use aws_sdk_iam::types::EntityType;
use infra_core::model::{role_path, Declared};
use infra_core::provider::{Context, DeleteOptions};
use infra_core::{Address, Observed, ProviderError, Stack};

use crate::support::{api_error, owned_id};
use crate::AwsProvider;

pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let path = role_path(&stack.name, &stack.region);
    let pages: Vec<_> = p
        .iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("iam:GetAccountAuthorizationDetails", e))?;
    let mut out = Vec::new();
    for detail in pages.iter().flat_map(|page| page.role_detail_list()) {
        if detail.path() != Some(path.as_str()) {
            continue;
        }
        let tags = detail.tags().iter().map(|t| (t.key(), t.value()));
        if let Some(id) = owned_id(&stack.name, tags) {
            out.push(role::observe(&id, detail)?);
        }
    }
    Ok(out)
}

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    role::create(p, ctx, desired).await
}

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    role::update(p, ctx, desired, prior, changed).await
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
    _options: DeleteOptions,
) -> Result<(), ProviderError> {
    role::delete(p, ctx, prior).await
}

pub(crate) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    role::read(p, stack, address, physical_id).await
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    role::adopt(p, ctx, observed).await
}
