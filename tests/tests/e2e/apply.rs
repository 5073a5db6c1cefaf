//! Issue #6, items 1 and 2: a fresh apply of the reference stack creates every resource as
//! declared, and a second apply changes nothing.

use infra_tests::proxy::CountingProxy;
use infra_tests::Emulator;

use crate::aws::{assert_al2023, ec2_tag, ingress, sorted, tcp, user_data, Aws, ID_TAG, STACK_TAG};
use crate::support::{assert_no_changes, infra, stack_file, upstream};

const STACK: &str = "closet";
const BUCKET: &str = "closet-uploads-apne2";

/// A fresh emulator with `stacks/closet.rs` applied.
pub fn applied_closet() -> Emulator {
    let emulator = Emulator::start();
    infra(
        &emulator.endpoint(),
        &["apply", &stack_file("closet.rs"), "--auto-approve"],
    )
    .assert_success();
    emulator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_every_resource_of_the_reference_stack_as_declared() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;

    // Network.
    let network = aws
        .assert_public_network(
            STACK,
            "10.0.0.0/16",
            &[
                ("public_a", "10.0.1.0/24", "ap-northeast-2a"),
                ("public_c", "10.0.2.0/24", "ap-northeast-2c"),
            ],
        )
        .await;
    let vpc_id = network.vpc_id.as_str();
    let subnet_ids = network.subnet_ids;

    // Security groups, rule by rule.
    let groups = aws.security_groups(STACK).await;
    assert_eq!(
        groups.keys().collect::<Vec<_>>(),
        ["alb", "api", "db", "web"]
    );
    let group_id = |id: &str| groups[id].group_id().unwrap().to_string();
    // Every rule explains itself in the console: `from PEER` unless the stack says otherwise.
    let world = "0.0.0.0/0";
    assert_eq!(
        ingress(&groups["alb"]),
        [tcp(80, world, world), tcp(443, world, world)]
    );
    let (alb, api) = ("ec2_security_group.alb", "ec2_security_group.api");
    assert_eq!(ingress(&groups["web"]), [tcp(3000, &group_id("alb"), alb)]);
    assert_eq!(ingress(&groups["api"]), [tcp(8080, &group_id("alb"), alb)]);
    assert_eq!(ingress(&groups["db"]), [tcp(3306, &group_id("api"), api)]);
    for group in groups.values() {
        assert_eq!(group.vpc_id(), Some(vpc_id));
    }

    // Certificate.
    let certificates = aws.certificates(STACK).await;
    assert_eq!(certificates.keys().collect::<Vec<_>>(), ["site"]);
    let (cert_arn, domain) = &certificates["site"];
    assert_eq!(domain, "closet.example.com");

    // Target groups and their health checks.
    let target_groups = aws.target_groups(STACK).await;
    assert_eq!(
        target_groups.keys().collect::<Vec<_>>(),
        ["backend", "frontend"]
    );
    for (id, port, path) in [("frontend", 3000, "/"), ("backend", 8080, "/api/health")] {
        let tg = &target_groups[id];
        assert_eq!(tg.port(), Some(port), "{id}");
        assert_eq!(tg.protocol().map(|p| p.as_str()), Some("HTTP"), "{id}");
        assert_eq!(tg.vpc_id(), Some(vpc_id), "{id}");
        assert_eq!(
            tg.health_check_protocol().map(|p| p.as_str()),
            Some("HTTP"),
            "{id}"
        );
        assert_eq!(
            tg.health_check_port(),
            Some(port.to_string().as_str()),
            "{id}"
        );
        assert_eq!(tg.health_check_path(), Some(path), "{id}");
    }
    let tg_arn = |id: &str| target_groups[id].target_group_arn().unwrap().to_string();

    // Load balancer, listeners, the /api/* rule.
    let load_balancers = aws.load_balancers(STACK).await;
    assert_eq!(load_balancers.keys().collect::<Vec<_>>(), ["alb"]);
    let alb = &load_balancers["alb"];
    let alb_arn = alb.load_balancer_arn().unwrap();
    assert_eq!(alb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert_eq!(alb.r#type().map(|t| t.as_str()), Some("application"));
    assert_eq!(alb.vpc_id(), Some(vpc_id));
    let alb_subnets = sorted(
        alb.availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_string))
            .collect(),
    );
    assert_eq!(alb_subnets, subnet_ids);
    assert_eq!(alb.security_groups(), [group_id("alb")]);

    let listeners = aws.listeners(alb_arn).await;
    assert_eq!(listeners.keys().copied().collect::<Vec<_>>(), [80, 443]);
    let http = &listeners[&80];
    assert_eq!(http.protocol().map(|p| p.as_str()), Some("HTTP"));
    let redirect = http.default_actions()[0]
        .redirect_config()
        .expect("listener 80 redirects");
    assert_eq!(redirect.protocol(), Some("HTTPS"));
    assert_eq!(redirect.port(), Some("443"));
    assert_eq!(redirect.status_code().map(|s| s.as_str()), Some("HTTP_301"));

    let https = &listeners[&443];
    assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"));
    assert_eq!(
        https
            .certificates()
            .iter()
            .filter_map(|c| c.certificate_arn())
            .collect::<Vec<_>>(),
        [cert_arn.as_str()]
    );
    assert_eq!(
        https.ssl_policy(),
        Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
    );
    let default = &https.default_actions()[0];
    assert_eq!(default.r#type().map(|t| t.as_str()), Some("forward"));
    assert_eq!(forward_target(default), Some(tg_arn("frontend")));

    let rules = aws.rules(https.listener_arn().unwrap()).await;
    assert_eq!(rules.len(), 1, "one rule on the HTTPS listener: {rules:?}");
    let rule = &rules[0];
    assert_eq!(rule.priority(), Some("10"));
    let patterns: Vec<&str> = rule
        .conditions()
        .iter()
        .flat_map(|c| {
            c.path_pattern_config()
                .map(|p| p.values().iter().map(String::as_str).collect())
                .unwrap_or_else(|| c.values().iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    assert_eq!(patterns, ["/api/*"]);
    assert_eq!(forward_target(&rule.actions()[0]), Some(tg_arn("backend")));

    // Ownership tags on the ELBv2 sub-resources too.
    let listener_arns: Vec<String> = listeners
        .values()
        .map(|l| l.listener_arn().unwrap().to_string())
        .chain(std::iter::once(rule.rule_arn().unwrap().to_string()))
        .collect();
    let mut tagged_ids = Vec::new();
    for arn in &listener_arns {
        tagged_ids.push(
            aws.elb_id(arn, STACK)
                .await
                .unwrap_or_else(|| panic!("{arn} carries no {STACK_TAG}={STACK} / {ID_TAG} tags")),
        );
    }
    assert_eq!(sorted(tagged_ids), ["api", "http", "https"]);

    // Launch templates: the AMI from SSM, t3.micro, IMDSv2, user data.
    let ami = aws.al2023_ami().await;
    let templates = aws.launch_templates(STACK).await;
    assert_eq!(templates.keys().collect::<Vec<_>>(), ["api", "web"]);
    for (id, image, port) in [
        ("web", "ghcr.io/closet/web:latest", 3000),
        ("api", "ghcr.io/closet/api:latest", 8080),
    ] {
        let data = aws
            .latest_template_data(templates[id].launch_template_id().unwrap())
            .await;
        assert_al2023(&data, &ami, id);
        assert_eq!(
            data.instance_type().map(|t| t.as_str()),
            Some("t3.micro"),
            "{id}"
        );
        let metadata = data.metadata_options().expect("metadata options are set");
        assert_eq!(
            metadata.http_tokens().map(|t| t.as_str()),
            Some("required"),
            "{id}: IMDSv2"
        );
        assert_eq!(data.security_group_ids(), [group_id(id)], "{id}");
        // The root volume: encrypted gp3 on the AMI's root device (AL2023's /dev/xvda).
        let root = &data.block_device_mappings()[0];
        assert_eq!(root.device_name(), Some("/dev/xvda"), "{id}");
        let ebs = root.ebs().expect("an EBS root volume");
        assert_eq!(ebs.encrypted(), Some(true), "{id}: root volume encrypted");
        assert_eq!(ebs.volume_type().map(|t| t.as_str()), Some("gp3"), "{id}");
        let script = user_data(&data);
        assert!(script.starts_with("#!/bin/bash"), "{id}: {script}");
        assert!(script.contains("swapon /swapfile"), "{id}: {script}");
        assert!(
            script.contains(&format!("-p {port}:{port} {image}")),
            "{id}: {script}"
        );
    }

    // Auto Scaling groups and the CPU policy.
    let asgs = aws.auto_scaling_groups(STACK).await;
    assert_eq!(asgs.keys().collect::<Vec<_>>(), ["api", "web"]);
    for (id, target_group) in [("web", "frontend"), ("api", "backend")] {
        let group = &asgs[id];
        assert_eq!(group.min_size(), Some(1), "{id}");
        assert_eq!(group.max_size(), Some(2), "{id}");
        assert_eq!(group.health_check_type(), Some("ELB"), "{id}");
        assert_eq!(group.health_check_grace_period(), Some(120), "{id}");
        let zones = sorted(
            group
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
        );
        assert_eq!(zones, subnet_ids, "{id}");
        assert_eq!(group.target_group_arns(), [tg_arn(target_group)], "{id}");
        let template = group
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .expect("the group runs a launch template");
        assert_eq!(
            template,
            templates[id].launch_template_id().unwrap(),
            "{id}"
        );
    }
    let policies = aws
        .scaling_policies(asgs["api"].auto_scaling_group_name().unwrap())
        .await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    assert_eq!(policies[0].policy_type(), Some("TargetTrackingScaling"));
    let tracking = policies[0]
        .target_tracking_configuration()
        .expect("target tracking");
    assert_eq!(tracking.target_value(), Some(50.0));
    assert_eq!(
        tracking
            .predefined_metric_specification()
            .and_then(|m| m.predefined_metric_type())
            .map(|m| m.as_str()),
        Some("ASGAverageCPUUtilization")
    );
    assert!(aws
        .scaling_policies(asgs["web"].auto_scaling_group_name().unwrap())
        .await
        .is_empty());

    // Database: private, encrypted, protected, managed secret, in the subnet group, db group.
    let subnet_groups = aws.db_subnet_groups(STACK).await;
    assert_eq!(subnet_groups.keys().collect::<Vec<_>>(), ["db"]);
    let subnet_group = &subnet_groups["db"];
    assert_eq!(
        sorted(
            subnet_group
                .subnets()
                .iter()
                .filter_map(|s| s.subnet_identifier().map(str::to_string))
                .collect()
        ),
        subnet_ids
    );
    let databases = aws.db_instances(STACK).await;
    assert_eq!(databases.keys().collect::<Vec<_>>(), ["db"]);
    let db = &databases["db"];
    assert_eq!(db.engine(), Some("mysql"));
    assert!(db.engine_version().unwrap_or_default().starts_with("8.0"));
    assert_eq!(db.db_instance_class(), Some("db.t3.micro"));
    assert_eq!(db.db_name(), Some("closet"));
    assert_eq!(db.publicly_accessible(), Some(false));
    assert_eq!(db.storage_encrypted(), Some(true));
    assert_eq!(db.deletion_protection(), Some(true));
    assert_eq!(db.backup_retention_period(), Some(7));
    assert!(
        db.master_user_secret()
            .and_then(|s| s.secret_arn())
            .is_some(),
        "the master password is managed in Secrets Manager: {db:?}"
    );
    assert_eq!(
        db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        subnet_group.db_subnet_group_name()
    );
    assert_eq!(
        db.vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .collect::<Vec<_>>(),
        [group_id("db")]
    );

    // Bucket: public access blocked, encrypted, versioned, tagged.
    aws.assert_private_bucket(BUCKET, STACK, "uploads").await;

    // And the tag lookups above found each resource by its own id: spot-check one by hand.
    let vpcs = aws.vpcs(STACK).await;
    assert_eq!(ec2_tag(vpcs["main"].tags(), STACK_TAG), Some(STACK));
}

/// The target group a forward action sends to (plain or in a forward config).
pub fn forward_target(action: &aws_sdk_elasticloadbalancingv2::types::Action) -> Option<String> {
    action.target_group_arn().map(str::to_string).or_else(|| {
        action
            .forward_config()
            .and_then(|f| f.target_groups().first())
            .and_then(|t| t.target_group_arn())
            .map(str::to_string)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_apply_the_plan_is_empty_and_a_second_apply_changes_nothing() {
    let emulator = applied_closet();
    let stack = stack_file("closet.rs");

    assert_no_changes(&emulator.endpoint(), &stack, "after the apply");

    let proxy = CountingProxy::start(upstream(&emulator));
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    let operations = proxy.operations();
    assert!(
        operations.iter().any(|o| o.name.starts_with("Describe")),
        "the second apply read the stack through the proxy: {operations:?}"
    );
    let writes = proxy.mutating();
    assert!(
        writes.is_empty(),
        "a converged stack needs no write: {writes:?}"
    );

    // That apply was one discovery: one filtered, paginated list per resource type, never one
    // describe per resource where a list exists.
    let mut by_operation: std::collections::BTreeMap<String, usize> = Default::default();
    for o in &operations {
        *by_operation.entry(o.name.clone()).or_default() += 1;
    }
    println!(
        "one discovery of the reference stack: {} calls: {by_operation:?}",
        operations.len()
    );
    for listed in [
        "DescribeVpcs",
        "DescribeSubnets",
        "DescribeInternetGateways",
        "DescribeRouteTables",
        "DescribeSecurityGroups",
        "DescribeLaunchTemplates",
        "DescribeAutoScalingGroups",
        "DescribeLoadBalancers",
        "DescribeTargetGroups",
        "DescribeDBInstances",
        "DescribeDBSubnetGroups",
        "ListCertificates",
    ] {
        assert!(
            by_operation.get(listed).copied().unwrap_or(0) <= 1,
            "{listed} is one filtered list per discovery: {by_operation:?}"
        );
    }
}
