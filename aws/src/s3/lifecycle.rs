//! A bucket's lifecycle rule: infra's one rule (by its id) is read and written; rules someone
//! else added to the bucket are kept as they are.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
};
use infra_core::model::Lifecycle;
use infra_core::{Address, ProviderError};

use super::bucket::built;
use crate::support::{api_error, error_code};
use crate::AwsProvider;

/// The id of the rule infra writes.
const RULE_ID: &str = "infra-expire";

/// Every rule of the bucket (none: S3 answers `NoSuchLifecycleConfiguration`).
async fn rules(p: &AwsProvider, name: &str) -> Result<Vec<LifecycleRule>, ProviderError> {
    match p
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
        .map_err(|e| api_error("s3:GetBucketLifecycleConfiguration", e))
    {
        Ok(out) => Ok(out.rules().to_vec()),
        Err(err) if error_code(&err) == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

/// infra's rule, if the bucket has it (a rule of that id edited into another shape reads as
/// whatever of it the model holds, so the edit shows as a change).
pub(super) async fn read(p: &AwsProvider, name: &str) -> Result<Option<Lifecycle>, ProviderError> {
    let rules = rules(p, name).await?;
    let Some(rule) = rules.iter().find(|r| r.id() == Some(RULE_ID)) else {
        return Ok(None);
    };
    let days = |d: Option<i32>| d.and_then(|d| u32::try_from(d).ok()).unwrap_or(0);
    let enabled = rule.status() == &ExpirationStatus::Enabled;
    Ok(enabled.then(|| Lifecycle {
        expire_after_days: days(rule.expiration().and_then(LifecycleExpiration::days)),
        noncurrent_expire_after_days: days(
            rule.noncurrent_version_expiration()
                .and_then(NoncurrentVersionExpiration::noncurrent_days),
        ),
        abort_incomplete_uploads_after_days: days(
            rule.abort_incomplete_multipart_upload()
                .and_then(AbortIncompleteMultipartUpload::days_after_initiation),
        ),
    }))
}

fn rule(address: &Address, lifecycle: &Lifecycle) -> Result<LifecycleRule, ProviderError> {
    let days = |d: u32| i32::try_from(d).unwrap_or(i32::MAX);
    built(
        address,
        LifecycleRule::builder()
            .id(RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(
                LifecycleExpiration::builder()
                    .days(days(lifecycle.expire_after_days))
                    .build(),
            )
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(days(lifecycle.noncurrent_expire_after_days))
                    .build(),
            )
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(days(lifecycle.abort_incomplete_uploads_after_days))
                    .build(),
            )
            .build(),
    )
}

/// Sets infra's rule (or removes it, for `None`), keeping every other rule of the bucket.
pub(super) async fn put(
    p: &AwsProvider,
    address: &Address,
    name: &str,
    lifecycle: Option<&Lifecycle>,
) -> Result<(), ProviderError> {
    let mut rules: Vec<LifecycleRule> = rules(p, name)
        .await?
        .into_iter()
        .filter(|r| r.id() != Some(RULE_ID))
        .collect();
    if let Some(lifecycle) = lifecycle {
        rules.push(rule(address, lifecycle)?);
    }
    if rules.is_empty() {
        p.s3.delete_bucket_lifecycle()
            .bucket(name)
            .send()
            .await
            .map_err(|e| api_error("s3:DeleteBucketLifecycle", e))?;
        return Ok(());
    }
    let config = built(
        address,
        BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build(),
    )?;
    p.s3.put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(config)
        .send()
        .await
        .map_err(|e| api_error("s3:PutBucketLifecycleConfiguration", e))?;
    Ok(())
}
