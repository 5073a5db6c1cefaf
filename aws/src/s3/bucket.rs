//! The S3 bucket: create, update, delete (emptying it when allowed), read, adopt, and what S3
//! reports about it, read one sub-resource per call.

use std::time::Duration;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use aws_smithy_types::error::operation::BuildError;
use infra_core::model::{
    AccessLogging, Bucket, BucketEncryption, Declared, Lifecycle, PolicyStatement,
    PublicAccessBlock, Resource,
};
use infra_core::provider::{Context, DeleteOptions, TAG_STACK};
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use super::{bucket_tags, lifecycle, logging, policy};
use crate::support::{
    api_error, error_code, is_not_found, ownership_tags, retry_while, wait_for, Poll,
};
use crate::AwsProvider;

/// DeleteObjects takes at most this many keys.
const DELETE_BATCH: usize = 1000;

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let bucket = as_bucket(desired)?;
    let address = desired.address();
    let name = bucket.name.as_str();
    let mut request = p.s3.create_bucket().bucket(name);
    if ctx.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(ctx.region))
                .build(),
        );
    }
    tracing::debug!(bucket = %name, "creating bucket");
    match request
        .send()
        .await
        .map_err(|e| api_error("s3:CreateBucket", e))
    {
        Ok(_) => {}
        // Ours already: an earlier apply stopped before tagging it, or a lost response.
        Err(err) if error_code(&err) == Some("BucketAlreadyOwnedByYou") => {
            if let Some(Some(tags)) = bucket_tags(p, name).await? {
                let stack = tags
                    .iter()
                    .find(|(k, _)| k == TAG_STACK)
                    .map(|(_, v)| v.as_str());
                if stack.is_some_and(|s| s != ctx.stack) {
                    return Err(ProviderError::Other(format!(
                        "{address}: bucket `{name}` already exists in this account and belongs to stack `{}` \
                         (choose another bucket name)",
                        stack.unwrap_or_default()
                    )));
                }
            }
        }
        Err(err) => return Err(err),
    }
    // S3 cannot tag in CreateBucket. Discovery finds the bucket by its declared name, so a crash
    // before this call does not orphan it.
    let tag_set = ownership_tags(ctx.stack, &desired.id)
        .into_iter()
        .map(|(k, v)| built(&address, Tag::builder().key(k).value(v).build()))
        .collect::<Result<Vec<_>, _>>()?;
    p.s3.put_bucket_tagging()
        .bucket(name)
        .tagging(built(
            &address,
            Tagging::builder().set_tag_set(Some(tag_set)).build(),
        )?)
        .send()
        .await
        .map_err(|e| api_error("s3:PutBucketTagging", e))?;
    put_public_access_block(p, name, bucket.public_access_block).await?;
    put_encryption(p, &address, name, &bucket.encryption).await?;
    if bucket.versioning {
        put_versioning(p, name, true).await?;
    }
    if bucket.lifecycle.is_some() {
        lifecycle::put(p, &address, name, bucket.lifecycle.as_ref()).await?;
    }
    if !bucket.policy.is_empty() {
        put_policy(p, ctx, name, &bucket.policy).await?;
    }
    if bucket.access_logging.is_some() {
        put_logging(p, ctx, &address, name, bucket).await?;
    }
    let state = read_state(p, name, ctx.region, &bucket.policy).await?;
    Ok(observe(&desired.id, name, state, bucket.force_destroy))
}

/// Writes the policy of a bucket that something logs into, for its account and region.
async fn put_policy(
    p: &AwsProvider,
    ctx: &Context<'_>,
    name: &str,
    statements: &[PolicyStatement],
) -> Result<(), ProviderError> {
    let target = policy::Target {
        bucket: name,
        region: ctx.region,
        account: p.account_id().await?,
    };
    policy::put(p, &target, statements).await
}

/// Turns server access logging on (into the target's bucket name) or off.
async fn put_logging(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    name: &str,
    bucket: &Bucket,
) -> Result<(), ProviderError> {
    match &bucket.access_logging {
        Some(l) => {
            let target = ctx.resolved.physical_id(&l.target)?;
            logging::put(p, address, name, Some((target, &l.prefix))).await
        }
        None => logging::put(p, address, name, None).await,
    }
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let bucket = as_bucket(desired)?;
    let address = desired.address();
    let name = prior.physical_id.as_str();
    let is_changed = |field: &str| changed.iter().any(|c| c == field);
    if is_changed("public_access_block") {
        put_public_access_block(p, name, bucket.public_access_block).await?;
    }
    if is_changed("encryption") {
        put_encryption(p, &address, name, &bucket.encryption).await?;
    }
    if is_changed("versioning") {
        put_versioning(p, name, bucket.versioning).await?;
    }
    if is_changed("lifecycle") {
        lifecycle::put(p, &address, name, bucket.lifecycle.as_ref()).await?;
    }
    // Only the policy of a bucket something logs into is read, so it is the only one that can
    // change: a bucket that no longer has writers keeps its policy (it may be someone else's).
    if is_changed("policy") {
        put_policy(p, ctx, name, &bucket.policy).await?;
    }
    if is_changed("access_logging") {
        put_logging(p, ctx, &address, name, bucket).await?;
    }
    let state = read_state(p, name, ctx.region, &bucket.policy).await?;
    Ok(observe(&desired.id, name, state, bucket.force_destroy))
}

