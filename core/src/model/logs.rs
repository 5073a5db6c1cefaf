//! Logs: a load balancer's access logs and a bucket's server access logs, written into a log
//! bucket whose lifecycle expires them, and the bucket policy that lets AWS write them — derived
//! from who logs into the bucket, never written by hand.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Bucket, Resource};
use crate::refs::Ref;
use crate::stack::Stack;

/// Where a load balancer writes its access logs: `bucket`, under
/// `prefix/AWSLogs/ACCOUNT/elasticloadbalancing/REGION/...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogs {
    pub bucket: Ref<Bucket>,
    /// `None`: `alb/` and the load balancer's logical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl AccessLogs {
    /// The prefix the load balancer `id` writes under.
    pub fn prefix_for(&self, id: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("alb/{id}"))
    }
}

/// S3 server access logging: a record of every request to the bucket, written into `target`
/// under `prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogging {
    pub target: Ref<Bucket>,
    pub prefix: String,
}

/// One lifecycle rule over the whole bucket: objects expire `expire_after_days` after they were
/// written, the versions they leave behind `noncurrent_expire_after_days` later, and uploads
/// never completed are aborted after `abort_incomplete_uploads_after_days`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub expire_after_days: u32,
    pub noncurrent_expire_after_days: u32,
    pub abort_incomplete_uploads_after_days: u32,
}

impl Lifecycle {
    /// Expire after `days`; noncurrent versions 7 days later; incomplete uploads after 7 days.
    pub fn expire_after_days(days: u32) -> Self {
        Lifecycle {
            expire_after_days: days,
            noncurrent_expire_after_days: 7,
            abort_incomplete_uploads_after_days: 7,
        }
    }
}

/// How long [`Bucket::logs`] keeps logs.
pub const DEFAULT_LOG_DAYS: u32 = 90;

/// A statement of a log bucket's policy. The statements are derived from the stack
/// ([`Stack::derived`]); what AWS reports is read back into this form, and a statement infra
/// did not write shows as [`PolicyStatement::Other`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyStatement {
    /// The region's Elastic Load Balancing log delivery may write this account's access logs
    /// under `prefix`.
    LoadBalancerLogs { prefix: String },
    /// S3's logging service may write the server access logs of the bucket `source_arn` of this
    /// account under `prefix`.
    ServerAccessLogs { source_arn: String, prefix: String },
    /// A statement infra did not write: apply replaces the policy with the declared one.
    Other { statement: Value },
}

/// `stack` with what it derives filled in: each load balancer's log prefix, and the policy of
/// every bucket something logs into. Bucket policies of other buckets are left empty.
pub(crate) fn derive(stack: &mut Stack) {
    for d in &mut stack.resources {
        if let Resource::LoadBalancer(lb) = &mut d.resource {
            if let Some(logs) = &mut lb.access_logs {
                logs.prefix = Some(logs.prefix_for(&d.id));
            }
        }
    }
    let policies: Vec<Vec<PolicyStatement>> = stack
        .resources
        .iter()
        .map(|d| match &d.resource {
            Resource::Bucket(_) => policy_for(stack, &d.id),
            _ => Vec::new(),
        })
        .collect();
    for (d, policy) in stack.resources.iter_mut().zip(policies) {
        if let Resource::Bucket(b) = &mut d.resource {
            b.policy = policy;
        }
    }
}

/// The policy of the bucket `id`: a statement per writer. No deny of requests without TLS: moto
/// enforces one on its plain-HTTP endpoint, and infra could then not empty the bucket there.
fn policy_for(stack: &Stack, id: &str) -> Vec<PolicyStatement> {
    stack
        .resources
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::LoadBalancer(lb) => lb
                .access_logs
                .as_ref()
                .filter(|l| l.bucket.id() == id)
                .map(|l| PolicyStatement::LoadBalancerLogs {
                    prefix: l.prefix_for(&d.id),
                }),
            Resource::Bucket(b) => b
                .access_logging
                .as_ref()
                .filter(|l| l.target.id() == id)
                .map(|l| PolicyStatement::ServerAccessLogs {
                    source_arn: format!("arn:aws:s3:::{}", b.name),
                    prefix: l.prefix.clone(),
                }),
            _ => None,
        })
        .collect()
}

