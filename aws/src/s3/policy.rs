//! A log bucket's policy, written from the model's statements (the region's Elastic Load
//! Balancing log delivery, S3's logging service) and read back into them; any other statement
//! reads as `Other`, so a hand edit shows as a change.

use infra_core::model::PolicyStatement;
use infra_core::ProviderError;
use serde_json::{json, Value};

use crate::support::{api_error, error_code};
use crate::AwsProvider;

/// The Elastic Load Balancing account that delivers access logs in each region opened before
/// August 2022 (AWS's "Enable access logs for your Application Load Balancer"); newer regions
/// name the service principal instead.
const ELB_ACCOUNTS: &[(&str, &str)] = &[
    ("us-east-1", "127311923021"),
    ("us-east-2", "033677994240"),
    ("us-west-1", "027434742980"),
    ("us-west-2", "797873946194"),
    ("af-south-1", "098369216593"),
    ("ap-east-1", "754344448648"),
    ("ap-southeast-3", "589379963580"),
    ("ap-south-1", "718504428378"),
    ("ap-northeast-3", "383597477331"),
    ("ap-northeast-2", "600734575887"),
    ("ap-southeast-1", "114774131450"),
    ("ap-southeast-2", "783225319266"),
    ("ap-northeast-1", "582318560864"),
    ("ca-central-1", "985666609251"),
    ("eu-central-1", "054676820928"),
    ("eu-west-1", "156460612806"),
    ("eu-west-2", "652711504416"),
    ("eu-south-1", "635631232127"),
    ("eu-west-3", "009996457667"),
    ("eu-north-1", "897822967062"),
    ("me-south-1", "076674570225"),
    ("sa-east-1", "507241528517"),
    ("us-gov-west-1", "048591011584"),
    ("us-gov-east-1", "190560391635"),
    ("cn-north-1", "638102146993"),
    ("cn-northwest-1", "037604701340"),
];

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Who delivers a load balancer's access logs in `region`.
fn elb_principal(region: &str) -> Value {
    match ELB_ACCOUNTS.iter().find(|(r, _)| *r == region) {
        Some((_, account)) => {
            json!({ "AWS": format!("arn:{}:iam::{account}:root", partition(region)) })
        }
        None => json!({ "Service": "logdelivery.elasticloadbalancing.amazonaws.com" }),
    }
}

/// Where a bucket's policy is written: its name, region and account.
pub(super) struct Target<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    pub account: &'a str,
}

impl Target<'_> {
    fn arn(&self) -> String {
        format!("arn:{}:s3:::{}", partition(self.region), self.bucket)
    }

    /// One statement as JSON; `Other` is itself.
    fn statement(&self, s: &PolicyStatement) -> Value {
        let arn = self.arn();
        match s {
            PolicyStatement::LoadBalancerLogs { prefix } => {
                let under = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                json!({
                    "Effect": "Allow",
                    "Principal": elb_principal(self.region),
                    "Action": "s3:PutObject",
                    "Resource": format!("{arn}/{under}AWSLogs/{}/*", self.account),
                })
            }
            // moto 5.2 accepts PutBucketLogging only when a statement has exactly this shape:
            // one Service string, one Resource string `bucket/PREFIX*`.
            PolicyStatement::ServerAccessLogs { source_arn, prefix } => json!({
                "Effect": "Allow",
                "Principal": { "Service": "logging.s3.amazonaws.com" },
                "Action": "s3:PutObject",
                "Resource": format!("{arn}/{prefix}*"),
                "Condition": {
                    "ArnLike": { "aws:SourceArn": source_arn },
                    "StringEquals": { "aws:SourceAccount": self.account },
                },
            }),
            PolicyStatement::Other { statement } => statement.clone(),
        }
    }

    /// The policy document for `statements`.
    pub(super) fn document(&self, statements: &[PolicyStatement]) -> String {
        let statements: Vec<Value> = statements.iter().map(|s| self.statement(s)).collect();
        json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
    }

    /// A policy as S3 returns it, each statement read as the declared one it equals, else as
    /// `Other`.
    pub(super) fn parse(&self, text: &str, declared: &[PolicyStatement]) -> Vec<PolicyStatement> {
        let doc: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let statements = match doc.get("Statement") {
            Some(Value::Array(items)) => items.clone(),
            Some(one) => vec![one.clone()],
            None => Vec::new(),
        };
        statements
            .into_iter()
            .map(|actual| {
                declared
                    .iter()
                    .find(|d| self.statement(d) == actual)
                    .cloned()
                    .unwrap_or(PolicyStatement::Other { statement: actual })
            })
            .collect()
    }
}

