//! Rollouts against the emulator, with the instance-refresh API (which moto lacks) answered by
//! the refresh double: a launch-template change becomes a new template version, the group is
//! pinned to it and refreshed with the stack's preferences.

use std::net::SocketAddr;
use std::sync::OnceLock;

use infra_aws::{AwsOptions, AwsProvider};
use infra_core::engine::{self, Action, ApplyOptions, NoHook, PlanOptions};
use infra_core::model::{
    AutoScalingGroup, Declared, Image, InstanceRefresh, LaunchTemplate, Subnet, Vpc,
};
use infra_core::provider::{Context, NoProgress, Resolved};
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, Provider, ProviderError, Stack};
use infra_tests::refresh_double::{DesiredTemplate, Preferences, RefreshDouble, RefreshScript};
use infra_tests::Emulator;

const REGION: &str = "ap-northeast-2";
/// One of the AMIs the emulator knows.
const AMI: &str = "ami-12c6146b";

fn emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(Emulator::start)
}

/// The provider talking to the emulator through a double following `script`.
async fn connect(script: RefreshScript) -> (AwsProvider, RefreshDouble) {
    let upstream = SocketAddr::from(([127, 0, 0, 1], emulator().port()));
    let double = RefreshDouble::start(upstream, script);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(double.endpoint())
        .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    (
        AwsProvider::from_config(&config, AwsOptions::default()),
        double,
    )
}

fn ctx<'a>(stack: &'a Stack, resolved: &'a Resolved, no_wait: bool) -> Context<'a> {
    Context {
        stack: &stack.name,
        region: REGION,
        resolved,
        progress: &NoProgress,
        no_wait,
    }
}

fn template_address() -> Address {
    Address::new(Kind::LaunchTemplate, "api")
}

fn group_address() -> Address {
    Address::new(Kind::AutoScalingGroup, "api")
}

/// A VPC, a subnet, the `api` launch template running `image` and its group.
fn stack(name: &str, image: &str, prefs: InstanceRefresh) -> Stack {
    let mut s = Stack::new(name, REGION);
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let a = s.add(
        "a",
        Subnet::public(&vpc, "10.0.1.0/24", format!("{REGION}a")),
    );
    let lt = s.add(
        "api",
        LaunchTemplate::new(Image::AmiId(AMI.into()), "t3.micro")
            .user_data(format!("#!/bin/sh\ndocker run -d -p 8080:8080 {image}\n")),
    );
    s.add(
        "api",
        AutoScalingGroup::new(&lt, &[&a], 1, 2).instance_refresh(prefs),
    );
    s
}

fn declared(stack: &Stack, address: &Address) -> Declared {
    stack.get(address).cloned().expect("declared")
}

/// Create every resource of `stack` in order; what exists, by address.
async fn create_all(p: &AwsProvider, stack: &Stack) -> Resolved {
    let mut resolved = Resolved::default();
    for d in &stack.resources {
        let created = p
            .create(&ctx(stack, &resolved, false), d)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", d.address()));
        resolved.insert(created);
    }
    resolved
}

/// What the engine does for a template change: update the template (a new version), then the
/// group's `launch_template` (pin it to that version and refresh).
async fn roll(
    p: &AwsProvider,
    stack: &Stack,
    resolved: &mut Resolved,
    no_wait: bool,
) -> Result<Observed, ProviderError> {
    let template = declared(stack, &template_address());
    let prior = resolved.get(&template_address()).cloned().unwrap();
    let updated = p
        .update(
            &ctx(stack, resolved, no_wait),
            &template,
            &prior,
            &["user_data".to_string()],
        )
        .await?;
    assert_ne!(
        updated.attributes.get(attributes::LATEST_VERSION),
        prior.attributes.get(attributes::LATEST_VERSION),
        "a template update makes a new version"
    );
    resolved.insert(updated);
    let group = declared(stack, &group_address());
    let prior = resolved.get(&group_address()).cloned().unwrap();
    p.update(
        &ctx(stack, resolved, no_wait),
        &group,
        &prior,
        &["launch_template".to_string()],
    )
    .await
}

#[tokio::test]
async fn a_user_data_change_starts_one_refresh_and_waits_for_success() {
    let prefs = InstanceRefresh {
        instance_warmup_seconds: Some(90),
        ..InstanceRefresh::default()
    };
    let (p, double) = connect(RefreshScript::succeed_after(2)).await;
    let v1 = stack("refresh-success", "ghcr.io/closet/api:v1", prefs);
    let mut resolved = create_all(&p, &v1).await;
    assert!(double.calls().is_empty(), "creating starts no refresh");

    let v2 = stack("refresh-success", "ghcr.io/closet/api:v2", prefs);
    let group = roll(&p, &v2, &mut resolved, false).await.expect("rollout");

    let starts = double.starts();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0].group, group.physical_id);
    assert_eq!(starts[0].strategy.as_deref(), Some("Rolling"));
    assert_eq!(
        starts[0].preferences,
        Preferences {
            min_healthy_percentage: Some(100),
            max_healthy_percentage: Some(200),
            instance_warmup: Some(90),
            skip_matching: Some(true),
            auto_rollback: Some(true),
        }
    );
    // Waited until the refresh reported Successful: two InProgress answers, then the end.
    let describes_after_start = double
        .calls()
        .iter()
        .skip_while(|c| !c.starts_with("StartInstanceRefresh"))
        .filter(|c| c.starts_with("DescribeInstanceRefreshes"))
        .count();
    assert_eq!(describes_after_start, 3);

    // The refresh targets the template's new version by number, and its success pinned the
    // group to it.
    let template = resolved.get(&template_address()).unwrap();
    let latest = template.attributes.get(attributes::LATEST_VERSION).unwrap();
    assert_eq!(latest, "2");
    assert_eq!(
        starts[0].desired_template,
        Some(DesiredTemplate {
            id: Some(template.physical_id.clone()),
            name: None,
            version: Some(latest.clone()),
        })
    );
    assert_eq!(
        group.attributes.get(attributes::LAUNCH_TEMPLATE_VERSION),
        Some(latest)
    );
    assert_eq!(pinned_version(&p, &v2).await, *latest);
}

