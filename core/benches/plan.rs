//! Plans a generated 1,000-resource stack against the fake provider, pre-populated so most
//! resources are no-ops and some drifted or vanished. Prints the engine's time (median of several
//! runs; validation, discovery from the fake, diff and ordering included) and the heap's peak
//! while planning, counted by a global allocator (the workspace forbids `unsafe`, so the counting
//! allocator comes from the `peak_alloc` crate).
//!
//! `cargo bench -p infra-core --features testing --bench plan`. Targets: <= 100 ms, <= 50 MB.

use std::time::{Duration, Instant};

use infra_core::engine::{self, PlanOptions};
use infra_core::testing::FakeProvider;
use infra_core::{
    Address, Bucket, HealthCheck, Kind, Resource, Rule, SecurityGroup, Stack, Subnet, TargetGroup,
    Vpc,
};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

const RUNS: usize = 11;
const TARGET_MS: f64 = 100.0;
const TARGET_MB: f64 = 50.0;

/// 1 VPC, 200 subnets, 300 security groups (each admitting from up to two earlier ones),
/// 200 target groups and 299 buckets: 1,000 resources.
fn generated_stack() -> Stack {
    let mut s = Stack::new("bench", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    for i in 0..200 {
        let zone = if i % 2 == 0 {
            "ap-northeast-2a"
        } else {
            "ap-northeast-2c"
        };
        s.add(
            format!("subnet_{i}"),
            Subnet::private(&vpc, format!("10.0.{i}.0/24"), zone),
        );
    }
    let mut groups = Vec::new();
    for i in 0..300 {
        let mut sg = SecurityGroup::new(&vpc, format!("tier {i}"))
            .ingress(Rule::tcp(443).from_cidr("10.0.0.0/16"));
        if i >= 1 {
            sg = sg.ingress(Rule::tcp(8080).from_group(&groups[i - 1]));
        }
        if i >= 7 {
            sg = sg.ingress(Rule::tcp(5432).from_group(&groups[i - 7]));
        }
        groups.push(s.add(format!("sg_{i}"), sg));
    }
    for i in 0..200u16 {
        let port = 3000 + i;
        s.add(
            format!("tg_{i}"),
            TargetGroup::http(&vpc, port).health_check(HealthCheck::http("/health").port(port)),
        );
    }
    for i in 0..299 {
        s.add(
            format!("bucket_{i}"),
            Bucket::new(format!("bench-bucket-{i}")),
        );
    }
    s
}

fn main() {
    let stack = generated_stack();
    assert_eq!(stack.resources.len(), 1000);
    let fake = FakeProvider::applied(&stack);
    // Some drift: 20 health checks changed, 5 buckets gone, 5 security groups with an extra rule.
    for i in (0..200).step_by(10) {
        fake.mutate(&Address::new(Kind::TargetGroup, format!("tg_{i}")), |r| {
            if let Resource::TargetGroup(tg) = r {
                tg.health_check.path = "/drifted".into();
            }
        });
    }
    for i in (0..299).step_by(60) {
        fake.remove(&Address::new(Kind::Bucket, format!("bucket_{i}")));
    }
    for i in (0..300).step_by(60) {
        fake.mutate(&Address::new(Kind::SecurityGroup, format!("sg_{i}")), |r| {
            if let Resource::SecurityGroup(sg) = r {
                sg.ingress.push(Rule::tcp(22).from_anywhere());
            }
        });
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let options = PlanOptions::default();
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut peak_delta = 0usize;
    let mut held = 0usize;
    let mut summary = String::new();
    for _ in 0..RUNS {
        let baseline = ALLOCATOR.current_usage();
        held = held.max(baseline);
        ALLOCATOR.reset_peak_usage();
        let start = Instant::now();
        let plan = rt
            .block_on(engine::plan(&stack, &fake, &options))
            .unwrap_or_else(|e| panic!("planning the generated stack failed: {e}"));
        times.push(start.elapsed());
        peak_delta = peak_delta.max(ALLOCATOR.peak_usage().saturating_sub(baseline));
        summary = plan.summary().to_string();
    }
    times.sort();
    let mut validation: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let report = infra_core::validate::check(&stack);
            let elapsed = start.elapsed();
            assert!(!report.has_errors());
            elapsed
        })
        .collect();
    validation.sort();
    let median_ms = times[RUNS / 2].as_secs_f64() * 1000.0;
    let peak_mb = peak_delta as f64 / (1024.0 * 1024.0);
    let total_peak_mb = ALLOCATOR.peak_usage_as_mb();
    println!("plan of 1000 resources: {summary}");
    println!(
        "engine time: median {median_ms:.1} ms over {RUNS} runs (min {:.1}, max {:.1}); target <= {TARGET_MS} ms",
        times[0].as_secs_f64() * 1000.0,
        times[RUNS - 1].as_secs_f64() * 1000.0
    );
    println!(
        "  of which validation and lints: median {:.1} ms",
        validation[RUNS / 2].as_secs_f64() * 1000.0
    );
    println!(
        "peak heap while planning: {peak_mb:.1} MB above the {:.1} MB held before (stack and fake state); target <= {TARGET_MB} MB",
        held as f64 / (1024.0 * 1024.0)
    );
    println!("peak heap of the last run, all included: {total_peak_mb:.1} MB");
}
