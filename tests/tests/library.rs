//! Embedding the library, as the README shows: plan, apply and destroy a stack from Rust with
//! `infra_core::engine` and `infra_aws::AwsProvider`, against a private emulator.

#[path = "../../stacks/single.rs"]
mod single;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use infra_aws::{AwsOptions, AwsProvider};
use infra_core::engine::{self, Action, ApplyOptions, NoHook, PlanMode, PlanOptions};
use infra_core::Provider;
use infra_tests::Emulator;

async fn provider(emulator: &Emulator) -> AwsProvider {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(emulator.endpoint())
        .region(Region::new("ap-northeast-2"))
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "library",
        ))
        .load()
        .await;
    AwsProvider::from_config(&config, AwsOptions::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_replan_and_destroy_from_rust() {
    let emulator = Emulator::start();
    let provider = provider(&emulator).await;
    let stack = single::stack();

    let plan = engine::plan(&stack, &provider, &PlanOptions::default())
        .await
        .unwrap();
    assert_eq!(plan.changes.len(), stack.resources.len());
    assert!(plan.changes.iter().all(|c| c.action == Action::Create));
    assert!(plan.refusals.is_empty());

    let result = engine::apply(&plan, &stack, &provider, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap();
    assert!(result.is_success(), "failed: {:?}", result.failed);
    assert_eq!(result.completed.len(), stack.resources.len());

    let outputs = engine::read_outputs(&stack, &provider).await.unwrap();
    assert_eq!(
        outputs.get("assets_bucket"),
        Some(&Some("honeyflow-assets-apne2".to_string()))
    );

    let again = engine::plan(&stack, &provider, &PlanOptions::default())
        .await
        .unwrap();
    assert!(
        !again.has_changes(),
        "{}",
        engine::render_plan(&again, false)
    );

    // The log bucket holds the assets' access logs by now.
    let destroy = PlanOptions {
        mode: PlanMode::Destroy,
        allow_data_loss: true,
    };
    let teardown = engine::plan(&stack, &provider, &destroy).await.unwrap();
    assert!(teardown.changes.iter().all(|c| c.action == Action::Delete));
    let result = engine::apply(
        &teardown,
        &stack,
        &provider,
        &ApplyOptions::default(),
        &NoHook,
    )
    .await
    .unwrap();
    assert!(result.is_success(), "failed: {:?}", result.failed);
    let after = engine::plan(&stack, &provider, &PlanOptions::default())
        .await
        .unwrap();
    assert!(after.changes.iter().all(|c| c.action == Action::Create));
}

#[path = "../../stacks/closet.rs"]
mod closet;

/// The reference stack through the library: everything is created, the plan right after is
/// empty (no perpetual diff in any field of any type), and destroy needs the data-loss flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_stack_converges_and_plans_clean() {
    let emulator = Emulator::start();
    let provider = provider(&emulator).await;
    let stack = closet::stack();

    let plan = engine::plan(&stack, &provider, &PlanOptions::default())
        .await
        .unwrap();
    let result = engine::apply(&plan, &stack, &provider, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap();
    assert!(result.is_success(), "failed: {:?}", result.failed);
    assert_eq!(result.completed.len(), stack.resources.len());

    let again = engine::plan(&stack, &provider, &PlanOptions::default())
        .await
        .unwrap();
    assert!(
        !again.has_changes(),
        "{}",
        engine::render_plan(&again, false)
    );
    let outputs = engine::read_outputs(&stack, &provider).await.unwrap();
    for name in [
        "alb_dns_name",
        "db_endpoint",
        "db_secret_arn",
        "uploads_bucket",
    ] {
        assert!(
            matches!(outputs.get(name), Some(Some(v)) if !v.is_empty()),
            "{name}: {outputs:?}"
        );
    }

    let refused = engine::plan(
        &stack,
        &provider,
        &PlanOptions {
            mode: PlanMode::Destroy,
            allow_data_loss: false,
        },
    )
    .await
    .unwrap();
    assert!(
        refused
            .refusals
            .iter()
            .any(|r| r.address.to_string() == "rds_db_instance.db" && r.flag == "--allow-data-loss"),
        "{:?}",
        refused.refusals
    );
    let teardown = engine::plan(
        &stack,
        &provider,
        &PlanOptions {
            mode: PlanMode::Destroy,
            allow_data_loss: true,
        },
    )
    .await
    .unwrap();
    let result = engine::apply(
        &teardown,
        &stack,
        &provider,
        &ApplyOptions::default(),
        &NoHook,
    )
    .await
    .unwrap();
    assert!(result.is_success(), "failed: {:?}", result.failed);
    assert!(provider.discover(&stack).await.unwrap().is_empty());
}

/// `infra_core::lock::locked` takes the same lock as `infra apply`: held (in SSM) while the work
/// runs, refused while someone else holds it (the work never runs), released afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_applies_under_the_stack_lock() {
    use infra_core::lock::locked;
    use infra_core::LockError;
    use infra_tests::aws::{Aws, ELSEWHERE_LOCK_ID};

    let emulator = Emulator::start();
    let provider = provider(&emulator).await;
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = single::stack();

    let held_while_working = locked(&provider, &stack, "apply", async {
        Ok::<_, LockError>(aws.lock_holder_id(&stack.name).await)
    })
    .await
    .unwrap();
    assert!(held_while_working.is_some());
    assert_eq!(aws.lock_holder_id(&stack.name).await, None);

    aws.take_lock_elsewhere(&stack.name).await;
    let ran = std::sync::atomic::AtomicBool::new(false);
    let refused = locked(&provider, &stack, "apply", async {
        ran.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, LockError>(())
    })
    .await;
    assert!(!ran.into_inner(), "the work ran without the lock");
    match refused {
        Err(LockError::Held { holder, .. }) => assert_eq!(holder.who, "dana@build-7"),
        other => panic!("not refused as held: {other:?}"),
    }
    assert_eq!(
        aws.lock_holder_id(&stack.name).await.as_deref(),
        Some(ELSEWHERE_LOCK_ID)
    );
}
