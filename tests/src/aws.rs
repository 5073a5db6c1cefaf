//! Independent reads of what the emulator holds, with the raw SDK clients (never through
//! `infra`), keyed by the `infra:id` ownership tag so a missing tag fails the lookup.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::Filter;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

pub const STACK_TAG: &str = "infra:stack";
pub const ID_TAG: &str = "infra:id";

/// The SSM parameter holding a stack's lock.
pub fn lock_parameter(stack: &str) -> String {
    format!("/infra/locks/{stack}")
}

/// The lock id [`Aws::take_lock_elsewhere`] writes.
pub const ELSEWHERE_LOCK_ID: &str = "0f1e2d3c4b5a6978";

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

    /// Check the public network the example stacks share: the VPC `main` with `cidr`, exactly the
    /// public `subnets` `(id, cidr, zone)` in it, the gateway `gateway` attached to it and the
    /// route table `public` sending 0.0.0.0/0 there, associated with every subnet.
    pub async fn assert_public_network(
        &self,
        stack: &str,
        cidr: &str,
        subnets: &[(&str, &str, &str)],
    ) -> PublicNetwork {
        let vpcs = self.vpcs(stack).await;
        assert_eq!(vpcs.keys().collect::<Vec<_>>(), ["main"]);
        let vpc = &vpcs["main"];
        let vpc_id = vpc.vpc_id().unwrap();
        assert_eq!(vpc.cidr_block(), Some(cidr));

        let found = self.subnets(stack).await;
        let ids: Vec<&str> = subnets.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(found.keys().collect::<Vec<_>>(), ids);
        for (id, cidr, zone) in subnets {
            let subnet = &found[*id];
            assert_eq!(subnet.cidr_block(), Some(*cidr), "{id}");
            assert_eq!(subnet.availability_zone(), Some(*zone), "{id}");
            assert_eq!(subnet.vpc_id(), Some(vpc_id), "{id}");
            assert_eq!(subnet.map_public_ip_on_launch(), Some(true), "{id}");
        }
        let subnet_ids = sorted(
            found
                .values()
                .map(|s| s.subnet_id().unwrap().to_string())
                .collect(),
        );

        let gateways = self.internet_gateways(stack).await;
        assert_eq!(gateways.keys().collect::<Vec<_>>(), ["gateway"]);
        let igw = &gateways["gateway"];
        let igw_id = igw.internet_gateway_id().unwrap();
        assert!(
            igw.attachments().iter().any(|a| a.vpc_id() == Some(vpc_id)),
            "the gateway is attached to the VPC: {igw:?}"
        );

        let tables = self.route_tables(stack).await;
        assert_eq!(tables.keys().collect::<Vec<_>>(), ["public"]);
        let table = &tables["public"];
        assert!(
            table
                .routes()
                .iter()
                .any(|r| r.destination_cidr_block() == Some("0.0.0.0/0")
                    && r.gateway_id() == Some(igw_id)),
            "0.0.0.0/0 routes to the gateway: {:?}",
            table.routes()
        );
        let associated = sorted(
            table
                .associations()
                .iter()
                .filter_map(|a| a.subnet_id().map(str::to_string))
                .collect(),
        );
        assert_eq!(associated, subnet_ids);
        PublicNetwork {
            vpc_id: vpc_id.to_string(),
            subnet_ids,
        }
    }

    /// The AMI id the public Amazon Linux 2023 parameter holds.
    pub async fn al2023_ami(&self) -> String {
        self.ssm
            .get_parameter()
            .name(AL2023)
            .send()
            .await
            .unwrap()
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_string)
            .expect("the emulator serves the public AL2023 parameter")
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

    /// What ACM says of the certificate `arn`.
    pub async fn certificate_detail(&self, arn: &str) -> aws_sdk_acm::types::CertificateDetail {
        self.acm
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .unwrap()
            .certificate
            .expect("ACM describes the certificate")
    }

    /// Check that the certificate `arn` is ISSUED and that `sets` (a zone's, from
    /// [`Aws::records`]) hold each of its DNS validation CNAMEs, with ACM's exact names and values.
    pub async fn assert_issued_and_validated_in(
        &self,
        arn: &str,
        sets: &BTreeMap<String, ResourceRecordSet>,
    ) {
        let detail = self.certificate_detail(arn).await;
        assert_eq!(detail.status().map(|s| s.as_str()), Some("ISSUED"));
        let validation: Vec<_> = detail
            .domain_validation_options()
            .iter()
            .filter_map(|o| o.resource_record())
            .collect();
        assert!(!validation.is_empty());
        for r in validation {
            let name = r.name();
            let set = &sets[&format!("{name} CNAME")];
            assert_eq!(set.resource_records()[0].value(), r.value());
        }
    }

    /// Check that `bucket` blocks public access, is encrypted (SSE-S3), versioned and tagged as
    /// `stack`'s `id`.
    pub async fn assert_private_bucket(&self, bucket: &str, stack: &str, id: &str) {
        let block = self
            .s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let block = block
            .public_access_block_configuration()
            .expect("a public access block");
        assert_eq!(block.block_public_acls(), Some(true));
        assert_eq!(block.ignore_public_acls(), Some(true));
        assert_eq!(block.block_public_policy(), Some(true));
        assert_eq!(block.restrict_public_buckets(), Some(true));
        let encryption = self
            .s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let algorithm = encryption
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_string());
        assert_eq!(algorithm.as_deref(), Some("AES256"));
        assert_eq!(self.bucket_versioning(bucket).as_deref(), Some("Enabled"));
        let tags = self.bucket_tags(bucket).await.expect("the bucket exists");
        assert!(tags.contains(&(STACK_TAG.into(), stack.into())), "{tags:?}");
        assert!(tags.contains(&(ID_TAG.into(), id.into())), "{tags:?}");
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

    /// The id of the hosted zone named `name` (with its final dot), if there is one.
    pub async fn zone_id(&self, name: &str) -> Option<String> {
        let out = self.route53.list_hosted_zones().send().await.unwrap();
        out.hosted_zones()
            .iter()
            .find(|z| z.name() == name)
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
    }

    /// Every record set of the zone, by `NAME TYPE`.
    pub async fn records(&self, zone: &str) -> BTreeMap<String, ResourceRecordSet> {
        let out = self
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .send()
            .await
            .unwrap();
        out.resource_record_sets()
            .iter()
            .map(|s| (format!("{} {}", s.name(), s.r#type().as_str()), s.clone()))
            .collect()
    }

    /// Write one record with one value and a TTL of 60 into the zone, as someone else would.
    pub async fn change_record(
        &self,
        zone: &str,
        action: ChangeAction,
        name: &str,
        kind: RrType,
        value: &str,
    ) {
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(kind)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .build()
            .unwrap();
        let change = Change::builder()
            .action(action)
            .resource_record_set(set)
            .build()
            .unwrap();
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
            .send()
            .await
            .unwrap();
    }

    /// The id of whoever holds `stack`'s lock, if anyone does.
    pub async fn lock_holder_id(&self, stack: &str) -> Option<String> {
        let got = self
            .ssm
            .get_parameter()
            .name(lock_parameter(stack))
            .send()
            .await
            .ok()?;
        let value: serde_json::Value =
            serde_json::from_str(got.parameter()?.value()?).expect("the lock holds JSON");
        value["id"].as_str().map(str::to_string)
    }

    /// Write `stack`'s lock as another machine's `infra apply` would have.
    pub async fn take_lock_elsewhere(&self, stack: &str) {
        let holder = serde_json::json!({
            "id": ELSEWHERE_LOCK_ID,
            "operation": "apply",
            "who": "dana@build-7",
            "pid": 4242,
            "created": 1_795_998_896u64,
            "version": "0.1.0",
        });
        self.ssm
            .put_parameter()
            .name(lock_parameter(stack))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .value(holder.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Everything still tagged with `stack`, as `kind id` lines (empty when all is gone).
    pub async fn remaining(&self, stack: &str, buckets: &[&str]) -> Vec<String> {
        let mut left = self.remaining_outside_elb_asg_rds(stack, buckets).await;
        let mut note = |kind: &str, ids: Vec<String>| {
            left.extend(ids.into_iter().map(|id| format!("{kind} {id}")));
        };
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
        left
    }

    /// [`Aws::remaining`] without ELBv2, Auto Scaling and RDS, which LocalStack's free edition
    /// does not serve.
    pub async fn remaining_outside_elb_asg_rds(
        &self,
        stack: &str,
        buckets: &[&str],
    ) -> Vec<String> {
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

/// What [`Aws::assert_public_network`] found.
pub struct PublicNetwork {
    pub vpc_id: String,
    /// Sorted.
    pub subnet_ids: Vec<String>,
}

/// The public SSM parameter holding the latest Amazon Linux 2023 AMI.
pub const AL2023: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Check that a template's image is Amazon Linux 2023: the AMI id `ami` the parameter held at
/// apply time, or EC2's own `resolve:ssm:` reference to the parameter (resolved at each launch).
pub fn assert_al2023(data: &aws_sdk_ec2::types::ResponseLaunchTemplateData, ami: &str, what: &str) {
    let image_id = data.image_id().unwrap_or_default();
    assert!(
        image_id == ami || image_id == format!("resolve:ssm:{AL2023}"),
        "{what}: image {image_id}, parameter holds {ami}"
    );
}

/// A launch template's user data, decoded.
pub fn user_data(data: &aws_sdk_ec2::types::ResponseLaunchTemplateData) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.user_data().expect("user data is set"))
        .expect("user data is base64");
    String::from_utf8(bytes).expect("user data is text")
}

/// One ingress rule as [`ingress`] lists it: `(protocol, from, to, peer, description)`.
pub type Ingress = (String, i32, i32, String, String);

/// A security group's ingress rules, sorted, the peer a CIDR or a group id.
pub fn ingress(group: &aws_sdk_ec2::types::SecurityGroup) -> Vec<Ingress> {
    let mut rules = Vec::new();
    for p in group.ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or_default().to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let rule = |peer: Option<&str>, description: Option<&str>| {
            let (peer, description) = (peer.unwrap_or_default(), description.unwrap_or_default());
            (
                protocol.clone(),
                from,
                to,
                peer.to_string(),
                description.to_string(),
            )
        };
        for range in p.ip_ranges() {
            rules.push(rule(range.cidr_ip(), range.description()));
        }
        for pair in p.user_id_group_pairs() {
            rules.push(rule(pair.group_id(), pair.description()));
        }
    }
    rules.sort();
    rules
}

/// A TCP rule on one port from `peer` (a CIDR or group id) described `from SOURCE` (the CIDR,
/// or the group's address), as infra describes the rules it writes.
pub fn tcp(port: i32, peer: &str, source: &str) -> Ingress {
    let description = format!("from {source}");
    ("tcp".to_string(), port, port, peer.to_string(), description)
}

/// The value of `key` among EC2 tags.
pub fn ec2_tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tag(ec2_tags(tags), key)
}
