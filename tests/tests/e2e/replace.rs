//! Issue #6, item 5: a change that forces a target group's replacement creates the new group
//! and repoints the listener rule before the old group is deleted.

use infra_tests::proxy::CountingProxy;

use crate::apply::{applied_closet, forward_target};
use crate::aws::Aws;
use crate::support::{
    assert_no_changes, changed_fields, edited_stack, infra, plan_changes, upstream, TempDir,
    BACKEND_ON_8081,
};

const STACK: &str = "closet";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_target_group_is_created_and_repointed_before_the_old_one_goes() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let old_arn = aws.target_groups(STACK).await["backend"]
        .target_group_arn()
        .unwrap()
        .to_string();

    // The backend moves to 8081: the group's port (forces replacement), its health check and
    // the security-group rule admitting it. The user data is left alone (no instance refresh).
    let dir = TempDir::new("replace");
    let stack = edited_stack(&dir, "closet.rs", &BACKEND_ON_8081);

    let plan = infra(&emulator.endpoint(), &["plan", &stack, "--json"]);
    plan.assert_success();
    let json = plan.json();
    let changes = plan_changes(&json);
    assert!(
        changes.contains(&(
            "elbv2_target_group.backend".to_string(),
            "replace".to_string()
        )),
        "{}",
        plan.stdout
    );
    assert!(changed_fields(&json, "elbv2_target_group.backend").contains(&"port".to_string()));

    let proxy = CountingProxy::start(upstream(&emulator));
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    let names: Vec<String> = proxy.mutating().into_iter().map(|o| o.name).collect();
    let position = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no {name} in {names:?}"))
    };
    let created = position("CreateTargetGroup");
    let repointed = position("ModifyRule");
    let deleted = position("DeleteTargetGroup");
    assert!(
        created < repointed && repointed < deleted,
        "expected CreateTargetGroup, then ModifyRule, then DeleteTargetGroup: {names:?}"
    );

    let target_groups = aws.target_groups(STACK).await;
    let backend = &target_groups["backend"];
    let new_arn = backend.target_group_arn().unwrap().to_string();
    assert_ne!(new_arn, old_arn);
    assert_eq!(backend.port(), Some(8081));
    assert_eq!(backend.health_check_port(), Some("8081"));
    assert!(
        !aws.all_target_group_arns().await.contains(&old_arn),
        "the old group is gone"
    );

    let alb = aws.load_balancers(STACK).await["alb"].clone();
    let listeners = aws.listeners(alb.load_balancer_arn().unwrap()).await;
    let rules = aws.rules(listeners[&443].listener_arn().unwrap()).await;
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(
        forward_target(&rules[0].actions()[0]),
        Some(new_arn.clone())
    );
    let groups = aws.auto_scaling_groups(STACK).await;
    assert_eq!(groups["api"].target_group_arns(), [new_arn]);

    assert_no_changes(&emulator.endpoint(), &stack, "after the replacement");
}
