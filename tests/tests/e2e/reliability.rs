//! Issue #8: the stack lock, crash safety (SIGKILL at many points of an apply), faults on the
//! wire, and secrets that never show.
//!
//! Every check reads what the emulator holds through the raw SDK clients, counting everything
//! of each kind (tagged or not), so a duplicate made by a retried or repeated create shows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use infra_tests::proxy::{CountingProxy, Fault, FaultHook, Operation, ProxyOptions};
use infra_tests::Emulator;

use crate::aws::{Aws, ELSEWHERE_LOCK_ID};
use crate::support::{
    assert_no_changes, assert_refused_by_the_held_lock, infra, infra_command, run, stack_file,
    upstream,
};

const STACK: &str = "closet";

/// What `stacks/closet.rs` makes, by kind.
fn closet_inventory() -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("auto scaling group", 2),
        ("bucket", 2),
        ("certificate", 1),
        ("db instance", 1),
        ("db subnet group", 1),
        ("instance profile", 2),
        ("internet gateway", 1),
        ("launch template", 2),
        ("listener", 2),
        ("listener rule", 1),
        ("load balancer", 1),
        ("role", 2),
        ("route table", 1),
        ("scaling policy", 1),
        ("security group", 4),
        ("subnet", 2),
        ("target group", 2),
        ("vpc", 1),
    ])
}

/// Everything the emulator holds, by kind, leaving out what it makes by itself (the default
/// VPC and its parts, default security groups, main route tables, default listener rules).
async fn inventory(aws: &Aws) -> BTreeMap<&'static str, usize> {
    let mut n = BTreeMap::new();
    let vpcs = aws.ec2.describe_vpcs().send().await.unwrap();
    let own: Vec<String> = vpcs
        .vpcs()
        .iter()
        .filter(|v| v.is_default() != Some(true))
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    let in_own = |vpc: Option<&str>| vpc.is_some_and(|v| own.iter().any(|o| o == v));
    n.insert("vpc", own.len());
    let subnets = aws.ec2.describe_subnets().send().await.unwrap();
    n.insert(
        "subnet",
        subnets
            .subnets()
            .iter()
            .filter(|s| in_own(s.vpc_id()))
            .count(),
    );
    let gateways = aws.ec2.describe_internet_gateways().send().await.unwrap();
    n.insert(
        "internet gateway",
        gateways
            .internet_gateways()
            .iter()
            .filter(|g| {
                g.attachments().is_empty() || g.attachments().iter().any(|a| in_own(a.vpc_id()))
            })
            .count(),
    );
    let tables = aws.ec2.describe_route_tables().send().await.unwrap();
    n.insert(
        "route table",
        tables
            .route_tables()
            .iter()
            .filter(|t| in_own(t.vpc_id()))
            .filter(|t| !t.associations().iter().any(|a| a.main() == Some(true)))
            .count(),
    );
    let groups = aws.ec2.describe_security_groups().send().await.unwrap();
    n.insert(
        "security group",
        groups
            .security_groups()
            .iter()
            .filter(|g| in_own(g.vpc_id()) && g.group_name() != Some("default"))
            .count(),
    );
    let templates = aws.ec2.describe_launch_templates().send().await.unwrap();
    n.insert("launch template", templates.launch_templates().len());

    let lbs = aws.elb.describe_load_balancers().send().await.unwrap();
    n.insert("load balancer", lbs.load_balancers().len());
    let (mut listeners, mut rules) = (0, 0);
    for lb in lbs.load_balancers() {
        let found = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        listeners += found.listeners().len();
        for listener in found.listeners() {
            rules += aws
                .rules(listener.listener_arn().unwrap())
                .await
                .iter()
                .filter(|r| r.is_default() != Some(true))
                .count();
        }
    }
    n.insert("listener", listeners);
    n.insert("listener rule", rules);
    let tgs = aws.elb.describe_target_groups().send().await.unwrap();
    n.insert("target group", tgs.target_groups().len());

    let asgs = aws.asg.describe_auto_scaling_groups().send().await.unwrap();
    n.insert("auto scaling group", asgs.auto_scaling_groups().len());
    let policies = aws.asg.describe_policies().send().await.unwrap();
    // moto 5.2.1 keeps a deleted group's policies (AWS deletes them with the group).
    let of_a_group = |name: Option<&str>| {
        asgs.auto_scaling_groups()
            .iter()
            .any(|g| name.is_some() && g.auto_scaling_group_name() == name)
    };
    n.insert(
        "scaling policy",
        policies
            .scaling_policies()
            .iter()
            .filter(|p| of_a_group(p.auto_scaling_group_name()))
            .count(),
    );

    let dbs = aws.rds.describe_db_instances().send().await.unwrap();
    n.insert("db instance", dbs.db_instances().len());
    let db_groups = aws.rds.describe_db_subnet_groups().send().await.unwrap();
    n.insert(
        "db subnet group",
        db_groups
            .db_subnet_groups()
            .iter()
            .filter(|g| g.db_subnet_group_name() != Some("default"))
            .count(),
    );
    let certificates = aws.acm.list_certificates().send().await.unwrap();
    n.insert("certificate", certificates.certificate_summary_list().len());
    let buckets = aws.s3.list_buckets().send().await.unwrap();
    n.insert("bucket", buckets.buckets().len());
    let roles = aws
        .iam
        .list_roles()
        .path_prefix("/infra/")
        .send()
        .await
        .unwrap();
    n.insert("role", roles.roles().len());
    let profiles = aws
        .iam
        .list_instance_profiles()
        .path_prefix("/infra/")
        .send()
        .await
        .unwrap();
    n.insert("instance profile", profiles.instance_profiles().len());
    n
}