/// How long destroy keeps emptying a bucket that log delivery still writes into.
const LATE_LOGS_WITHIN: Duration = Duration::from_secs(6 * 60);

fn is_not_empty(err: &ProviderError) -> bool {
    error_code(err) == Some("BucketNotEmpty")
}

async fn delete_bucket(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    tracing::debug!(bucket = %name, "deleting bucket");
    p.s3.delete_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(|e| api_error("s3:DeleteBucket", e))?;
    Ok(())
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
    options: DeleteOptions,
) -> Result<(), ProviderError> {
    let name = prior.physical_id.as_str();
    let deleted = if options.empty_bucket {
        // Log delivery writes into a log bucket after the writers are gone (ELB every 5
        // minutes): empty it again while DeleteBucket answers BucketNotEmpty.
        let backoff = (Duration::from_secs(5), Duration::from_secs(30));
        retry_while(
            LATE_LOGS_WITHIN,
            backoff,
            is_not_empty,
            "objects arrived after emptying",
            || async {
                empty(p, name).await?;
                delete_bucket(p, name).await
            },
        )
        .await
    } else {
        delete_bucket(p, name).await
    };
    match deleted {
        Ok(()) => {}
        Err(err) if is_not_found(&err) => return Ok(()),
        Err(err) if is_not_empty(&err) => {
            return Err(ProviderError::Other(format!(
                "{}: bucket `{name}` still holds objects or object versions; set `force_destroy` on it \
                 and allow data loss to empty and delete it",
                prior.address
            )))
        }
        Err(err) => return Err(err),
    }
    wait_for(
        ctx.progress,
        &prior.address,
        "deleted",
        p.options.wait_timeout,
        || async {
            match p
                .s3
                .head_bucket()
                .bucket(name)
                .send()
                .await
                .map_err(|e| api_error("s3:HeadBucket", e))
            {
                Ok(_) => Ok(Poll::Pending("still listed".to_string())),
                Err(err) if is_not_found(&err) => Ok(Poll::Ready(())),
                Err(err) => Err(err),
            }
        },
    )
    .await
}

pub(super) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let (force_destroy, policy) = match stack.get(address).map(|d| &d.resource) {
        Some(Resource::Bucket(b)) => (b.force_destroy, b.policy.as_slice()),
        _ => (false, [].as_slice()),
    };
    match read_state(p, physical_id, &stack.region, policy).await {
        Ok(state) => Ok(Some(observe(
            &address.id,
            physical_id,
            state,
            force_destroy,
        ))),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

pub(super) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    let name = observed.physical_id.as_str();
    // PutBucketTagging replaces the whole set: keep the tags the bucket already has.
    let mut tags = bucket_tags(p, name).await?.flatten().unwrap_or_default();
    let ours = ownership_tags(ctx.stack, &observed.address.id);
    tags.retain(|(k, _)| !ours.iter().any(|(key, _)| key == k));
    tags.extend(ours.into_iter().map(|(k, v)| (k.to_string(), v)));
    let tag_set = tags
        .into_iter()
        .map(|(k, v)| built(&observed.address, Tag::builder().key(k).value(v).build()))
        .collect::<Result<Vec<_>, _>>()?;
    p.s3.put_bucket_tagging()
        .bucket(name)
        .tagging(built(
            &observed.address,
            Tagging::builder().set_tag_set(Some(tag_set)).build(),
        )?)
        .send()
        .await
        .map_err(|e| api_error("s3:PutBucketTagging", e))?;
    Ok(())
}

fn as_bucket(desired: &Declared) -> Result<&Bucket, ProviderError> {
    match &desired.resource {
        Resource::Bucket(b) => Ok(b),
        other => Err(ProviderError::Other(format!(
            "{} is a {}, not an s3_bucket",
            desired.address(),
            other.kind()
        ))),
    }
}