/// The bucket's policy text; `None` when it has none.
pub(super) async fn read(p: &AwsProvider, name: &str) -> Result<Option<String>, ProviderError> {
    match p
        .s3
        .get_bucket_policy()
        .bucket(name)
        .send()
        .await
        .map_err(|e| api_error("s3:GetBucketPolicy", e))
    {
        Ok(out) => Ok(out.policy().map(str::to_string)),
        Err(err) if error_code(&err) == Some("NoSuchBucketPolicy") => Ok(None),
        Err(err) => Err(err),
    }
}

/// Writes the policy (replacing whatever the bucket had).
pub(super) async fn put(
    p: &AwsProvider,
    target: &Target<'_>,
    statements: &[PolicyStatement],
) -> Result<(), ProviderError> {
    p.s3.put_bucket_policy()
        .bucket(target.bucket)
        .policy(target.document(statements))
        .send()
        .await
        .map_err(|e| api_error("s3:PutBucketPolicy", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(region: &str) -> Target<'_> {
        Target {
            bucket: "logs",
            region,
            account: "123456789012",
        }
    }

    #[test]
    fn old_regions_name_the_elb_account_and_new_ones_the_service() {
        let alb = PolicyStatement::LoadBalancerLogs {
            prefix: "alb/web".into(),
        };
        let old = target("ap-northeast-2").statement(&alb);
        assert_eq!(old["Principal"]["AWS"], "arn:aws:iam::600734575887:root");
        assert_eq!(
            old["Resource"],
            "arn:aws:s3:::logs/alb/web/AWSLogs/123456789012/*"
        );
        let new = target("ap-southeast-5").statement(&alb);
        assert_eq!(
            new["Principal"]["Service"],
            "logdelivery.elasticloadbalancing.amazonaws.com"
        );
        let gov = target("us-gov-west-1").statement(&PolicyStatement::LoadBalancerLogs {
            prefix: String::new(),
        });
        assert_eq!(
            gov["Principal"]["AWS"],
            "arn:aws-us-gov:iam::048591011584:root"
        );
        assert_eq!(
            gov["Resource"],
            "arn:aws-us-gov:s3:::logs/AWSLogs/123456789012/*"
        );
    }

    #[test]
    fn server_access_logs_are_bound_to_the_source_bucket_and_account() {
        let s = target("ap-northeast-2").statement(&PolicyStatement::ServerAccessLogs {
            source_arn: "arn:aws:s3:::uploads".into(),
            prefix: "s3/uploads/".into(),
        });
        assert_eq!(s["Resource"], "arn:aws:s3:::logs/s3/uploads/*");
        assert_eq!(
            s["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:s3:::uploads"
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:SourceAccount"],
            "123456789012"
        );
    }

    #[test]
    fn a_written_policy_reads_back_as_declared_and_a_foreign_statement_as_other() {
        let t = target("ap-northeast-2");
        let declared = vec![
            PolicyStatement::LoadBalancerLogs {
                prefix: "alb/web".into(),
            },
            PolicyStatement::ServerAccessLogs {
                source_arn: "arn:aws:s3:::uploads".into(),
                prefix: "s3/uploads/".into(),
            },
        ];
        assert_eq!(t.parse(&t.document(&declared), &declared), declared);
        let foreign = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"});
        let mut edited: Value = serde_json::from_str(&t.document(&declared)).unwrap();
        edited["Statement"][1] = foreign.clone();
        assert_eq!(
            t.parse(&edited.to_string(), &declared),
            [
                declared[0].clone(),
                PolicyStatement::Other { statement: foreign }
            ]
        );
    }
}