/// After whatever happened before: apply `stack` (closet, possibly edited) again, releasing a
/// lock a killed run left, then check that it converged: the plan is empty, every kind counts
/// what closet declares (no duplicates, nothing missing), and the lock is released.
async fn assert_converges(emulator: &Emulator, aws: &Aws, stack: &str, trial: &str) {
    if let Some(id) = aws.lock_holder_id(STACK).await {
        infra(
            &emulator.endpoint(),
            &["force-unlock", stack, &id, "--auto-approve"],
        )
        .assert_success();
    }
    let rerun = infra(&emulator.endpoint(), &["apply", stack, "--auto-approve"]);
    assert!(
        rerun.success(),
        "{trial}: the rerun failed:\n{}",
        rerun.output()
    );
    assert_no_changes(&emulator.endpoint(), stack, trial);
    assert_eq!(
        inventory(aws).await,
        closet_inventory(),
        "{trial}: what exists differs from the stack"
    );
    assert_eq!(
        aws.lock_holder_id(STACK).await,
        None,
        "{trial}: the lock was left behind"
    );
}

/// A hook that sends `signal` (`-KILL`, `-INT`) to the `infra` process whose pid is in `pid` at
/// the `at`-th mutating call (1-based, counted in `seen`), and answers that call with `answer`:
/// `Fault::LoseResponse` lets it reach the emulator but never answers it.
fn signal_at(
    at: usize,
    signal: &'static str,
    answer: Fault,
    pid: Arc<AtomicU32>,
    seen: Arc<AtomicUsize>,
) -> FaultHook {
    Arc::new(move |operation: &Operation, _| {
        if !operation.mutating || seen.fetch_add(1, Ordering::SeqCst) + 1 != at {
            return Fault::Forward;
        }
        let _ = std::process::Command::new("kill")
            .args([signal, &pid.load(Ordering::SeqCst).to_string()])
            .status();
        answer.clone()
    })
}

