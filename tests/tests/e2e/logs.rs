//! Issue 19: a load balancer's access logs and a bucket's server access logs into a log bucket,
//! read back through the AWS API (DescribeLoadBalancerAttributes, GetBucketLogging,
//! GetBucketLifecycleConfiguration, GetBucketPolicy); each drifted by hand and restored by
//! apply, a lifecycle rule someone else added kept; then destroyed. AWS's refusals the emulator
//! does not give (ELB's "Access Denied for bucket" while a new policy propagates, S3's
//! `InvalidTargetBucketForLogging`) come from a wire double.

#[path = "../../stacks/weblogs.rs"]
mod weblogs;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLoggingStatus, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter,
};
use infra_aws::{AwsOptions, AwsProvider};
use infra_core::engine::{self, ApplyOptions, ApplyResult, NoHook, PlanMode, PlanOptions};
use infra_tests::proxy::{CountingProxy, Fault, FaultHook, Operation, ProxyOptions};
use infra_tests::{repo_root, Emulator};
use serde_json::{json, Value};
use weblogs::{LOGS, UPLOADS};

use crate::aws::Aws;
use crate::support::{assert_no_changes, changed_fields, infra, plan_changes, upstream};

const STACK: &str = "weblogs";
/// moto's account.
const ACCOUNT: &str = "123456789012";
const DENIED: &str =
    "Access Denied for bucket: weblogs-logs-apne2. Please check S3bucket permission";

fn stack_path() -> String {
    repo_root()
        .join("tests/stacks/weblogs.rs")
        .to_string_lossy()
        .into_owned()
}

/// The load balancer's attributes, by key.
async fn lb_attributes(aws: &Aws) -> BTreeMap<String, String> {
    let arn = aws.load_balancers(STACK).await["web"]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let out = aws
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .unwrap();
    out.attributes()
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
        .collect()
}

async fn policy(aws: &Aws) -> Value {
    let out = aws
        .s3
        .get_bucket_policy()
        .bucket(LOGS)
        .send()
        .await
        .unwrap();
    serde_json::from_str(out.policy().unwrap()).unwrap()
}

/// (target bucket, prefix) of the uploads bucket's server access logging.
async fn logging(aws: &Aws) -> Option<(String, String)> {
    let out = aws
        .s3
        .get_bucket_logging()
        .bucket(UPLOADS)
        .send()
        .await
        .unwrap();
    out.logging_enabled()
        .map(|l| (l.target_bucket().to_string(), l.target_prefix().to_string()))
}

async fn lifecycle_rules(aws: &Aws) -> Vec<LifecycleRule> {
    let out = aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(LOGS)
        .send()
        .await
        .unwrap();
    out.rules().to_vec()
}

/// Every setting as the stack declares it, read from the emulator.
async fn assert_declared(aws: &Aws) {
    let attrs = lb_attributes(aws).await;
    assert_eq!(attrs["access_logs.s3.enabled"], "true");
    assert_eq!(attrs["access_logs.s3.bucket"], LOGS);
    assert_eq!(attrs["access_logs.s3.prefix"], "alb/web");

    assert_eq!(
        logging(aws).await,
        Some((LOGS.to_string(), format!("s3/{UPLOADS}/")))
    );

    let rules = lifecycle_rules(aws).await;
    let ours = rules
        .iter()
        .find(|r| r.id() == Some("infra-expire"))
        .expect("infra's lifecycle rule");
    assert_eq!(ours.status(), &ExpirationStatus::Enabled);
    assert_eq!(ours.expiration().and_then(|e| e.days()), Some(30));
    assert_eq!(
        ours.noncurrent_version_expiration()
            .and_then(|e| e.noncurrent_days()),
        Some(7)
    );
    assert_eq!(
        ours.abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(7)
    );

    let statements = policy(aws).await["Statement"].as_array().unwrap().clone();
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert!(statements.contains(&json!({
        "Effect": "Allow",
        "Principal": { "AWS": "arn:aws:iam::600734575887:root" },
        "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{LOGS}/alb/web/AWSLogs/{ACCOUNT}/*"),
    })));
    assert!(statements.contains(&json!({
        "Effect": "Allow",
        "Principal": { "Service": "logging.s3.amazonaws.com" },
        "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{LOGS}/s3/{UPLOADS}/*"),
        "Condition": {
            "ArnLike": { "aws:SourceArn": format!("arn:aws:s3:::{UPLOADS}") },
            "StringEquals": { "aws:SourceAccount": ACCOUNT },
        },
    })));
}