pub(super) fn built<T>(
    address: &Address,
    result: Result<T, BuildError>,
) -> Result<T, ProviderError> {
    result.map_err(|e| ProviderError::Other(format!("{address}: cannot build the S3 request: {e}")))
}

/// What S3 reports about a bucket, besides its tags.
pub(super) struct BucketState {
    public_access_block: PublicAccessBlock,
    encryption: BucketEncryption,
    versioning: bool,
    holds_data: bool,
    lifecycle: Option<Lifecycle>,
    access_logging: Option<AccessLogging>,
    policy: Vec<PolicyStatement>,
}

/// Each sub-resource read in its own call, concurrently. The policy is read only when the
/// stack derives one (`declared_policy`, for a bucket something logs into): no other bucket's
/// policy is infra's.
pub(super) async fn read_state(
    p: &AwsProvider,
    name: &str,
    region: &str,
    declared_policy: &[PolicyStatement],
) -> Result<BucketState, ProviderError> {
    let (public_access_block, encryption, versioning, holds_data) = futures::try_join!(
        read_public_access_block(p, name),
        read_encryption(p, name),
        read_versioning(p, name),
        read_holds_data(p, name)
    )?;
    let (lifecycle, access_logging, policy) = futures::try_join!(
        lifecycle::read(p, name),
        logging::read(p, name),
        read_policy(p, name, region, declared_policy)
    )?;
    Ok(BucketState {
        public_access_block,
        encryption,
        versioning,
        holds_data,
        lifecycle,
        access_logging,
        policy,
    })
}

async fn read_policy(
    p: &AwsProvider,
    name: &str,
    region: &str,
    declared: &[PolicyStatement],
) -> Result<Vec<PolicyStatement>, ProviderError> {
    if declared.is_empty() {
        return Ok(Vec::new());
    }
    let Some(text) = policy::read(p, name).await? else {
        return Ok(Vec::new());
    };
    let target = policy::Target {
        bucket: name,
        region,
        account: p.account_id().await?,
    };
    Ok(target.parse(&text, declared))
}

async fn read_public_access_block(
    p: &AwsProvider,
    name: &str,
) -> Result<PublicAccessBlock, ProviderError> {
    match p
        .s3
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .map_err(|e| api_error("s3:GetPublicAccessBlock", e))
    {
        Ok(out) => {
            let c = out.public_access_block_configuration();
            let flag = |f: fn(&PublicAccessBlockConfiguration) -> Option<bool>| {
                c.and_then(f).unwrap_or(false)
            };
            Ok(PublicAccessBlock {
                block_public_acls: flag(PublicAccessBlockConfiguration::block_public_acls),
                ignore_public_acls: flag(PublicAccessBlockConfiguration::ignore_public_acls),
                block_public_policy: flag(PublicAccessBlockConfiguration::block_public_policy),
                restrict_public_buckets: flag(
                    PublicAccessBlockConfiguration::restrict_public_buckets,
                ),
            })
        }
        Err(err) if error_code(&err) == Some("NoSuchPublicAccessBlockConfiguration") => {
            Ok(PublicAccessBlock {
                block_public_acls: false,
                ignore_public_acls: false,
                block_public_policy: false,
                restrict_public_buckets: false,
            })
        }
        Err(err) => Err(err),
    }
}

async fn read_encryption(p: &AwsProvider, name: &str) -> Result<BucketEncryption, ProviderError> {
    match p
        .s3
        .get_bucket_encryption()
        .bucket(name)
        .send()
        .await
        .map_err(|e| api_error("s3:GetBucketEncryption", e))
    {
        Ok(out) => {
            let default = out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default());
            Ok(match default {
                None => BucketEncryption::None,
                Some(d) => match d.sse_algorithm() {
                    ServerSideEncryption::Aes256 => BucketEncryption::S3Managed,
                    _ => BucketEncryption::Kms {
                        key_id: d.kms_master_key_id().map(str::to_string),
                    },
                },
            })
        }
        Err(err) if error_code(&err) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            Ok(BucketEncryption::None)
        }
        Err(err) => Err(err),
    }
}

async fn read_versioning(p: &AwsProvider, name: &str) -> Result<bool, ProviderError> {
    match p.s3.get_bucket_versioning().bucket(name).send().await {
        // Never versioned (no status) and Suspended both read as "not versioned".
        Ok(out) => Ok(out.status() == Some(&BucketVersioningStatus::Enabled)),
        Err(err) => match err.raw_response().filter(|r| r.status().is_success()) {
            // moto 5.2 names the root element GetBucketVersioningResponse, which the SDK
            // rejects; the Status inside is the same.
            Some(raw) => Ok(raw
                .body()
                .bytes()
                .is_some_and(|b| String::from_utf8_lossy(b).contains("<Status>Enabled</Status>"))),
            None => Err(api_error("s3:GetBucketVersioning", err)),
        },
    }
}