/// `infra apply STACK` through `proxy`, its pid in `pid` (for a hook that signals it), to the end.
fn apply_recording_pid(
    proxy: &CountingProxy,
    stack: &str,
    pid: &AtomicU32,
) -> std::process::Output {
    let child = infra_command(&proxy.endpoint(), &["apply", stack, "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("infra starts");
    pid.store(child.id(), Ordering::SeqCst);
    child.wait_with_output().expect("infra ends")
}

/// The number of mutating calls a clean apply of the reference stack makes.
async fn mutating_calls_of_a_clean_apply(emulator: &Emulator) -> usize {
    let proxy = CountingProxy::start(upstream(emulator));
    infra(
        &proxy.endpoint(),
        &["apply", &stack_file("closet.rs"), "--auto-approve"],
    )
    .assert_success();
    let count = proxy.mutating().len();
    emulator.reset();
    count
}

/// Kill the apply at each of `points` (mutating call numbers), then converge.
async fn crash_trials(emulator: &Emulator, points: &[usize]) {
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    for &point in points {
        emulator.reset();
        let pid = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        let proxy = CountingProxy::with_options(
            upstream(emulator),
            ProxyOptions {
                faults: Some(signal_at(
                    point,
                    "-KILL",
                    Fault::LoseResponse,
                    Arc::clone(&pid),
                    Arc::clone(&seen),
                )),
                ..ProxyOptions::default()
            },
        );
        let args = ["apply", stack.as_str(), "--auto-approve"];
        let mut child = infra_command(&proxy.endpoint(), &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("infra starts");
        pid.store(child.id(), Ordering::SeqCst);
        let status = child.wait().expect("infra ends");
        assert_eq!(
            status.code(),
            None,
            "trial {point}: the apply was not killed (it made {} mutating calls)",
            seen.load(Ordering::SeqCst)
        );
        drop(proxy);
        let trial = format!("killed at mutating call {point}");
        assert_converges(emulator, &aws, &stack, &trial).await;
    }
}

/// `count` kill points spread evenly over `1..=total`.
fn spread(total: usize, count: usize) -> Vec<usize> {
    let mut points: Vec<usize> = (0..count)
        .map(|i| 1 + i * (total - 1) / (count - 1))
        .collect();
    points.dedup();
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_24_points_of_an_apply_then_a_rerun_converges_without_duplicates() {
    // Two emulators, each taking every other point, so the trials run two at a time.
    let first = Emulator::start();
    let total = mutating_calls_of_a_clean_apply(&first).await;
    assert!(
        total >= 24,
        "a clean apply made only {total} mutating calls"
    );
    let points = spread(total, 24);
    let (even, odd): (Vec<_>, Vec<_>) = points.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let even: Vec<usize> = even.into_iter().map(|(_, p)| *p).collect();
    let odd: Vec<usize> = odd.into_iter().map(|(_, p)| *p).collect();
    let second = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    tokio::join!(crash_trials(&first, &even), crash_trials(&second, &odd));
    println!(
        "killed a {total}-call apply at {} points: {points:?}; every rerun converged",
        points.len()
    );
}

/// A fixed pseudo-random sequence (xorshift), so a failing run can be replayed.
fn chance(position: usize, seed: u64) -> u64 {
    let mut x = seed ^ (position as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x % 100
}

/// The NotFound code AWS gives for a describe-by-id of something just created.
fn not_found_code(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "DescribeVpcs" => "InvalidVpcID.NotFound",
        "DescribeSubnets" => "InvalidSubnetID.NotFound",
        "DescribeSecurityGroups" => "InvalidGroup.NotFound",
        "DescribeInternetGateways" => "InvalidInternetGatewayID.NotFound",
        "DescribeRouteTables" => "InvalidRouteTableID.NotFound",
        "DescribeLaunchTemplates" => "InvalidLaunchTemplateId.NotFound",
        "DescribeLoadBalancers" => "LoadBalancerNotFound",
        "DescribeTargetGroups" => "TargetGroupNotFound",
        "DescribeListeners" => "ListenerNotFound",
        "DescribeDBInstances" => "DBInstanceNotFound",
        _ => return None,
    })
}

/// Faults on about a fifth of all calls: throttling in each service's own format, 500 and 503,
/// dropped connections, lost answers to writes, and NotFound on the first describe by id after
/// a create (eventual consistency).
fn flaky(seed: u64, injected: Arc<Mutex<BTreeMap<&'static str, usize>>>) -> FaultHook {
    let after_create = Arc::new(AtomicBool::new(false));
    Arc::new(move |operation: &Operation, position| {
        let note = |kind: &'static str| {
            *injected.lock().unwrap().entry(kind).or_default() += 1;
        };
        if operation.name.starts_with("Create") {
            after_create.store(true, Ordering::SeqCst);
        } else if let Some(code) = not_found_code(&operation.name).filter(|_| operation.by_id()) {
            if after_create.swap(false, Ordering::SeqCst) && chance(position, seed) < 50 {
                note("not found after create");
                return Fault::error(operation, 400, code, "The resource does not exist");
            }
        }
        match chance(position, seed ^ 0xA5A5) {
            0..=4 => {
                note("throttling");
                Fault::throttle(operation)
            }
            5..=7 => {
                note("500");
                Fault::error(operation, 500, "InternalError", "injected")
            }
            8..=10 => {
                note("503");
                Fault::error(operation, 503, "ServiceUnavailable", "injected")
            }
            11..=13 => {
                note("dropped connection");
                Fault::Drop
            }
            14..=17 if operation.mutating => {
                note("lost response");
                Fault::LoseResponse
            }
            _ => Fault::Forward,
        }
    })
}

/// Run `infra args` through a proxy injecting `flaky(seed)` faults, counted in `injected`.
/// Whether it succeeded; a failure (past the retry budget) must be a clear error naming what
/// failed.
fn under_faults(
    emulator: &Emulator,
    seed: u64,
    injected: &Arc<Mutex<BTreeMap<&'static str, usize>>>,
    args: &[&str],
) -> bool {
    let proxy = CountingProxy::with_options(
        upstream(emulator),
        ProxyOptions {
            faults: Some(flaky(seed, Arc::clone(injected))),
            ..ProxyOptions::default()
        },
    );
    let started = std::time::Instant::now();
    let outcome = infra(&proxy.endpoint(), args);
    drop(proxy);
    let command = args[0];
    println!(
        "seed {seed}: {command} under faults took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if !outcome.success() {
        println!("seed {seed}: the {command} failed:\n{}", outcome.stderr);
        assert!(
            outcome.stderr.contains("error: failed to"),
            "seed {seed}: {}",
            outcome.output()
        );
    }
    outcome.success()
}

/// Each seed: an apply of closet under faults, a rerun without if it failed, then a destroy
/// under faults (and a rerun without if it failed) that must leave nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_the_wire_are_retried_and_never_make_a_duplicate() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    let injected = Arc::new(Mutex::new(BTreeMap::new()));
    let (mut applied, mut destroyed) = (0, 0);
    let seeds = [11, 23, 37, 41, 59];
    for seed in seeds {
        emulator.reset();
        let apply = ["apply", stack.as_str(), "--auto-approve", "-v"];
        applied += usize::from(under_faults(&emulator, seed, &injected, &apply));
        assert_converges(&emulator, &aws, &stack, &format!("faults with seed {seed}")).await;

        let destroy = [
            "destroy",
            stack.as_str(),
            "--auto-approve",
            "--allow-data-loss",
            "-v",
        ];
        if under_faults(&emulator, seed ^ 0xD0D0, &injected, &destroy) {
            destroyed += 1;
        } else {
            infra(&emulator.endpoint(), &destroy[..4]).assert_success();
        }
        let left: BTreeMap<_, _> = inventory(&aws)
            .await
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert!(left.is_empty(), "seed {seed}: destroy left {left:?}");
        assert_eq!(
            aws.lock_holder_id(STACK).await,
            None,
            "seed {seed}: lock left"
        );
    }
    println!(
        "{n} applies and {n} destroys under faults ({:?}): {applied} applies and {destroyed} destroys done in one run, all after a rerun, no duplicates, nothing left",
        injected.lock().unwrap(),
        n = seeds.len()
    );
    assert_nearly_all_at_once(applied, seeds.len(), "applies");
    assert_nearly_all_at_once(destroyed, seeds.len(), "destroys");
}

/// The retry budget absorbs a fifth of calls failing: all runs but at most one succeed at once.
fn assert_nearly_all_at_once(done: usize, runs: usize, what: &str) {
    assert!(
        done + 1 >= runs,
        "only {done} of {runs} {what} under faults succeeded at once"
    );
}

/// Changes under faults, to the stack and back: the backend target group replaced (new port,
/// its health check and the security-group rule admitting it); in place, the rule's path, both
/// target groups' deregistration delay, both Auto Scaling Groups' grace period, the CPU target
/// and the database's instance class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_under_faults_converge_without_duplicates() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let original = stack_file("closet.rs");
    infra(
        &emulator.endpoint(),
        &["apply", &original, "--auto-approve"],
    )
    .assert_success();
    let dir = crate::support::TempDir::new("changes-under-faults");
    let edits = [
        crate::support::BACKEND_ON_8081.as_slice(),
        &[
            (".path(\"/api/*\")", ".path(\"/v2/*\")"),
            (".deregistration_delay(30)", ".deregistration_delay(45)"),
            ("HealthCheckType::Elb, 120)", "HealthCheckType::Elb, 180)"),
            (".scale_on_cpu(50.0)", ".scale_on_cpu(60.0)"),
            ("\"db.t3.micro\"", "\"db.t3.small\""),
        ],
    ]
    .concat();
    let changed = crate::support::edited_stack(&dir, "closet.rs", &edits);
    let injected = Arc::new(Mutex::new(BTreeMap::new()));
    let mut done = 0;
    let seeds = [13, 29, 43, 61];
    for (i, seed) in seeds.into_iter().enumerate() {
        let (stack, port, class) = if i % 2 == 0 {
            (&changed, 8081, "db.t3.small")
        } else {
            (&original, 8080, "db.t3.micro")
        };
        let apply = ["apply", stack.as_str(), "--auto-approve", "-v"];
        done += usize::from(under_faults(&emulator, seed, &injected, &apply));
        let trial = format!("changes with seed {seed}");
        assert_converges(&emulator, &aws, stack, &trial).await;
        let backend = &aws.target_groups("closet").await["backend"];
        assert_eq!(backend.port(), Some(port), "{trial}");
        let db = &aws.db_instances("closet").await["db"];
        assert_eq!(db.db_instance_class(), Some(class), "{trial}");
    }
    println!(
        "{} changing applies under faults ({:?}): {done} done in one run, all after a rerun, no duplicates",
        seeds.len(),
        injected.lock().unwrap()
    );
    assert_nearly_all_at_once(done, seeds.len(), "changing applies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_what_runs_starts_nothing_new_and_releases_the_lock() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    let pid = Arc::new(AtomicU32::new(0));
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            // Slow enough that actions are in flight when the interrupt lands.
            latency: std::time::Duration::from_millis(150),
            faults: Some(signal_at(
                8,
                "-INT",
                Fault::Forward,
                Arc::clone(&pid),
                Arc::default(),
            )),
        },
    );
    let output = apply_recording_pid(&proxy, &stack, &pid);
    drop(proxy);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(130), "{all}");
    assert!(stdout.contains("Apply interrupted:"), "{all}");
    let (before, after) = stderr
        .split_once("Interrupted:")
        .unwrap_or_else(|| panic!("the interrupt is announced:\n{all}"));
    let started = |text: &str| text.lines().filter(|l| l.contains("Creating ")).count();
    let finished = |text: &str| text.lines().filter(|l| l.contains("Created ")).count();
    assert_eq!(
        started(after),
        0,
        "an action started after the interrupt:\n{all}"
    );
    assert!(started(before) > 0, "{all}");
    assert_eq!(
        started(before),
        finished(&stderr),
        "every action that started finished:\n{all}"
    );
    assert!(after.contains("not started: interrupted"), "{all}");
    assert_eq!(
        aws.lock_holder_id(STACK).await,
        None,
        "the lock is released:\n{all}"
    );
    assert_converges(&emulator, &aws, &stack, "after Ctrl-C").await;
}

