//! S3 buckets: public access block, default encryption, versioning, ownership tags.

mod bucket;
mod lifecycle;
mod logging;
mod policy;

use std::collections::HashSet;

use futures::future::try_join_all;
use infra_core::model::{Bucket, Declared, Resource};
use infra_core::provider::{Context, DeleteOptions};
use infra_core::{Address, Observed, ProviderError, Stack};

use crate::support::{api_error, error_code, is_not_found, owned_id};
use crate::AwsProvider;

pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let declared: Vec<(&str, &Bucket)> = stack
        .resources
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::Bucket(b) => Some((d.id.as_str(), b)),
            _ => None,
        })
        .collect();
    let names: HashSet<&str> = declared.iter().map(|(_, b)| b.name.as_str()).collect();
    // Buckets the stack still declares: found by their deterministic names.
    let by_name = try_join_all(
        declared
            .iter()
            .map(|(id, b)| observe_declared(p, stack, id, b)),
    );
    // Buckets the stack no longer declares but still owns: ListBuckets, then the tags of every
    // other bucket in the region (S3 has no tag filter; one GetBucketTagging per bucket).
    let leftovers = async {
        let listed =
            p.s3.list_buckets()
                .bucket_region(&stack.region)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| api_error("s3:ListBuckets", e))?;
        let others: Vec<String> = listed
            .iter()
            .flat_map(|page| page.buckets())
            .filter_map(|b| b.name())
            .filter(|n| !names.contains(n))
            .map(str::to_string)
            .collect();
        let found =
            try_join_all(others.iter().map(|name| observe_undeclared(p, stack, name))).await?;
        Ok::<_, ProviderError>(found.into_iter().flatten().collect::<Vec<_>>())
    };
    let (by_name, leftovers) = futures::try_join!(by_name, leftovers)?;
    Ok(by_name.into_iter().flatten().chain(leftovers).collect())
}

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    bucket::create(p, ctx, desired).await
}

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    bucket::update(p, ctx, desired, prior, changed).await
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
    options: DeleteOptions,
) -> Result<(), ProviderError> {
    bucket::delete(p, ctx, prior, options).await
}

pub(crate) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    bucket::read(p, stack, address, physical_id).await
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    bucket::adopt(p, ctx, observed).await
}

/// The bucket's tags: `Ok(None)` when the bucket does not exist, `Ok(Some(None))` when it has no
/// tags, and also `Ok(None)` when it is not ours to read (another account, another region).
async fn bucket_tags(
    p: &AwsProvider,
    name: &str,
) -> Result<Option<Option<Vec<(String, String)>>>, ProviderError> {
    match p
        .s3
        .get_bucket_tagging()
        .bucket(name)
        .send()
        .await
        .map_err(|e| api_error("s3:GetBucketTagging", e))
    {
        Ok(out) => Ok(Some(Some(
            out.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        ))),
        Err(err) if error_code(&err) == Some("NoSuchTagSet") => Ok(Some(None)),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err)
            if matches!(
                error_code(&err),
                Some("AccessDenied" | "PermanentRedirect" | "AuthorizationHeaderMalformed")
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// A bucket the stack declares, if it exists and is ours. A bucket with the declared name but
/// no tags at all is taken as ours: infra creates the bucket and tags it in a second call, so
/// that is what a crash in between leaves (bucket names are global, and this one is in our
/// account). A bucket tagged for another stack is not ours.
async fn observe_declared(
    p: &AwsProvider,
    stack: &Stack,
    id: &str,
    bucket: &Bucket,
) -> Result<Option<Observed>, ProviderError> {
    let name = bucket.name.as_str();
    let (tags, state) = futures::join!(
        bucket_tags(p, name),
        bucket::read_state(p, name, &stack.region, &bucket.policy)
    );
    let owner = match tags? {
        None => return Ok(None),
        Some(None) => Some(id.to_string()),
        Some(Some(tags)) => owned_id(
            &stack.name,
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ),
    };
    let Some(owner) = owner else {
        return Ok(None);
    };
    match state {
        Ok(state) => Ok(Some(bucket::observe(
            &owner,
            name,
            state,
            bucket.force_destroy,
        ))),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

/// A bucket the stack does not declare: ours only when tagged for the stack.
async fn observe_undeclared(
    p: &AwsProvider,
    stack: &Stack,
    name: &str,
) -> Result<Option<Observed>, ProviderError> {
    let Some(Some(tags)) = bucket_tags(p, name).await? else {
        return Ok(None);
    };
    let Some(id) = owned_id(
        &stack.name,
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) else {
        return Ok(None);
    };
    match bucket::read_state(p, name, &stack.region, &[]).await {
        Ok(state) => Ok(Some(bucket::observe(&id, name, state, false))),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}
