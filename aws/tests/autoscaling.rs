//! Auto Scaling Groups against the moto emulator.

use std::sync::OnceLock;

use aws_sdk_autoscaling::types::Filter;
use infra_aws::{AwsOptions, AwsProvider};
use infra_core::model::{
    AutoScalingGroup, CpuTargetTracking, Declared, HealthCheckType, Image, InstanceRefresh,
    LaunchTemplate, Subnet, TargetGroup,
};
use infra_core::provider::{Context, DeleteOptions, NoProgress, Resolved};
use infra_core::{Address, Kind, Observed, Provider, Ref, Resource, Stack};
use infra_tests::Emulator;

const REGION: &str = "ap-northeast-2";

fn emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(|| {
        let emu = Emulator::start();
        emu.set_process_env();
        emu
    })
}

async fn sdk_config() -> aws_types::SdkConfig {
    emulator();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await
}

async fn provider() -> AwsProvider {
    emulator();
    AwsProvider::connect(REGION, AwsOptions::default()).await
}

fn ctx<'a>(stack: &'a str, resolved: &'a Resolved) -> Context<'a> {
    Context {
        stack,
        region: REGION,
        resolved,
        progress: &NoProgress,
        no_wait: false,
    }
}

fn declared(stack: &Stack, id: &str) -> Declared {
    stack
        .get(&Address::new(Kind::AutoScalingGroup, id))
        .cloned()
        .expect("declared")
}

fn group(resource: &Resource) -> &AutoScalingGroup {
    match resource {
        Resource::AutoScalingGroup(g) => g,
        other => panic!("auto scaling group expected, got {other:?}"),
    }
}

/// The declared group as discovery reports it: an undeclared desired capacity reads as the
/// number AWS holds (the engine ignores it then); lists in AWS order.
fn as_reported(declared: &Declared, desired_capacity: u32) -> AutoScalingGroup {
    let mut g = group(&declared.resource).clone();
    g.desired_capacity.get_or_insert(desired_capacity);
    g.subnets.sort();
    g.target_groups.sort();
    g
}

async fn discovered(p: &AwsProvider, stack: &Stack) -> Vec<Observed> {
    let mut all: Vec<Observed> = p
        .discover(stack)
        .await
        .expect("discover")
        .into_iter()
        .filter(|o| o.address.kind == Kind::AutoScalingGroup)
        .collect();
    all.sort_by(|a, b| a.address.cmp(&b.address));
    all
}

struct Deps {
    resolved: Resolved,
    template: String,
    subnets: Vec<String>,
    target_groups: Vec<String>,
}