/// Whether the bucket holds any object version or delete marker.
async fn read_holds_data(p: &AwsProvider, name: &str) -> Result<bool, ProviderError> {
    let out =
        p.s3.list_object_versions()
            .bucket(name)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| api_error("s3:ListObjectVersions", e))?;
    Ok(!out.versions().is_empty() || !out.delete_markers().is_empty())
}

pub(super) fn observe(id: &str, name: &str, state: BucketState, force_destroy: bool) -> Observed {
    let resource = Bucket {
        name: name.to_string(),
        public_access_block: state.public_access_block,
        encryption: state.encryption,
        versioning: state.versioning,
        force_destroy,
        lifecycle: state.lifecycle,
        access_logging: state.access_logging,
        policy: state.policy,
    };
    let mut observed = Observed::new(Address::new(Kind::Bucket, id), name, resource.into())
        .with_attribute(attributes::ARN, format!("arn:aws:s3:::{name}"));
    observed.holds_data = state.holds_data;
    observed
}

async fn put_public_access_block(
    p: &AwsProvider,
    name: &str,
    block: PublicAccessBlock,
) -> Result<(), ProviderError> {
    p.s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(block.block_public_acls)
                .ignore_public_acls(block.ignore_public_acls)
                .block_public_policy(block.block_public_policy)
                .restrict_public_buckets(block.restrict_public_buckets)
                .build(),
        )
        .send()
        .await
        .map_err(|e| api_error("s3:PutPublicAccessBlock", e))?;
    Ok(())
}

async fn put_encryption(
    p: &AwsProvider,
    address: &Address,
    name: &str,
    encryption: &BucketEncryption,
) -> Result<(), ProviderError> {
    let default = match encryption {
        BucketEncryption::S3Managed => {
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
        }
        BucketEncryption::Kms { key_id } => ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .set_kms_master_key_id(key_id.clone()),
        BucketEncryption::None => {
            p.s3.delete_bucket_encryption()
                .bucket(name)
                .send()
                .await
                .map_err(|e| api_error("s3:DeleteBucketEncryption", e))?;
            return Ok(());
        }
    };
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(built(address, default.build())?)
                .build(),
        )
        .build();
    p.s3.put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(built(address, config)?)
        .send()
        .await
        .map_err(|e| api_error("s3:PutBucketEncryption", e))?;
    Ok(())
}

/// A bucket that was ever versioned cannot become unversioned again, only Suspended.
async fn put_versioning(p: &AwsProvider, name: &str, on: bool) -> Result<(), ProviderError> {
    let status = if on {
        BucketVersioningStatus::Enabled
    } else {
        BucketVersioningStatus::Suspended
    };
    p.s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .map_err(|e| api_error("s3:PutBucketVersioning", e))?;
    Ok(())
}

/// Delete every object version and delete marker, a listing page (at most 1000) at a time.
async fn empty(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    let address = Address::new(Kind::Bucket, name);
    loop {
        let page =
            p.s3.list_object_versions()
                .bucket(name)
                .max_keys(i32::try_from(DELETE_BATCH).unwrap_or(1000))
                .send()
                .await
                .map_err(|e| api_error("s3:ListObjectVersions", e))?;
        let entries: Vec<(Option<&str>, Option<&str>)> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        tracing::debug!(bucket = %name, count = entries.len(), "deleting object versions");
        for batch in entries.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|(key, version)| {
                    built(
                        &address,
                        ObjectIdentifier::builder()
                            .key(key.unwrap_or_default())
                            .set_version_id(version.map(str::to_string))
                            .build(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out =
                p.s3.delete_objects()
                    .bucket(name)
                    .delete(built(
                        &address,
                        Delete::builder()
                            .set_objects(Some(objects))
                            .quiet(true)
                            .build(),
                    )?)
                    .send()
                    .await
                    .map_err(|e| api_error("s3:DeleteObjects", e))?;
            if let Some(failed) = out.errors().first() {
                return Err(ProviderError::Api {
                    operation: "s3:DeleteObjects".into(),
                    code: failed.code().unwrap_or("Unknown").to_string(),
                    message: format!(
                        "{} (object `{}` version {})",
                        failed.message().unwrap_or_default(),
                        failed.key().unwrap_or_default(),
                        failed.version_id().unwrap_or("null")
                    ),
                });
            }
        }
    }
}
