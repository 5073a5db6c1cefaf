//! `stacks/preview.rs` on LocalStack: applied as declared, an empty plan, changes made behind
//! the tool's back planned as exactly those updates and mended, then destroyed to nothing.

use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};
use aws_sdk_route53::types::{ChangeAction, RrType};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use infra_tests::iam::{
    allow, inline_policy, list, managed_policies, role_and_profile, statements, template_profile,
    SSM_CORE,
};
use infra_tests::localstack::LocalStack;

use crate::aws::{assert_al2023, ingress, tcp, user_data, Aws};
use crate::support::{assert_no_changes, changed_fields, infra, plan_changes, stack_file};
use crate::{BUCKET, STACK, STACK_FILE};

const ROLE: &str = "closet-preview-ap-northeast-2-app";
const ZONE: &str = "preview.example.com.";
const VERIFY: &str = "_verify.preview.example.com";

/// Everything the stack declares, read back through the AWS API.
async fn assert_as_declared(aws: &Aws) {
    let network = aws
        .assert_public_network(
            STACK,
            "10.1.0.0/16",
            &[
                ("public_a", "10.1.1.0/24", "ap-northeast-2a"),
                ("public_c", "10.1.2.0/24", "ap-northeast-2c"),
            ],
        )
        .await;

    let groups = aws.security_groups(STACK).await;
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["app", "monitoring"]);
    let monitoring = groups["monitoring"].group_id().unwrap();
    assert_eq!(
        ingress(&groups["app"]),
        [
            tcp(80, "203.0.113.0/24", "203.0.113.0/24"),
            tcp(9100, monitoring, "ec2_security_group.monitoring")
        ]
    );
    assert_eq!(ingress(&groups["monitoring"]), []);
    for group in groups.values() {
        assert_eq!(group.vpc_id(), Some(network.vpc_id.as_str()));
    }

    let templates = aws.launch_templates(STACK).await;
    assert_eq!(templates.keys().collect::<Vec<_>>(), ["app"]);
    let data = aws
        .latest_template_data(templates["app"].launch_template_id().unwrap())
        .await;
    assert_al2023(&data, &aws.al2023_ami().await, "app");
    assert_eq!(data.instance_type().map(|t| t.as_str()), Some("t3.micro"));
    let metadata = data.metadata_options().expect("metadata options are set");
    assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(
        data.security_group_ids(),
        [groups["app"].group_id().unwrap()]
    );
    let script = user_data(&data);
    assert!(script.contains("swapon /swapfile"), "{script}");
    assert!(script.contains("prom/node-exporter"), "{script}");
    assert_eq!(
        template_profile(aws, STACK, "app").await.as_deref(),
        Some(ROLE)
    );

    let (trust, path, held) = role_and_profile(aws, ROLE).await;
    assert_eq!(
        list(&trust["Statement"][0]["Principal"]["Service"]),
        ["ec2.amazonaws.com"],
        "{trust}"
    );
    assert_eq!(path, "/infra/ap-northeast-2/closet-preview/");
    assert_eq!(held, [ROLE]);
    assert_eq!(managed_policies(aws, ROLE).await, [SSM_CORE]);
    let policy = inline_policy(aws, ROLE)
        .await
        .expect("infra's inline policy");
    let bucket = format!("arn:aws:s3:::{BUCKET}");
    let mut expected = vec![
        allow(&["s3:ListBucket"], &[&bucket]),
        allow(
            &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            &[&format!("{bucket}/*")],
        ),
    ];
    expected.sort();
    assert_eq!(statements(&policy), expected);

    aws.assert_private_bucket(BUCKET, STACK, "uploads").await;

    let zone = aws.zone_id(ZONE).await.expect("the zone exists");
    let sets = aws.records(&zone).await;
    let certificates = aws.certificates(STACK).await;
    assert_eq!(certificates.keys().collect::<Vec<_>>(), ["site"]);
    let (arn, domain) = &certificates["site"];
    assert_eq!(domain, "closet.preview.example.com");
    aws.assert_issued_and_validated_in(arn, &sets).await;
    let value = |key: &str| {
        let set = sets
            .get(key)
            .unwrap_or_else(|| panic!("no {key}: {sets:?}"));
        set.resource_records()[0].value().to_string()
    };
    assert_eq!(
        value("status.preview.example.com. CNAME").trim_end_matches('.'),
        "closet.statuspage.example.net"
    );
    assert_eq!(
        value(&format!("{VERIFY}. TXT")),
        "\"closet-preview-verification=5f2c9a\""
    );
    for companion in [
        "_infra-cname.status.preview.example.com. TXT",
        "_infra-txt._verify.preview.example.com. TXT",
    ] {
        assert!(
            value(companion).contains("owner=route53_record."),
            "{companion}"
        );
    }
}