/// Whether anything in the stack logs into the bucket `id`.
pub fn is_log_target(stack: &Stack, id: &str) -> bool {
    !policy_for(stack, id).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn stack() -> Stack {
        let mut s = Stack::new("demo", "ap-northeast-2");
        let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
        let a = s.add("a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
        let c = s.add("c", Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
        let logs = s.add("logs", Bucket::logs("demo-logs"));
        s.add(
            "web",
            LoadBalancer::internet_facing(&[&a, &c], &[]).access_logs(&logs),
        );
        s.add("uploads", Bucket::new("demo-uploads").access_logging(&logs));
        s
    }

    #[test]
    fn the_log_bucket_policy_names_every_writer_and_other_buckets_get_none() {
        let s = stack().derived();
        let Some(Resource::Bucket(logs)) = s
            .resources
            .iter()
            .find(|d| d.id == "logs")
            .map(|d| &d.resource)
        else {
            panic!("logs bucket expected")
        };
        assert_eq!(
            logs.policy,
            [
                PolicyStatement::LoadBalancerLogs {
                    prefix: "alb/web".into()
                },
                PolicyStatement::ServerAccessLogs {
                    source_arn: "arn:aws:s3:::demo-uploads".into(),
                    prefix: "s3/demo-uploads/".into()
                },
            ]
        );
        let Some(Resource::Bucket(uploads)) = s
            .resources
            .iter()
            .find(|d| d.id == "uploads")
            .map(|d| &d.resource)
        else {
            panic!("uploads bucket expected")
        };
        assert!(uploads.policy.is_empty());
        assert!(is_log_target(&s, "logs") && !is_log_target(&s, "uploads"));
    }

    #[test]
    fn deriving_fills_the_default_prefix_and_is_idempotent() {
        let once = stack().derived();
        let Some(Resource::LoadBalancer(lb)) = once
            .resources
            .iter()
            .find(|d| d.id == "web")
            .map(|d| &d.resource)
        else {
            panic!("load balancer expected")
        };
        assert_eq!(
            lb.access_logs.as_ref().and_then(|l| l.prefix.as_deref()),
            Some("alb/web")
        );
        assert_eq!(once.derived(), once);
    }

    #[test]
    fn a_log_bucket_expires_logs_and_may_be_emptied_and_a_plain_bucket_neither() {
        let logs = Bucket::logs("l");
        assert_eq!(logs.lifecycle, Some(Lifecycle::expire_after_days(90)));
        assert!(logs.force_destroy);
        let plain = Bucket::new("b");
        assert_eq!((plain.lifecycle, plain.force_destroy), (None, false));
        let shorter = Bucket::logs("l").expire_after_days(30).lifecycle.unwrap();
        assert_eq!(
            (
                shorter.expire_after_days,
                shorter.noncurrent_expire_after_days
            ),
            (30, 7)
        );
    }

    #[test]
    fn prefixes_default_to_the_writer_and_can_be_given() {
        let logs = Ref::<Bucket>::from_id("logs");
        let b = Bucket::new("up").access_logging(&logs);
        assert_eq!(b.access_logging.unwrap().prefix, "s3/up/");
        let b = Bucket::new("up").access_logging_with_prefix(&logs, "x/");
        assert_eq!(b.access_logging.unwrap().prefix, "x/");
        let lb = LoadBalancer::internal(&[], &[]).access_logs_with_prefix(&logs, "");
        assert_eq!(lb.access_logs.unwrap().prefix_for("web"), "");
        assert!(LoadBalancer::internal(&[], &[]).access_logs.is_none());
    }

    #[test]
    fn a_stack_without_logs_derives_nothing() {
        let mut s = Stack::new("demo", "ap-northeast-2");
        s.add("uploads", Bucket::new("demo-uploads"));
        assert_eq!(s.derived(), s);
    }
}