/// Issue 18: a first Ctrl-C while calls are retrying ends their retries. CreateVpc (retried by
/// infra's own loop, `create_once`) and CreateBucket (retried by the SDK) answer 500 every time;
/// Ctrl-C lands at CreateVpc's second attempt. Each then stops short of its budget of 8, its
/// action fails as interrupted, the run exits 130 and the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_the_retries_of_calls_in_flight_and_exits_130() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    let pid = Arc::new(AtomicU32::new(0));
    let vpc_attempts = Arc::new(AtomicUsize::new(0));
    let interrupted_at = Arc::new(Mutex::new(None));
    let hook: FaultHook = {
        let (pid, vpc_attempts) = (Arc::clone(&pid), Arc::clone(&vpc_attempts));
        let interrupted_at = Arc::clone(&interrupted_at);
        Arc::new(move |operation: &Operation, _| {
            if operation.name == "CreateVpc" && vpc_attempts.fetch_add(1, Ordering::SeqCst) == 1 {
                *interrupted_at.lock().unwrap() = Some(std::time::Instant::now());
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &pid.load(Ordering::SeqCst).to_string()])
                    .status();
            }
            match operation.name.as_str() {
                "CreateVpc" | "CreateBucket" => {
                    Fault::error(operation, 500, "InternalError", "injected")
                }
                _ => Fault::Forward,
            }
        })
    };
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(hook),
            ..ProxyOptions::default()
        },
    );
    let output = apply_recording_pid(&proxy, &stack, &pid);
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(130), "{all}");
    assert!(all.contains("Apply interrupted:"), "{all}");
    // The interrupt lands while the second attempt is answered: no third (one more only if the
    // signal came late), where the budget is 8.
    let (vpc, bucket) = (proxy.count("CreateVpc"), proxy.count("CreateBucket"));
    if let Some(at) = *interrupted_at.lock().unwrap() {
        println!(
            "Ctrl-C to exit: {:.1}s; CreateVpc tried {vpc} times, CreateBucket {bucket} (budget 8)",
            at.elapsed().as_secs_f64()
        );
    }
    assert!(
        (2..=3).contains(&vpc),
        "CreateVpc was tried {vpc} times:\n{all}"
    );
    assert!(bucket < 8, "CreateBucket used its whole budget:\n{all}");
    // The log bucket: the first bucket created (the uploads bucket waits for it).
    for address in ["ec2_vpc.main", "s3_bucket.logs"] {
        assert!(
            all.contains(&format!("Interrupted create {address}")),
            "{address} is not reported as interrupted:\n{all}"
        );
    }
    assert!(
        all.contains("interrupted: not retried after ec2:CreateVpc: InternalError: injected"),
        "{all}"
    );
    assert_eq!(
        aws.lock_holder_id(STACK).await,
        None,
        "the lock is released:\n{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_retry_budget_apply_stops_with_the_error_and_a_rerun_finishes() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    // Every CreateTargetGroup is throttled, every time.
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(Arc::new(|operation: &Operation, _| {
                if operation.name == "CreateTargetGroup" {
                    Fault::throttle(operation)
                } else {
                    Fault::Forward
                }
            })),
            ..ProxyOptions::default()
        },
    );
    let mut command = infra_command(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]);
    command.env("AWS_MAX_ATTEMPTS", "3");
    let failed = run(command, &["apply", &stack, "--auto-approve"]);
    assert_eq!(failed.code, Some(1), "{}", failed.output());
    let stderr = &failed.stderr;
    assert!(
        stderr.contains("error: failed to create elbv2_target_group.frontend")
            || stderr.contains("error: failed to create elbv2_target_group.backend"),
        "{stderr}"
    );
    assert!(
        stderr.contains("elasticloadbalancing:CreateTargetGroup: Throttling: Rate exceeded"),
        "{stderr}"
    );
    assert!(
        failed.stdout.contains("Apply failed:") && failed.stdout.contains("not started"),
        "{}",
        failed.stdout
    );
    let attempts = proxy.count("CreateTargetGroup");
    assert_eq!(attempts, 6, "3 attempts for each of the two target groups");
    // What did not depend on the target groups was made; nothing of theirs was.
    let partial = inventory(&aws).await;
    assert_eq!(partial["vpc"], 1);
    assert_eq!(partial["target group"], 0);
    assert_eq!(partial["auto scaling group"], 0);
    drop(proxy);
    assert_converges(&emulator, &aws, &stack, "after a throttled apply").await;
}

