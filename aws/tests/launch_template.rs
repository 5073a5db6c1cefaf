//! Launch templates against the moto emulator.

use std::sync::OnceLock;

use aws_sdk_ec2::types::{
    InstanceType, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};
use infra_aws::{AwsOptions, AwsProvider};
use infra_core::engine::diff::normalize;
use infra_core::prelude::*;
use infra_core::provider::{Context, DeleteOptions, NoProgress, Resolved};
use infra_core::{Kind, Observed, Provider, Resource};
use infra_tests::Emulator;

mod support;

const REGION: &str = "ap-northeast-2";
/// An AMI the emulator knows in this region (DescribeImages lists it).
const KNOWN_AMI: &str = "ami-12c6146b";
const AL2023: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let emulator = Emulator::start();
        emulator.set_process_env();
        emulator
    })
}

async fn clients() -> (AwsProvider, aws_sdk_ec2::Client, aws_sdk_ssm::Client) {
    emulator();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await;
    (
        AwsProvider::connect(REGION, AwsOptions::default()).await,
        aws_sdk_ec2::Client::new(&config),
        aws_sdk_ssm::Client::new(&config),
    )
}

fn ctx<'a>(stack: &'a Stack, resolved: &'a Resolved) -> Context<'a> {
    Context {
        stack: &stack.name,
        region: REGION,
        resolved,
        progress: &NoProgress,
        no_wait: false,
    }
}

async fn create_all(p: &AwsProvider, stack: &Stack) -> Resolved {
    let mut resolved = Resolved::default();
    for d in &stack.resources {
        let observed = p
            .create(&ctx(stack, &resolved), d)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", d.address()));
        resolved.insert(observed);
    }
    resolved
}

fn find(found: &[Observed], id: &str) -> Observed {
    found
        .iter()
        .find(|o| o.address == Address::new(Kind::LaunchTemplate, id))
        .unwrap_or_else(|| panic!("ec2_launch_template.{id} discovered; found {found:?}"))
        .clone()
}

fn assert_same(desired: &Resource, observed: &Resource) {
    let (mut d, mut o) = (desired.clone(), observed.clone());
    normalize(&mut d, &mut o);
    assert_eq!(o, d);
}

/// Non-ASCII text, CRLF and a trailing newline: user data must come back byte for byte.
const USER_DATA: &str = "#!/bin/bash\necho '안녕하세요 — café ✓'\r\ndocker run -p 3000:3000 web\n";

fn stack(name: &str) -> Stack {
    let mut s = Stack::new(name, REGION);
    let vpc = s.add("main", Vpc::new("10.4.0.0/16"));
    let web = s.add("web", SecurityGroup::new(&vpc, "Web tier"));
    let extra = s.add("extra", SecurityGroup::new(&vpc, "Extra"));
    s.add(
        "web",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
            .security_group(&web)
            .security_group(&extra)
            .user_data(USER_DATA)
            .root_volume_size(30),
    );
    s
}