/// A VPC, two subnets, a launch template (version 1) and two target groups, made with the raw
/// SDK (owned by no stack) and entered in `resolved` under their physical ids.
async fn dependencies(name: &str) -> Deps {
    let config = sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let mut resolved = Resolved::default();
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.2.0.0/16")
        .send()
        .await
        .expect("vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let mut subnets = Vec::new();
    for (i, zone) in ["a", "c"].iter().enumerate() {
        let cidr = format!("10.2.{}.0/24", i + 1);
        let zone = format!("{REGION}{zone}");
        let out = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(&cidr)
            .availability_zone(&zone)
            .send()
            .await
            .expect("subnet");
        let id = out
            .subnet()
            .and_then(|s| s.subnet_id())
            .expect("subnet id")
            .to_string();
        resolved.insert(Observed::new(
            Address::new(Kind::Subnet, id.clone()),
            id.clone(),
            Subnet::public(&Ref::from_id(vpc_id.clone()), cidr, zone).into(),
        ));
        subnets.push(id);
    }
    let template = ec2
        .create_launch_template()
        .launch_template_name(format!("{name}-lt"))
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("launch template");
    let template = template
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .expect("template id")
        .to_string();
    resolved.insert(
        Observed::new(
            Address::new(Kind::LaunchTemplate, template.clone()),
            template.clone(),
            LaunchTemplate::new(Image::AmiId("ami-12c6146b".into()), "t3.micro").into(),
        )
        .with_attribute("latest_version", "1"),
    );
    let mut target_groups = Vec::new();
    for (i, port) in [3000, 8080].into_iter().enumerate() {
        let out = elb
            .create_target_group()
            .name(format!("{name}-tg{i}"))
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(port)
            .vpc_id(&vpc_id)
            .send()
            .await
            .expect("target group");
        let arn = out.target_groups()[0]
            .target_group_arn()
            .expect("arn")
            .to_string();
        resolved.insert(Observed::new(
            Address::new(Kind::TargetGroup, arn.clone()),
            arn.clone(),
            TargetGroup::http(
                &Ref::from_id(vpc_id.clone()),
                u16::try_from(port).expect("port"),
            )
            .into(),
        ));
        target_groups.push(arn);
    }
    Deps {
        resolved,
        template,
        subnets,
        target_groups,
    }
}

#[tokio::test]
async fn groups_round_trip_update_drift_and_delete() {
    let p = provider().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk_config().await);
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config().await);
    let mut deps = dependencies("asg-main").await;
    let template = Ref::from_id(deps.template.clone());
    let a = Ref::from_id(deps.subnets[0].clone());
    let c = Ref::from_id(deps.subnets[1].clone());
    let frontend = Ref::from_id(deps.target_groups[0].clone());
    let backend = Ref::from_id(deps.target_groups[1].clone());

    let mut stack = Stack::new("asg-main", REGION);
    stack.add(
        "web",
        AutoScalingGroup::new(&template, &[&a, &c], 1, 2)
            .target_group(&frontend)
            .health_check(HealthCheckType::Elb, 120),
    );
    stack.add(
        "api",
        AutoScalingGroup::new(&template, &[&a, &c], 1, 2)
            .target_group(&backend)
            .scale_on_cpu(50.0)
            .instance_refresh(InstanceRefresh {
                min_healthy_percentage: 90,
                instance_warmup_seconds: Some(60),
                ..InstanceRefresh::default()
            }),
    );

    let web = p
        .create(&ctx(&stack.name, &deps.resolved), &declared(&stack, "web"))
        .await
        .expect("create web");
    let api = p
        .create(&ctx(&stack.name, &deps.resolved), &declared(&stack, "api"))
        .await
        .expect("create api");
    assert!(
        web.physical_id.starts_with("asg-main-web-"),
        "{}",
        web.physical_id
    );
    assert_eq!(web.attributes["launch_template_version"], "1");

    // Creating again (a retried apply) finds the group instead of making or replacing one.
    let again = p
        .create(&ctx(&stack.name, &deps.resolved), &declared(&stack, "web"))
        .await
        .expect("create again");
    assert_eq!(again.physical_id, web.physical_id);
    assert_eq!(again.attributes["arn"], web.attributes["arn"]);
    let tagged = asg
        .describe_auto_scaling_groups()
        .filters(
            Filter::builder()
                .name("tag:infra:stack")
                .values("asg-main")
                .build(),
        )
        .send()
        .await
        .expect("describe");
    assert_eq!(tagged.auto_scaling_groups().len(), 2);
    // The template version is pinned to an explicit number, never $Latest/$Default.
    for g in tagged.auto_scaling_groups() {
        let spec = g.launch_template().expect("launch template");
        assert_eq!(spec.launch_template_id(), Some(deps.template.as_str()));
        assert_eq!(spec.version(), Some("1"));
    }

    let found = discovered(&p, &stack).await;
    assert_eq!(found.len(), 2);
    let (found_api, found_web) = (&found[0], &found[1]);
    assert_eq!(found_api.physical_id, api.physical_id);
    assert_eq!(
        group(&found_web.resource),
        &as_reported(&declared(&stack, "web"), 1)
    );
    assert_eq!(
        group(&found_api.resource),
        &as_reported(&declared(&stack, "api"), 1)
    );
    assert_eq!(
        group(&found_api.resource).cpu_target_tracking,
        Some(CpuTargetTracking {
            target_percent: 50.0
        })
    );
    assert_eq!(group(&found_web.resource).cpu_target_tracking, None);
    assert_eq!(found_api.attributes["launch_template_version"], "1");

    // In place: a new template version, bigger max, CPU 60 %, the other target group, the
    // default refresh preferences.
    ec2.create_launch_template_version()
        .launch_template_id(&deps.template)
        .source_version("1")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
                .build(),
        )
        .send()
        .await
        .expect("template version");
    let mut template_observed = deps
        .resolved
        .get(&template.address())
        .cloned()
        .expect("template");
    template_observed
        .attributes
        .insert("latest_version".into(), "2".into());
    deps.resolved.insert(template_observed);
    stack.resources[1].resource = AutoScalingGroup::new(&template, &[&a, &c], 1, 3)
        .target_group(&frontend)
        .scale_on_cpu(60.0)
        .into();
    let changed = [
        "max_size",
        "target_groups",
        "cpu_target_tracking",
        "instance_refresh",
    ]
    .map(String::from);
    let updated = p
        .update(
            &ctx(&stack.name, &deps.resolved),
            &declared(&stack, "api"),
            found_api,
            &changed,
        )
        .await
        .expect("update");
    assert_eq!(updated.attributes["launch_template_version"], "2");
    let found = discovered(&p, &stack).await;
    assert_eq!(
        group(&found[0].resource),
        &as_reported(&declared(&stack, "api"), 1)
    );
    assert_eq!(found[0].attributes["launch_template_version"], "2");

    // Out of band: the policy removed, the web group resized.
    asg.delete_policy()
        .auto_scaling_group_name(&api.physical_id)
        .policy_name(format!("{}-cpu-target", api.physical_id))
        .send()
        .await
        .expect("raw delete policy");
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(&web.physical_id)
        .max_size(5)
        .send()
        .await
        .expect("raw update");
    let drifted = discovered(&p, &stack).await;
    assert_eq!(group(&drifted[0].resource).cpu_target_tracking, None);
    assert_eq!(group(&drifted[1].resource).max_size, 5);

    for observed in &drifted {
        p.delete(
            &ctx(&stack.name, &deps.resolved),
            observed,
            DeleteOptions::default(),
        )
        .await
        .expect("delete");
    }
    assert!(discovered(&p, &stack).await.is_empty());
    let gone = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&web.physical_id)
        .send()
        .await
        .expect("describe");
    assert!(gone.auto_scaling_groups().is_empty());
}