/// The template's block-device mappings (its encrypted root volume) as a request gives them.
fn root_volume_request(
    current: &aws_sdk_ec2::types::ResponseLaunchTemplateData,
) -> Vec<aws_sdk_ec2::types::LaunchTemplateBlockDeviceMappingRequest> {
    use aws_sdk_ec2::types::{
        LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    };
    current
        .block_device_mappings()
        .iter()
        .map(|m| {
            let ebs = m.ebs().map(|e| {
                LaunchTemplateEbsBlockDeviceRequest::builder()
                    .set_volume_size(e.volume_size())
                    .set_volume_type(e.volume_type().cloned())
                    .set_encrypted(e.encrypted())
                    .set_kms_key_id(e.kms_key_id().map(str::to_string))
                    .set_delete_on_termination(e.delete_on_termination())
                    .build()
            });
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .set_device_name(m.device_name().map(str::to_string))
                .set_ebs(ebs)
                .build()
        })
        .collect()
}

/// Change the stack behind the tool's back, one resource of each service.
async fn drift(aws: &Aws) {
    let groups = aws.security_groups(STACK).await;
    let app = groups["app"].group_id().unwrap();
    let monitoring = groups["monitoring"].group_id().unwrap();
    aws.ec2
        .revoke_security_group_ingress()
        .group_id(app)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(9100)
                .to_port(9100)
                // LocalStack (moto inside) matches a group peer's description too; AWS ignores it.
                .user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(monitoring)
                        .description("from ec2_security_group.monitoring")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(app)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();

    // The instance type of a new default version. Its data is given whole: LocalStack's
    // SourceVersion copies only what the call overrides.
    let template = aws.launch_templates(STACK).await["app"].clone();
    let template_id = template.launch_template_id().unwrap();
    let current = aws.latest_template_data(template_id).await;
    let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
        .image_id(current.image_id().unwrap())
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Large)
        .set_security_group_ids(Some(current.security_group_ids().to_vec()))
        .iam_instance_profile(
            aws_sdk_ec2::types::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name(current.iam_instance_profile().unwrap().name().unwrap())
                .build(),
        )
        .metadata_options(
            aws_sdk_ec2::types::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(aws_sdk_ec2::types::LaunchTemplateHttpTokensState::Required)
                .build(),
        )
        .user_data(current.user_data().unwrap())
        .set_block_device_mappings(Some(root_volume_request(&current)))
        .build();
    let version = aws
        .ec2
        .create_launch_template_version()
        .launch_template_id(template_id)
        .launch_template_data(data)
        .send()
        .await
        .unwrap();
    let number = version
        .launch_template_version()
        .and_then(|v| v.version_number())
        .unwrap();
    aws.ec2
        .modify_launch_template()
        .launch_template_id(template_id)
        .default_version(number.to_string())
        .send()
        .await
        .unwrap();

    aws.s3
        .put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();

    aws.iam
        .detach_role_policy()
        .role_name(ROLE)
        .policy_arn(SSM_CORE)
        .send()
        .await
        .unwrap();

    let zone = aws.zone_id(ZONE).await.unwrap();
    aws.change_record(
        &zone,
        ChangeAction::Upsert,
        VERIFY,
        RrType::Txt,
        "\"taken\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_applies_plans_empty_mends_drift_and_destroys_to_nothing() {
    let localstack = LocalStack::start();
    let endpoint = localstack.endpoint();
    let aws = Aws::connect(&endpoint).await;
    let stack = stack_file(STACK_FILE);

    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();
    assert_as_declared(&aws).await;
    assert_no_changes(&endpoint, &stack, "after the first apply");

    drift(&aws).await;
    let plan = infra(&endpoint, &["plan", &stack, "--json"]);
    plan.assert_success();
    let json = plan.json();
    let mut changes = plan_changes(&json);
    changes.sort();
    let update = |address: &str| (address.to_string(), "update".to_string());
    assert_eq!(
        changes,
        [
            update("ec2_launch_template.app"),
            update("ec2_security_group.app"),
            update("iam_role.app"),
            update("route53_record.verify"),
            update("s3_bucket.uploads"),
        ],
        "{}",
        plan.stdout
    );
    for (address, fields) in [
        ("ec2_launch_template.app", &["instance_type"][..]),
        ("ec2_security_group.app", &["ingress"]),
        ("iam_role.app", &["managed_policies"]),
        ("route53_record.verify", &["data"]),
        ("s3_bucket.uploads", &["public_access_block", "versioning"]),
    ] {
        assert_eq!(changed_fields(&json, address), fields, "{address}");
    }

    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();
    assert_as_declared(&aws).await;
    assert_no_changes(&endpoint, &stack, "after the apply mended the drift");

    infra(&endpoint, &["destroy", &stack, "--auto-approve"]).assert_success();
    assert_eq!(
        aws.remaining_outside_elb_asg_rds(STACK, &[BUCKET]).await,
        Vec::<String>::new()
    );
    assert_eq!(aws.zone_id(ZONE).await, None);
    assert!(aws.iam.get_role().role_name(ROLE).send().await.is_err());
    let profile = aws.iam.get_instance_profile().instance_profile_name(ROLE);
    assert!(profile.send().await.is_err());
}
