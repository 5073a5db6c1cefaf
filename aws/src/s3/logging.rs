//! A bucket's server access logging (PutBucketLogging / GetBucketLogging).

use std::time::Duration;

use aws_sdk_s3::types::{BucketLoggingStatus, LoggingEnabled};
use infra_core::model::AccessLogging;
use infra_core::{Address, ProviderError, Ref};

use super::bucket::built;
use crate::support::{api_error, error_code, retry_while};
use crate::AwsProvider;

/// How long S3 may refuse a target bucket just created or just given its policy
/// (`InvalidTargetBucketForLogging` "The target bucket for logging does not exist").
const TARGET_VISIBLE_WITHIN: Duration = Duration::from_secs(60);

/// The logging target as S3 reports it: the target is a bucket name, made a logical id by
/// discovery's relink when the stack owns it.
pub(super) async fn read(
    p: &AwsProvider,
    name: &str,
) -> Result<Option<AccessLogging>, ProviderError> {
    let out =
        p.s3.get_bucket_logging()
            .bucket(name)
            .send()
            .await
            .map_err(|e| api_error("s3:GetBucketLogging", e))?;
    Ok(out.logging_enabled().map(|l| AccessLogging {
        target: Ref::from_id(l.target_bucket()),
        prefix: l.target_prefix().to_string(),
    }))
}

fn is_target_refused(err: &ProviderError) -> bool {
    error_code(err) == Some("InvalidTargetBucketForLogging")
}

/// Turns logging into `target` (a bucket name) on, or off for `None`.
pub(super) async fn put(
    p: &AwsProvider,
    address: &Address,
    name: &str,
    target: Option<(&str, &str)>,
) -> Result<(), ProviderError> {
    let status = match target {
        Some((bucket, prefix)) => BucketLoggingStatus::builder()
            .logging_enabled(built(
                address,
                LoggingEnabled::builder()
                    .target_bucket(bucket)
                    .target_prefix(prefix)
                    .build(),
            )?)
            .build(),
        None => BucketLoggingStatus::builder().build(),
    };
    let backoff = (Duration::from_secs(1), Duration::from_secs(10));
    let sent = retry_while(
        TARGET_VISIBLE_WITHIN,
        backoff,
        is_target_refused,
        "S3 refuses the log target",
        || async {
            p.s3.put_bucket_logging()
                .bucket(name)
                .bucket_logging_status(status.clone())
                .send()
                .await
                .map_err(|e| api_error("s3:PutBucketLogging", e))
        },
    )
    .await;
    match sent {
        Ok(_) => Ok(()),
        Err(err) if is_target_refused(&err) => Err(ProviderError::Other(format!(
            "{address}: S3 refuses `{}` as the log target for {} s: {err}; the target must be in \
             the same region and account, and its policy must let logging.s3.amazonaws.com write \
             (infra writes it on a bucket that something logs into)",
            target.map(|(bucket, _)| bucket).unwrap_or_default(),
            TARGET_VISIBLE_WITHIN.as_secs()
        ))),
        Err(err) => Err(err),
    }
}
