//! Issue #6, items 3 and 4: changes made behind the tool's back show up in the plan, and apply
//! puts them back.

use aws_sdk_ec2::types::{IpPermission, UserIdGroupPair};

use crate::apply::{applied_closet, forward_target};
use crate::aws::Aws;
use crate::support::{assert_no_changes, changed_fields, infra, plan_changes, stack_file};

const STACK: &str = "closet";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_health_check_port_is_the_only_update_and_apply_restores_it() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    let backend = aws.target_groups(STACK).await["backend"].clone();
    let arn = backend.target_group_arn().unwrap();

    aws.elb
        .modify_target_group()
        .target_group_arn(arn)
        .health_check_port("9090")
        .send()
        .await
        .unwrap();

    let plan = infra(&emulator.endpoint(), &["plan", &stack, "--json"]);
    plan.assert_success();
    let json = plan.json();
    assert_eq!(
        plan_changes(&json),
        [(
            "elbv2_target_group.backend".to_string(),
            "update".to_string()
        )],
        "{}",
        plan.stdout
    );
    assert_eq!(
        changed_fields(&json, "elbv2_target_group.backend"),
        ["health_check"]
    );
    let detailed = infra(
        &emulator.endpoint(),
        &["plan", &stack, "--detailed-exitcode"],
    );
    assert_eq!(detailed.code, Some(2), "{}", detailed.output());

    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    let restored = aws.target_groups(STACK).await["backend"].clone();
    assert_eq!(restored.target_group_arn(), Some(arn), "updated in place");
    assert_eq!(restored.health_check_port(), Some("8080"));
    assert_eq!(restored.health_check_path(), Some("/api/health"));

    assert_no_changes(
        &emulator.endpoint(),
        &stack,
        "after the apply restored the health check",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_listener_rule_and_security_group_rule_are_recreated() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");

    let alb = aws.load_balancers(STACK).await["alb"].clone();
    let listeners = aws.listeners(alb.load_balancer_arn().unwrap()).await;
    let https_arn = listeners[&443].listener_arn().unwrap().to_string();
    let rules = aws.rules(&https_arn).await;
    assert_eq!(rules.len(), 1);
    aws.elb
        .delete_rule()
        .rule_arn(rules[0].rule_arn().unwrap())
        .send()
        .await
        .unwrap();

    let groups = aws.security_groups(STACK).await;
    let web = groups["web"].group_id().unwrap().to_string();
    let alb_group = groups["alb"].group_id().unwrap().to_string();
    aws.ec2
        .revoke_security_group_ingress()
        .group_id(&web)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(3000)
                .to_port(3000)
                // moto matches a group peer's description too (AWS ignores it).
                .user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(&alb_group)
                        .description("from ec2_security_group.alb")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(aws.security_groups(STACK).await["web"]
        .ip_permissions()
        .is_empty());

    let plan = infra(&emulator.endpoint(), &["plan", &stack, "--json"]);
    plan.assert_success();
    let json = plan.json();
    let mut changes = plan_changes(&json);
    changes.sort();
    assert_eq!(
        changes,
        [
            ("ec2_security_group.web".to_string(), "update".to_string()),
            ("elbv2_listener_rule.api".to_string(), "create".to_string()),
        ],
        "{}",
        plan.stdout
    );
    assert_eq!(changed_fields(&json, "ec2_security_group.web"), ["ingress"]);

    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();

    let rules = aws.rules(&https_arn).await;
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].priority(), Some("10"));
    let backend = aws.target_groups(STACK).await["backend"]
        .target_group_arn()
        .unwrap()
        .to_string();
    assert_eq!(forward_target(&rules[0].actions()[0]), Some(backend));
    let permissions = aws.security_groups(STACK).await["web"]
        .ip_permissions()
        .to_vec();
    assert_eq!(permissions.len(), 1, "{permissions:?}");
    assert_eq!(permissions[0].from_port(), Some(3000));
    assert_eq!(permissions[0].to_port(), Some(3000));
    assert_eq!(
        permissions[0]
            .user_id_group_pairs()
            .iter()
            .filter_map(|p| p.group_id())
            .collect::<Vec<_>>(),
        [alb_group.as_str()]
    );

    assert_no_changes(
        &emulator.endpoint(),
        &stack,
        "after the apply recreated the rules",
    );
}
