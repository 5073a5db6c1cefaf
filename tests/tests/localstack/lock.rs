//! The stack lock in LocalStack's SSM: a lock held elsewhere stops apply and destroy at once,
//! only its holder's id releases it, and each run releases its own.

use std::net::SocketAddr;

use infra_tests::localstack::LocalStack;

use crate::aws::{Aws, ELSEWHERE_LOCK_ID};
use crate::support::{assert_refused_by_the_held_lock, infra, stack_file};
use crate::{BUCKET, STACK, STACK_FILE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_stops_apply_and_destroy_and_each_run_releases_its_own() {
    let localstack = LocalStack::start();
    let endpoint = localstack.endpoint();
    let upstream = SocketAddr::from(([127, 0, 0, 1], localstack.port()));
    let aws = Aws::connect(&endpoint).await;
    let stack = stack_file(STACK_FILE);
    let force_unlock = |id: &str| infra(&endpoint, &["force-unlock", &stack, id, "--auto-approve"]);

    aws.take_lock_elsewhere(STACK).await;
    assert_refused_by_the_held_lock(upstream, "apply", &stack, STACK);
    assert!(aws.vpcs(STACK).await.is_empty(), "nothing was made");
    let wrong = force_unlock("1111111111111111");
    assert_eq!(wrong.code, Some(1), "{}", wrong.output());
    assert_eq!(
        aws.lock_holder_id(STACK).await.as_deref(),
        Some(ELSEWHERE_LOCK_ID)
    );
    force_unlock(ELSEWHERE_LOCK_ID).assert_success();
    assert_eq!(aws.lock_holder_id(STACK).await, None);

    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();
    assert_eq!(
        aws.lock_holder_id(STACK).await,
        None,
        "apply released its lock"
    );

    aws.take_lock_elsewhere(STACK).await;
    assert_refused_by_the_held_lock(upstream, "destroy", &stack, STACK);
    assert_eq!(aws.vpcs(STACK).await.len(), 1, "nothing was deleted");
    force_unlock(ELSEWHERE_LOCK_ID).assert_success();
    infra(&endpoint, &["destroy", &stack, "--auto-approve"]).assert_success();
    assert_eq!(
        aws.lock_holder_id(STACK).await,
        None,
        "destroy released its lock"
    );
    assert_eq!(
        aws.remaining_outside_elb_asg_rds(STACK, &[BUCKET]).await,
        Vec::<String>::new()
    );
}
