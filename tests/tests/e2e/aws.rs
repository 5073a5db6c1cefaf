//! Independent reads of what the emulator holds, with the raw SDK clients (never through
//! `infra`), keyed by the `infra:id` ownership tag so a missing tag fails the lookup.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::Filter;

pub const STACK_TAG: &str = "infra:stack";
pub const ID_TAG: &str = "infra:id";

pub struct Aws {
    endpoint: String,
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub rds: aws_sdk_rds::Client,
    pub s3: aws_sdk_s3::Client,
    pub acm: aws_sdk_acm::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub iam: aws_sdk_iam::Client,
    pub route53: aws_sdk_route53::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
}

fn tag<'a>(
    tags: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    key: &str,
) -> Option<&'a str> {
    tags.into_iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v)
}

/// The logical id of a resource whose tags say it belongs to `stack`.
fn owned<'a>(
    tags: impl IntoIterator<Item = (&'a str, Option<&'a str>)> + Clone,
    stack: &str,
) -> Option<String> {
    (tag(tags.clone(), STACK_TAG) == Some(stack))
        .then(|| tag(tags, ID_TAG).map(str::to_string))
        .flatten()
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Vec<(&str, Option<&str>)> {
    tags.iter()
        .map(|t| (t.key().unwrap_or_default(), t.value()))
        .collect()
}

fn stack_filter(stack: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{STACK_TAG}"))
        .values(stack)
        .build()
}

/// Index owned items by logical id; two items with one id is a bug worth failing on.
fn index<T>(
    items: impl IntoIterator<Item = (Option<String>, T)>,
    what: &str,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    for (id, item) in items {
        let Some(id) = id else { continue };
        assert!(
            out.insert(id.clone(), item).is_none(),
            "two {what} carry {ID_TAG}={id}"
        );
    }
    out
}

impl Aws {
    pub async fn connect(endpoint: &str) -> Aws {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("ap-northeast-2"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
            .load()
            .await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Aws {
            endpoint: endpoint.to_string(),
            ec2: aws_sdk_ec2::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            asg: aws_sdk_autoscaling::Client::new(&config),
            rds: aws_sdk_rds::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            acm: aws_sdk_acm::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(&config),
        }
    }

    pub async fn vpcs(&self, stack: &str) -> BTreeMap<String, aws_sdk_ec2::types::Vpc> {
        let out = self
            .ec2
            .describe_vpcs()
            .filters(stack_filter(stack))
            .send()
            .await
            .unwrap();
        index(
            out.vpcs()
                .iter()
                .map(|v| (owned(ec2_tags(v.tags()), stack), v.clone())),
            "VPCs",
        )
    }

    pub async fn subnets(&self, stack: &str) -> BTreeMap<String, aws_sdk_ec2::types::Subnet> {
        let out = self
            .ec2
            .describe_subnets()
            .filters(stack_filter(stack))
            .send()
            .await
            .unwrap();
        index(
            out.subnets()
                .iter()
                .map(|v| (owned(ec2_tags(v.tags()), stack), v.clone())),
            "subnets",
        )
    }

    pub async fn internet_gateways(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_ec2::types::InternetGateway> {
        let out = self
            .ec2
            .describe_internet_gateways()
            .filters(stack_filter(stack))
            .send()
            .await
            .unwrap();
        index(
            out.internet_gateways()
                .iter()
                .map(|v| (owned(ec2_tags(v.tags()), stack), v.clone())),
            "internet gateways",
        )
    }

    pub async fn route_tables(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_ec2::types::RouteTable> {
        let out = self
            .ec2
            .describe_route_tables()
            .filters(stack_filter(stack))
            .send()
            .await
            .unwrap();
        index(
            out.route_tables()
                .iter()
                .map(|v| (owned(ec2_tags(v.tags()), stack), v.clone())),
            "route tables",
        )
    }

    pub async fn security_groups(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_ec2::types::SecurityGroup> {
        let out = self
            .ec2
            .describe_security_groups()
            .filters(stack_filter(stack))
            .send()
            .await
            .unwrap();
        index(
            out.security_groups()
                .iter()
                .map(|v| (owned(ec2_tags(v.tags()), stack), v.clone())),
            "security groups",
        )
    }

    pub async fn launch_templates(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_ec2::types::LaunchTemplate> {
        let out = self
            .ec2
            .describe_launch_templates()
            .filters(stack_filter(stack))
            .send()
            .await
            .unwrap();
        index(
            out.launch_templates()
                .iter()
                .map(|v| (owned(ec2_tags(v.tags()), stack), v.clone())),
            "launch templates",
        )
    }

    /// The data of a launch template's latest version.
    pub async fn latest_template_data(
        &self,
        template_id: &str,
    ) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
        let out = self
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(template_id)
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        out.launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .cloned()
            .unwrap_or_else(|| panic!("launch template {template_id} has no latest version"))
    }

    /// ELBv2 tags of each ARN.
    pub async fn elb_tags(
        &self,
        arns: &[String],
    ) -> BTreeMap<String, Vec<(String, Option<String>)>> {
        let mut out = BTreeMap::new();
        // DescribeTags takes at most 20 ARNs.
        for chunk in arns.chunks(20) {
            let tags = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            for d in tags.tag_descriptions() {
                out.insert(
                    d.resource_arn().unwrap_or_default().to_string(),
                    d.tags()
                        .iter()
                        .map(|t| {
                            (
                                t.key().unwrap_or_default().to_string(),
                                t.value().map(str::to_string),
                            )
                        })
                        .collect(),
                );
            }
        }
        out
    }

    async fn elb_owned(&self, arns: Vec<String>, stack: &str) -> BTreeMap<String, String> {
        let tags = self.elb_tags(&arns).await;
        index(
            arns.into_iter().map(|arn| {
                let id = tags
                    .get(&arn)
                    .and_then(|t| owned(t.iter().map(|(k, v)| (k.as_str(), v.as_deref())), stack));
                (id, arn)
            }),
            "ELBv2 resources",
        )
    }

    /// The logical id an ELBv2 resource's tags give it in `stack`.
    pub async fn elb_id(&self, arn: &str, stack: &str) -> Option<String> {
        let tags = self.elb_tags(&[arn.to_string()]).await;
        tags.get(arn)
            .and_then(|t| owned(t.iter().map(|(k, v)| (k.as_str(), v.as_deref())), stack))
    }

    pub async fn load_balancers(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_elasticloadbalancingv2::types::LoadBalancer> {
        let out = self.elb.describe_load_balancers().send().await.unwrap();
        let all = out.load_balancers().to_vec();
        let arns = all
            .iter()
            .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
            .collect();
        self.elb_owned(arns, stack)
            .await
            .into_iter()
            .map(|(id, arn)| {
                let lb = all
                    .iter()
                    .find(|lb| lb.load_balancer_arn() == Some(arn.as_str()))
                    .cloned()
                    .expect("listed above");
                (id, lb)
            })
            .collect()
    }

    pub async fn target_groups(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_elasticloadbalancingv2::types::TargetGroup> {
        let out = self.elb.describe_target_groups().send().await.unwrap();
        let all = out.target_groups().to_vec();
        let arns = all
            .iter()
            .filter_map(|tg| tg.target_group_arn().map(str::to_string))
            .collect();
        self.elb_owned(arns, stack)
            .await
            .into_iter()
            .map(|(id, arn)| {
                let tg = all
                    .iter()
                    .find(|tg| tg.target_group_arn() == Some(arn.as_str()))
                    .cloned()
                    .expect("listed above");
                (id, tg)
            })
            .collect()
    }

    /// Every target group's ARN, owned or not.
    pub async fn all_target_group_arns(&self) -> Vec<String> {
        let out = self.elb.describe_target_groups().send().await.unwrap();
        out.target_groups()
            .iter()
            .filter_map(|tg| tg.target_group_arn().map(str::to_string))
            .collect()
    }

    /// The listeners of a load balancer, by port.
    pub async fn listeners(
        &self,
        load_balancer_arn: &str,
    ) -> BTreeMap<i32, aws_sdk_elasticloadbalancingv2::types::Listener> {
        let out = self
            .elb
            .describe_listeners()
            .load_balancer_arn(load_balancer_arn)
            .send()
            .await
            .unwrap();
        out.listeners()
            .iter()
            .map(|l| (l.port().expect("a listener has a port"), l.clone()))
            .collect()
    }

    /// The non-default rules of a listener.
    pub async fn rules(
        &self,
        listener_arn: &str,
    ) -> Vec<aws_sdk_elasticloadbalancingv2::types::Rule> {
        let out = self
            .elb
            .describe_rules()
            .listener_arn(listener_arn)
            .send()
            .await
            .unwrap();
        out.rules()
            .iter()
            .filter(|r| r.is_default() != Some(true))
            .cloned()
            .collect()
    }

    pub async fn auto_scaling_groups(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_autoscaling::types::AutoScalingGroup> {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .filters(
                aws_sdk_autoscaling::types::Filter::builder()
                    .name(format!("tag:{STACK_TAG}"))
                    .values(stack)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        index(
            out.auto_scaling_groups().iter().map(|g| {
                let tags = g
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default(), t.value()));
                (owned(tags, stack), g.clone())
            }),
            "Auto Scaling groups",
        )
    }

    pub async fn scaling_policies(
        &self,
        group_name: &str,
    ) -> Vec<aws_sdk_autoscaling::types::ScalingPolicy> {
        self.asg
            .describe_policies()
            .auto_scaling_group_name(group_name)
            .send()
            .await
            .unwrap()
            .scaling_policies()
            .to_vec()
    }

    pub async fn db_instances(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_rds::types::DbInstance> {
        let out = self.rds.describe_db_instances().send().await.unwrap();
        index(
            out.db_instances().iter().map(|db| {
                let tags = db
                    .tag_list()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default(), t.value()));
                (owned(tags, stack), db.clone())
            }),
            "DB instances",
        )
    }

    pub async fn db_subnet_groups(
        &self,
        stack: &str,
    ) -> BTreeMap<String, aws_sdk_rds::types::DbSubnetGroup> {
        let out = self.rds.describe_db_subnet_groups().send().await.unwrap();
        let mut items = Vec::new();
        for group in out.db_subnet_groups() {
            let arn = group
                .db_subnet_group_arn()
                .expect("a subnet group has an ARN");
            let tags = self
                .rds
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .unwrap();
            let id = owned(
                tags.tag_list()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default(), t.value())),
                stack,
            );
            items.push((id, group.clone()));
        }
        index(items, "DB subnet groups")
    }

    /// Owned ACM certificates: logical id to (ARN, domain name).
    pub async fn certificates(&self, stack: &str) -> BTreeMap<String, (String, String)> {
        let out = self.acm.list_certificates().send().await.unwrap();
        let mut items = Vec::new();
        for summary in out.certificate_summary_list() {
            let arn = summary.certificate_arn().expect("a certificate has an ARN");
            let tags = self
                .acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .unwrap();
            let id = owned(tags.tags().iter().map(|t| (t.key(), t.value())), stack);
            items.push((
                id,
                (
                    arn.to_string(),
                    summary.domain_name().unwrap_or_default().to_string(),
                ),
            ));
        }
        index(items, "certificates")
    }

    /// A bucket's versioning status (`Enabled`, `Suspended`, or `None` when never set), read
    /// with a raw `GET /BUCKET?versioning`: moto 5.2 wraps this one answer in a
    /// `<GetBucketVersioningResponse>` root instead of S3's `<VersioningConfiguration>`, which
    /// the SDK's parser rejects.
    pub fn bucket_versioning(&self, bucket: &str) -> Option<String> {
        use std::io::{Read, Write};
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("the emulator answers");
        write!(
            stream,
            "GET /{bucket}?versioning HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .expect("the request is sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("a response");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let status = response
            .split("<Status>")
            .nth(1)?
            .split("</Status>")
            .next()?;
        Some(status.to_string())
    }

    /// The bucket's tags, or `None` when the bucket does not exist.
    pub async fn bucket_tags(&self, bucket: &str) -> Option<Vec<(String, String)>> {
        if self.s3.head_bucket().bucket(bucket).send().await.is_err() {
            return None;
        }
        let tags = self
            .s3
            .get_bucket_tagging()
            .bucket(bucket)
            .send()
            .await
            .ok()?;
        Some(
            tags.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        )
    }

    /// The ARNs the Resource Groups Tagging API lists as tagged with `stack`, sorted, except
    /// terminated instances (EC2 keeps listing those for a while; they carry the tags their
    /// Auto Scaling Group propagated).
    pub async fn tagged_arns(&self, stack: &str) -> Vec<String> {
        let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
            .key(STACK_TAG)
            .values(stack)
            .build();
        let mut arns: Vec<String> = self
            .tagging
            .get_resources()
            .tag_filters(filter)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|r| r.resource_arn().map(str::to_string))
            .collect();
        let terminated: Vec<String> = self
            .ec2
            .describe_instances()
            .filters(stack_filter(stack))
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("terminated")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        arns.retain(|arn| {
            !arn.split_once(":instance/")
                .is_some_and(|(_, id)| terminated.iter().any(|t| t == id))
        });
        arns.sort();
        arns
    }

    /// Everything still tagged with `stack`, as `kind id` lines (empty when all is gone).
    pub async fn remaining(&self, stack: &str, buckets: &[&str]) -> Vec<String> {
        let mut left = Vec::new();
        let mut note = |kind: &str, ids: Vec<String>| {
            left.extend(ids.into_iter().map(|id| format!("{kind} {id}")));
        };
        note("vpc", self.vpcs(stack).await.into_keys().collect());
        note("subnet", self.subnets(stack).await.into_keys().collect());
        note(
            "internet gateway",
            self.internet_gateways(stack).await.into_keys().collect(),
        );
        note(
            "route table",
            self.route_tables(stack).await.into_keys().collect(),
        );
        note(
            "security group",
            self.security_groups(stack).await.into_keys().collect(),
        );
        note(
            "launch template",
            self.launch_templates(stack).await.into_keys().collect(),
        );
        note(
            "load balancer",
            self.load_balancers(stack).await.into_keys().collect(),
        );
        note(
            "target group",
            self.target_groups(stack).await.into_keys().collect(),
        );
        note(
            "auto scaling group",
            self.auto_scaling_groups(stack).await.into_keys().collect(),
        );
        note(
            "db instance",
            self.db_instances(stack).await.into_keys().collect(),
        );
        note(
            "db subnet group",
            self.db_subnet_groups(stack).await.into_keys().collect(),
        );
        note(
            "certificate",
            self.certificates(stack).await.into_keys().collect(),
        );
        for bucket in buckets {
            if self.bucket_tags(bucket).await.is_some() {
                note("bucket", vec![bucket.to_string()]);
            }
        }
        left
    }
}

/// The value of `key` among EC2 tags.
pub fn ec2_tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tag(ec2_tags(tags), key)
}
