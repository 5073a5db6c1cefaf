//! Client-side pacing on the wire: the provider made by `from_config` from a plain
//! `aws_config::load` (no HTTP client of its own, as the CLI makes it) holds a burst of ELBv2
//! calls past the bucket until the bucket refills.

use std::time::{Duration, Instant};

use infra_aws::pacing::Meter;
use infra_aws::AwsOptions;
use infra_core::prelude::*;
use infra_core::{Kind, Provider};
use infra_tests::Emulator;

mod support;

const REGION: &str = "ap-northeast-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_elb_calls_past_the_bucket_waits_for_its_refill() {
    let emulator = Emulator::start();
    let stack = Stack::new("pacing", REGION);
    let address = Address::new(Kind::TargetGroup, "missing");
    let arn = "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/missing/0123456789abcdef";

    let (capacity, per_second) = Meter::Elb.limit().expect("ELBv2 is paced");
    let (capacity, per_second) = (capacity as usize, per_second as usize);
    let started = Instant::now();
    let (p, proxy) = support::counted_provider(&emulator, AwsOptions::default()).await;
    let reads = (0..capacity).map(|_| p.read(&stack, &address, arn));
    for read in futures::future::join_all(reads).await {
        assert!(
            read.expect("a read of a missing target group").is_none(),
            "nothing by that ARN exists"
        );
    }
    let elapsed = started.elapsed();

    let calls = proxy
        .operations()
        .iter()
        .filter(|o| o.service == "elasticloadbalancing")
        .count();
    assert!(
        calls > capacity + per_second,
        "only {calls} ELBv2 calls reached the emulator: not enough to empty the bucket"
    );
    // The bucket starts full; every call past it waits for one refill.
    let floor = Meter::Elb.floor(calls);
    assert!(
        elapsed + Duration::from_millis(20) >= floor,
        "{calls} ELBv2 calls took {elapsed:?}: pacing allows no less than {floor:?}"
    );
}