/// The launch-template version discovery reports for the group.
async fn pinned_version(p: &AwsProvider, stack: &Stack) -> String {
    p.discover(stack)
        .await
        .expect("discover")
        .into_iter()
        .find(|o| o.address == group_address())
        .and_then(|o| {
            o.attributes
                .get(attributes::LAUNCH_TEMPLATE_VERSION)
                .cloned()
        })
        .expect("the group and its pinned version")
}

#[tokio::test]
async fn a_failed_refresh_fails_with_the_reason() {
    let reason = "Instances failed to pass health checks";
    let (p, _double) = connect(RefreshScript::fail(reason)).await;
    let prefs = InstanceRefresh::default();
    let v1 = stack("refresh-failure", "ghcr.io/closet/api:v1", prefs);
    let mut resolved = create_all(&p, &v1).await;
    let v2 = stack("refresh-failure", "ghcr.io/closet/api:v2", prefs);
    match roll(&p, &v2, &mut resolved, false).await {
        Err(ProviderError::Api {
            operation,
            code,
            message,
        }) => {
            assert_eq!(operation, "autoscaling:InstanceRefresh");
            assert_eq!(code, "Failed");
            assert_eq!(message, reason);
        }
        other => panic!("expected the refresh's failure, got {other:?}"),
    }
    // The group stays on the old version, so the next plan rolls out again.
    assert_eq!(pinned_version(&p, &v2).await, "1");
}

#[tokio::test]
async fn no_wait_returns_once_the_refresh_started() {
    let (p, double) = connect(RefreshScript::succeed_after(50)).await;
    let prefs = InstanceRefresh::default();
    let v1 = stack("refresh-no-wait", "ghcr.io/closet/api:v1", prefs);
    let mut resolved = create_all(&p, &v1).await;
    let v2 = stack("refresh-no-wait", "ghcr.io/closet/api:v2", prefs);
    roll(&p, &v2, &mut resolved, true).await.expect("rollout");
    assert_eq!(double.starts().len(), 1);
    let calls = double.calls();
    assert!(
        calls
            .last()
            .is_some_and(|c| c.starts_with("StartInstanceRefresh")),
        "nothing polled after the start: {calls:?}"
    );
}

#[tokio::test]
async fn nothing_changed_means_no_refresh_call() {
    let (p, double) = connect(RefreshScript::succeed_after(1)).await;
    let s = stack(
        "refresh-unchanged",
        "ghcr.io/closet/api:v1",
        InstanceRefresh::default(),
    );
    create_all(&p, &s).await;
    let plan = engine::plan(&s, &p, &PlanOptions::default())
        .await
        .expect("plan");
    for address in [template_address(), group_address()] {
        let change = plan.changes.iter().find(|c| c.address == address).unwrap();
        assert_eq!(change.action, Action::NoOp, "{change:?}");
    }
    let result = engine::apply(&plan, &s, &p, &ApplyOptions::default(), &NoHook)
        .await
        .expect("apply");
    assert!(result.is_success(), "{result:?}");
    assert!(double.calls().is_empty(), "{:?}", double.calls());
}

#[tokio::test]
async fn apply_rolls_a_new_image_out_through_the_group() {
    let (p, double) = connect(RefreshScript::succeed_after(1)).await;
    let prefs = InstanceRefresh::default();
    let v1 = stack("refresh-apply", "ghcr.io/closet/api:v1", prefs);
    create_all(&p, &v1).await;
    let v2 = stack("refresh-apply", "ghcr.io/closet/api:v2", prefs);
    let plan = engine::plan(&v2, &p, &PlanOptions::default())
        .await
        .expect("plan");
    let group = plan
        .changes
        .iter()
        .find(|c| c.address == group_address())
        .unwrap();
    assert_eq!(group.action, Action::Update);
    assert_eq!(
        group.reason.as_deref(),
        Some("ec2_launch_template.api gets a new version: instance refresh")
    );
    let result = engine::apply(&plan, &v2, &p, &ApplyOptions::default(), &NoHook)
        .await
        .expect("apply");
    assert!(result.is_success(), "{result:?}");
    assert_eq!(double.starts().len(), 1);

    // Converged: the next plan changes nothing, so no second refresh.
    let again = engine::plan(&v2, &p, &PlanOptions::default())
        .await
        .expect("plan");
    let pending: Vec<_> = again
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.action, c.address.to_string()))
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
}