/// A copy of the stack named `name`, with its own bucket, so it shares nothing with others.
fn renamed_closet(dir: &crate::support::TempDir, name: &str) -> String {
    crate::support::edited_stack(
        dir,
        "closet.rs",
        &[
            ("Stack::new(\"closet\"", &format!("Stack::new(\"{name}\"")),
            ("closet-uploads-apne2", &format!("{name}-uploads-apne2")),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_stops_apply_and_destroy_at_once_and_names_its_holder() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    // Another machine holds the lock.
    aws.take_lock_elsewhere(STACK).await;
    assert_refused_by_the_held_lock(upstream(&emulator), "apply", &stack, STACK);
    assert_eq!(inventory(&aws).await.get("vpc"), Some(&0));

    // Read-only commands do not need the lock.
    let plan = infra(
        &emulator.endpoint(),
        &["plan", &stack, "--detailed-exitcode"],
    );
    assert_eq!(plan.code, Some(2), "{}", plan.output());

    // Releasing needs the holder's id.
    let wrong = infra(
        &emulator.endpoint(),
        &["force-unlock", &stack, "1111111111111111", "--auto-approve"],
    );
    assert_eq!(wrong.code, Some(1));
    assert!(
        wrong.stderr.contains(&format!(
            "is locked with id {ELSEWHERE_LOCK_ID}, not 1111111111111111"
        )),
        "{}",
        wrong.stderr
    );
    let unlocked = infra(
        &emulator.endpoint(),
        &["force-unlock", &stack, ELSEWHERE_LOCK_ID, "--auto-approve"],
    );
    unlocked.assert_success();
    assert!(
        unlocked.stdout.contains("dana@build-7"),
        "{}",
        unlocked.output()
    );
    assert_eq!(aws.lock_holder_id(STACK).await, None);
    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    assert_eq!(aws.lock_holder_id(STACK).await, None);

    // Destroy is refused the same way, before deleting anything.
    aws.take_lock_elsewhere(STACK).await;
    assert_refused_by_the_held_lock(upstream(&emulator), "destroy", &stack, STACK);
    assert_eq!(inventory(&aws).await, closet_inventory());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_applies_at_once_one_runs_and_the_other_is_refused() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let dir = crate::support::TempDir::new("two-at-once");
    let stack = renamed_closet(&dir, "twice");
    // Compiled once beforehand, so both runs start from the cache at the same moment.
    infra(&emulator.endpoint(), &["validate", &stack]).assert_success();
    let args = ["apply", stack.as_str(), "--auto-approve"];
    // Both plan at the same time, then race for the lock; the winner holds it for the whole
    // apply, which takes seconds.
    let first = infra_command(&emulator.endpoint(), &args);
    let second = infra_command(&emulator.endpoint(), &args);
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| run(first, &args));
        let b = scope.spawn(|| run(second, &args));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (won, lost) = if a.success() { (a, b) } else { (b, a) };
    won.assert_success();
    assert_eq!(lost.code, Some(1), "both applies ran:\n{}", lost.output());
    assert!(
        lost.stderr.contains("error: stack `twice` is locked by"),
        "{}",
        lost.stderr
    );
    let lbs = aws.load_balancers("twice").await;
    assert_eq!(lbs.len(), 1, "one load balancer, not two");
}