/// By hand: access logs off, server access logging off, the policy replaced by one public-read
/// statement, infra's lifecycle rule shortened and a rule of someone else's beside it.
async fn drift(aws: &Aws) {
    let arn = aws.load_balancers(STACK).await["web"]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    aws.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .attributes(
            LoadBalancerAttribute::builder()
                .key("access_logs.s3.enabled")
                .value("false")
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.s3
        .put_bucket_logging()
        .bucket(UPLOADS)
        .bucket_logging_status(BucketLoggingStatus::builder().build())
        .send()
        .await
        .unwrap();
    let public = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{LOGS}/*"),
    }]});
    aws.s3
        .put_bucket_policy()
        .bucket(LOGS)
        .policy(public.to_string())
        .send()
        .await
        .unwrap();
    let rule = |id: &str, days: i32| {
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("mine/").build())
            .expiration(LifecycleExpiration::builder().days(days).build())
            .build()
            .unwrap()
    };
    aws.s3
        .put_bucket_lifecycle_configuration()
        .bucket(LOGS)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule("infra-expire", 5))
                .rules(rule("keep-mine", 400))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_written_as_declared_drift_is_restored_and_destroy_empties_the_log_bucket() {
    let emulator = Emulator::start();
    let endpoint = emulator.endpoint();
    let stack = stack_path();
    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();
    let aws = Aws::connect(&endpoint).await;
    assert_declared(&aws).await;
    assert_no_changes(&endpoint, &stack, "after apply");

    drift(&aws).await;
    let plan = infra(&endpoint, &["plan", &stack, "--json"]).json();
    let mut changes = plan_changes(&plan);
    changes.sort();
    assert_eq!(
        changes,
        [
            ("elbv2_load_balancer.web".to_string(), "update".to_string()),
            ("s3_bucket.logs".to_string(), "update".to_string()),
            ("s3_bucket.uploads".to_string(), "update".to_string()),
        ]
    );
    assert_eq!(
        changed_fields(&plan, "s3_bucket.logs"),
        ["lifecycle", "policy"]
    );
    assert_eq!(
        changed_fields(&plan, "s3_bucket.uploads"),
        ["access_logging"]
    );
    assert_eq!(
        changed_fields(&plan, "elbv2_load_balancer.web"),
        ["access_logs"]
    );
    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();
    assert_declared(&aws).await;
    let kept: Vec<Option<String>> = lifecycle_rules(&aws)
        .await
        .iter()
        .map(|r| r.id().map(str::to_string))
        .collect();
    assert!(kept.contains(&Some("keep-mine".into())), "{kept:?}");
    assert_no_changes(&endpoint, &stack, "after restoring");

    infra(
        &endpoint,
        &["destroy", &stack, "--auto-approve", "--allow-data-loss"],
    )
    .assert_success();
    assert_eq!(
        aws.remaining(STACK, &[LOGS, UPLOADS]).await,
        Vec::<String>::new()
    );
}

/// ModifyLoadBalancerAttributes turning access logs on answers ELB's "Access Denied" `denials`
/// times; the first PutBucketLogging answers `InvalidTargetBucketForLogging`; the second
/// DeleteBucket (the log bucket's: the uploads bucket logging into it goes first) answers
/// `BucketNotEmpty`, as when a last log file arrives after the bucket was emptied.
fn not_propagated_yet(denials: usize) -> FaultHook {
    let modifies = Arc::new(AtomicUsize::new(0));
    let loggings = Arc::new(AtomicUsize::new(0));
    let deletes = Arc::new(AtomicUsize::new(0));
    Arc::new(move |operation: &Operation, _| {
        if operation.name == "DeleteBucket" && deletes.fetch_add(1, Ordering::SeqCst) == 1 {
            return Fault::error(
                operation,
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            );
        }
        let logs_on = operation.name == "ModifyLoadBalancerAttributes"
            && operation.params.contains("access_logs.s3.bucket");
        if logs_on && modifies.fetch_add(1, Ordering::SeqCst) < denials {
            return Fault::error(operation, 400, "InvalidConfigurationRequest", DENIED);
        }
        if operation.name == "PutBucketLogging" && loggings.fetch_add(1, Ordering::SeqCst) == 0 {
            return Fault::error(
                operation,
                400,
                "InvalidTargetBucketForLogging",
                "The target bucket for logging does not exist",
            );
        }
        Fault::Forward
    })
}

async fn provider(proxy: &CountingProxy, propagation: Duration) -> AwsProvider {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(proxy.endpoint())
        .region(Region::new("ap-northeast-2"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "logs"))
        .load()
        .await;
    let options = AwsOptions {
        log_policy_propagation: propagation,
        ..AwsOptions::default()
    };
    AwsProvider::from_config(&config, options)
}

async fn apply_plan(provider: &AwsProvider, options: PlanOptions) -> ApplyResult {
    let stack = weblogs::stack();
    let plan = engine::plan(&stack, provider, &options).await.unwrap();
    engine::apply(&plan, &stack, provider, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_log_writes_are_retried_and_late_log_objects_are_emptied_again() {
    let emulator = Emulator::start();
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(not_propagated_yet(2)),
            ..ProxyOptions::default()
        },
    );
    let provider = provider(&proxy, Duration::from_secs(60)).await;
    let result = apply_plan(&provider, PlanOptions::default()).await;
    assert!(result.is_success(), "failed: {:?}", result.failed);
    assert_eq!(proxy.count("ModifyLoadBalancerAttributes"), 3);
    assert_eq!(proxy.count("PutBucketLogging"), 2);
    let aws = Aws::connect(&emulator.endpoint()).await;
    assert_declared(&aws).await;

    let destroy = PlanOptions {
        mode: PlanMode::Destroy,
        allow_data_loss: true,
    };
    let result = apply_plan(&provider, destroy).await;
    assert!(result.is_success(), "failed: {:?}", result.failed);
    assert_eq!(proxy.count("DeleteBucket"), 3);
    assert_eq!(
        aws.remaining(STACK, &[LOGS, UPLOADS]).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_logs_still_refused_after_the_propagation_window_fail_naming_the_bucket() {
    let emulator = Emulator::start();
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(not_propagated_yet(usize::MAX)),
            ..ProxyOptions::default()
        },
    );
    let provider = provider(&proxy, Duration::from_secs(3)).await;
    let result = apply_plan(&provider, PlanOptions::default()).await;
    let (address, error) = result.failed.first().expect("the load balancer fails");
    assert_eq!(address.to_string(), "elbv2_load_balancer.web");
    let message = error.to_string();
    for expected in [
        "ELB still cannot write access logs into bucket `weblogs-logs-apne2` after 3 s",
        "InvalidConfigurationRequest: Access Denied for bucket",
    ] {
        assert!(
            message.contains(expected),
            "`{expected}` missing: {message}"
        );
    }
    assert!(proxy.count("ModifyLoadBalancerAttributes") >= 2);
}