#[tokio::test]
async fn launch_template_round_trip_update_and_drift() {
    let (p, ec2, ssm) = clients().await;
    let mut stack = stack("lt-roundtrip");
    let mut resolved = create_all(&p, &stack).await;
    let address = Address::new(Kind::LaunchTemplate, "web");
    let desired = stack.get(&address).unwrap().clone();
    let created = resolved.get(&address).unwrap().clone();
    assert_eq!(created.attributes["latest_version"], "1");
    assert!(created.attributes["name"].starts_with("lt-roundtrip-web-"));

    let found = p.discover(&stack).await.unwrap();
    let seen = find(&found, "web");
    assert_same(&desired.resource, &seen.resource);
    assert_eq!(seen.attributes["latest_version"], "1");

    // What AWS holds: the AMI the SSM parameter names, base64 user data, IMDSv2, gp3 root.
    let ami = ssm
        .get_parameter()
        .name(AL2023)
        .send()
        .await
        .expect("moto serves the public AL2023 parameter in ap-northeast-2")
        .parameter()
        .unwrap()
        .value()
        .unwrap()
        .to_string();
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_id(&created.physical_id)
        .versions("1")
        .send()
        .await
        .unwrap();
    let data = versions.launch_template_versions()[0]
        .launch_template_data()
        .unwrap();
    assert_eq!(data.image_id(), Some(ami.as_str()));
    assert_ne!(
        data.user_data(),
        Some(USER_DATA),
        "user data is sent base64-encoded"
    );
    let root = &data.block_device_mappings()[0];
    assert_eq!(root.device_name(), Some("/dev/xvda"));
    assert_eq!(root.ebs().unwrap().volume_size(), Some(30));
    assert_eq!(
        root.ebs().unwrap().encrypted(),
        Some(true),
        "encrypted by default"
    );
    assert_eq!(
        root.ebs().unwrap().volume_type().map(|t| t.as_str()),
        Some("gp3")
    );

    // In place: a new version with the new data, made the default.
    let mut updated_desired = desired.clone();
    if let Resource::LaunchTemplate(t) = &mut updated_desired.resource {
        t.instance_type = "t3.small".into();
        t.security_groups = vec![Ref::from_id("web")];
        t.key_name = Some("deploy".into());
    }
    let updated = p
        .update(
            &ctx(&stack, &resolved),
            &updated_desired,
            &seen,
            &["instance_type".to_string(), "security_groups".to_string()],
        )
        .await
        .unwrap();
    assert_same(&updated_desired.resource, &updated.resource);
    assert_eq!(updated.attributes["latest_version"], "2");
    let template = ec2
        .describe_launch_templates()
        .launch_template_ids(&created.physical_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        template.launch_templates()[0].default_version_number(),
        Some(2)
    );
    resolved.insert(updated);
    *stack
        .resources
        .iter_mut()
        .find(|r| r.address() == address)
        .unwrap() = updated_desired.clone();
    let seen = find(&p.discover(&stack).await.unwrap(), "web");
    assert_same(&updated_desired.resource, &seen.resource);

    // Out of band: someone makes version 3 with another instance type.
    ec2.create_launch_template_version()
        .launch_template_id(&created.physical_id)
        .source_version("2")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .instance_type(InstanceType::from("m5.large"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let seen = find(&p.discover(&stack).await.unwrap(), "web");
    let Resource::LaunchTemplate(t) = &seen.resource else {
        panic!("launch template expected")
    };
    assert_eq!(t.instance_type, "m5.large");
    assert_eq!(seen.attributes["latest_version"], "3");

    // Reconciling makes version 4 with the declared data.
    let fixed = p
        .update(
            &ctx(&stack, &resolved),
            &updated_desired,
            &seen,
            &["instance_type".to_string()],
        )
        .await
        .unwrap();
    assert_same(&updated_desired.resource, &fixed.resource);
    assert_eq!(fixed.attributes["latest_version"], "4");

    p.delete(&ctx(&stack, &resolved), &fixed, DeleteOptions::default())
        .await
        .unwrap();
    let found = p.discover(&stack).await.unwrap();
    assert!(found.iter().all(|o| o.address != address));
}

#[tokio::test]
async fn image_is_reported_as_the_ssm_parameter_only_while_it_names_the_same_ami() {
    let (p, _ec2, ssm) = clients().await;
    let ami = ssm
        .get_parameter()
        .name(AL2023)
        .send()
        .await
        .unwrap()
        .parameter()
        .unwrap()
        .value()
        .unwrap()
        .to_string();
    let mut stack = Stack::new("lt-image", REGION);
    stack.add(
        "fixed",
        LaunchTemplate::new(Image::AmiId(ami.clone()), "t3.micro"),
    );
    stack.add(
        "latest",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro"),
    );
    let resolved = create_all(&p, &stack).await;
    let seen = p.discover(&stack).await.unwrap();
    // A fixed AMI stays a fixed AMI, even when it is the parameter's current value...
    assert_same(&stack.resources[0].resource, &find(&seen, "fixed").resource);
    // ...and a template made from the parameter reads as the parameter while it names that AMI.
    assert_same(
        &stack.resources[1].resource,
        &find(&seen, "latest").resource,
    );
    // Switching an existing template between the two sets or removes the `infra:image-source`
    // tag with CreateTags/DeleteTags; moto 5.2 does not show tags added after creation in
    // DescribeLaunchTemplates, so that path is not checked against the emulator.
    for observed in &seen {
        p.delete(&ctx(&stack, &resolved), observed, DeleteOptions::default())
            .await
            .unwrap();
    }
    assert!(p.discover(&stack).await.unwrap().is_empty());
}

#[tokio::test]
async fn create_adopts_a_tagged_template_instead_of_making_a_second() {
    let (p, ec2, _ssm) = clients().await;
    let mut stack = Stack::new("lt-adopt", REGION);
    stack.add(
        "app",
        LaunchTemplate::new(Image::AmiId(KNOWN_AMI.into()), "t3.micro").user_data("echo hi\n"),
    );
    // Left by a create whose response was lost: tagged, but with stale data.
    ec2.create_launch_template()
        .launch_template_name("lt-adopt-app-leftover")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(KNOWN_AMI)
                .instance_type(InstanceType::from("t3.nano"))
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .tags(Tag::builder().key("infra:stack").value("lt-adopt").build())
                .tags(Tag::builder().key("infra:id").value("app").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let resolved = create_all(&p, &stack).await;
    let created = resolved
        .get(&Address::new(Kind::LaunchTemplate, "app"))
        .unwrap();
    assert_eq!(created.attributes["name"], "lt-adopt-app-leftover");
    assert_eq!(
        created.attributes["latest_version"], "2",
        "the stale data got a new version"
    );
    let found = p.discover(&stack).await.unwrap();
    assert_eq!(found.len(), 1, "no second template: {found:?}");
    assert_same(&stack.resources[0].resource, &found[0].resource);
}

#[tokio::test]
async fn creates_read_nothing_back_and_discovery_lists_all_latest_versions_in_one_call() {
    let (p, proxy) = support::counted_provider(emulator(), AwsOptions::default()).await;
    let mut stack = Stack::new("lt-calls", REGION);
    for (id, instance_type) in [("a", "t3.micro"), ("b", "t3.small"), ("c", "t3.medium")] {
        stack.add(
            id,
            LaunchTemplate::new(Image::amazon_linux_2023(), instance_type).user_data("echo hi\n"),
        );
    }
    stack.add(
        "fixed",
        LaunchTemplate::new(Image::AmiId(KNOWN_AMI.into()), "t3.micro"),
    );
    let resolved = create_all(&p, &stack).await;
    // Per template: the lookup before the create and the create; nothing read back. The image
    // parameter is resolved at most once per template (once per run when the provider holds
    // the image cache).
    assert_eq!(proxy.count("DescribeLaunchTemplates"), 4);
    assert_eq!(proxy.count("CreateLaunchTemplate"), 4);
    assert_eq!(proxy.count("DescribeLaunchTemplateVersions"), 0);
    assert_eq!(proxy.count("GetParameters"), 0);
    assert!(proxy.count("GetParameter") <= 3);

    // Discovery: one list of the stack's templates, one list of every template's latest version
    // (other tests' templates in this emulator included, and left out), one GetParameters.
    proxy.clear();
    let found = p.discover(&stack).await.unwrap();
    assert_eq!(proxy.count("DescribeLaunchTemplates"), 1);
    assert_eq!(proxy.count("GetParameters"), 1);
    let versions: Vec<_> = proxy
        .operations()
        .into_iter()
        .filter(|o| o.name == "DescribeLaunchTemplateVersions")
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert!(
        !versions[0].params.contains("LaunchTemplateId"),
        "all templates at once: {versions:?}"
    );
    // What create returned is what discovery reports, so a plan right after is empty.
    assert_eq!(found.len(), 4, "only the stack's templates: {found:?}");
    for d in &stack.resources {
        assert_eq!(
            &find(&found, &d.id),
            resolved.get(&d.address()).unwrap(),
            "{} as created and as discovered",
            d.address()
        );
    }

    for observed in &found {
        p.delete(&ctx(&stack, &resolved), observed, DeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_image_that_does_not_exist_is_named_before_any_template_is_made() {
    let (p, ec2, _ssm) = clients().await;
    let mut stack = Stack::new("lt-no-image", REGION);
    stack.add(
        "app",
        LaunchTemplate::new(Image::AmiId("ami-0123456789abcdef0".into()), "t3.micro"),
    );
    let desired = stack.resources[0].clone();
    let resolved = Resolved::default();
    let err = p
        .create(&ctx(&stack, &resolved), &desired)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "ec2_launch_template.app: image: AMI `ami-0123456789abcdef0` does not exist in this region"
        ),
        "{err}"
    );
    let names: Vec<String> = ec2
        .describe_launch_templates()
        .send()
        .await
        .unwrap()
        .launch_templates()
        .iter()
        .filter_map(|t| t.launch_template_name().map(str::to_string))
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("lt-no-image-")),
        "{names:?}"
    );
}
