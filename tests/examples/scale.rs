//! Scale benchmark: plans and applies of stacks of N services on one shared network, against a
//! private moto emulator behind a counting proxy that adds a fixed latency to every AWS call.
//!
//! `cargo run -p infra-tests --example scale -- [--latency-ms 50] [--sizes 1,10,50]`
//!
//! For each N it measures, on a freshly reset emulator:
//! - a serial calibration apply (concurrency 1, client pacing off): the API calls and the time of
//!   every action alone, which weight the plan's dependency graph for its critical path;
//! - the from-scratch apply as users run it (`ApplyOptions::default()`, `AwsOptions::default()`):
//!   wall time and calls by operation;
//! - no-change plans right after, each from a new provider (as a new `infra plan` process
//!   would): wall time (median of 5), calls by operation, and the waves of calls; and the same
//!   plan straight to moto, without the added latency;
//! - the same apply again from scratch with pacing off and no concurrency limit, to separate the
//!   engine's scheduling from the client-side rate limits;
//! - the refresh a Terraform-style tool would need for the same resources (one read call per
//!   attribute group per resource, 10 in parallel), as the baseline.
//!
//! The Markdown report goes to stdout, progress to stderr. The engine-only numbers at 1,000
//! resources come from `cargo bench -p infra-core --features testing --bench plan`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::error::Error;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infra_aws::pacing::Meter;
use infra_aws::{AwsOptions, AwsProvider};
use infra_core::engine::{self, ApplyOptions, Change, Hook, Outcome, Plan, PlanOptions};
use infra_core::prelude::*;
use infra_core::Kind;
use infra_tests::proxy::{CountingProxy, Fault, FaultHook, Operation, ProxyOptions};
use infra_tests::Emulator;

type Res<T> = Result<T, Box<dyn Error>>;

/// Terraform's default `-parallelism`.
const TERRAFORM_PARALLELISM: usize = 10;

/// Runs of each no-change plan; the median is reported.
const PLAN_RUNS: usize = 5;

struct Args {
    latency: Duration,
    sizes: Vec<usize>,
}

fn args() -> Res<Args> {
    let mut parsed = Args {
        latency: Duration::from_millis(50),
        sizes: vec![1, 10, 50],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--latency-ms" => parsed.latency = Duration::from_millis(value.parse()?),
            "--sizes" => {
                parsed.sizes = value
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown flag {other} (--latency-ms, --sizes)").into()),
        }
    }
    if parsed.sizes.is_empty() || parsed.sizes.contains(&0) {
        return Err("--sizes needs positive numbers".into());
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------------
// The generated stack
// ---------------------------------------------------------------------------------------------

fn user_data(i: usize) -> String {
    format!(
        "#!/bin/bash\nset -euo pipefail\ndnf install -y docker\nsystemctl enable --now docker\n\
         docker run -d --restart unless-stopped -p 8080:8080 ghcr.io/example/svc{i}:latest\n"
    )
}

/// N services behind one ALB: a shared network (VPC, two public subnets, internet gateway, route
/// table, the ALB's group, the ALB, an HTTP listener) and per service a security group, a target
/// group, a path rule, a launch template and an Auto Scaling Group: 8 + 5N resources.
fn generated_stack(n: usize) -> Stack {
    let mut s = Stack::new(format!("scale-{n}"), "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let public_a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    let public_c = s.add(
        "public_c",
        Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"),
    );
    let igw = s.add("gateway", InternetGateway::new(&vpc));
    s.add(
        "public",
        RouteTable::new(&vpc)
            .route("0.0.0.0/0", &igw)
            .associate(&public_a)
            .associate(&public_c),
    );
    let alb_sg = s.add(
        "alb",
        SecurityGroup::new(&vpc, "Load balancer: HTTP from anywhere")
            .ingress(Rule::tcp(80).from_anywhere()),
    );
    let alb = s.add(
        "alb",
        LoadBalancer::internet_facing(&[&public_a, &public_c], &[&alb_sg]),
    );
    let http = s.add(
        "http",
        Listener::http(&alb, 80).default_action(ListenerAction::fixed_response(404, "Not Found")),
    );
    s.allow_lint(
        "INFRA-ELB-001",
        "benchmark stack: no certificate, the services are served on plain HTTP",
    );
    for i in 1..=n {
        let id = format!("svc{i}");
        let sg = s.add(
            &id,
            SecurityGroup::new(&vpc, format!("Service {i}: 8080 from the load balancer"))
                .ingress(Rule::tcp(8080).from_group(&alb_sg)),
        );
        let tg = s.add(
            &id,
            TargetGroup::http(&vpc, 8080)
                .health_check(HealthCheck::http("/health"))
                .deregistration_delay(30),
        );
        let priority = u32::try_from(i).expect("a small priority");
        s.add(
            &id,
            ListenerRule::new(&http, priority)
                .path(format!("/svc{i}/*"))
                .forward(&tg),
        );
        let lt = s.add(
            &id,
            LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
                .security_group(&sg)
                .user_data(user_data(i)),
        );
        s.add(
            &id,
            AutoScalingGroup::new(&lt, &[&public_a, &public_c], 1, 2)
                .target_group(&tg)
                .health_check(HealthCheckType::Elb, 120),
        );
    }
    s.output("alb_dns_name", alb.dns_name());
    s
}

// ---------------------------------------------------------------------------------------------
// The Terraform-style baseline
// ---------------------------------------------------------------------------------------------

/// Read calls a Terraform AWS provider (v5) makes to refresh one resource, how many Terraform
/// resources the infra resource stands for (route-table associations are separate resources
/// there), and how many of the calls follow one another (a resource's reads are sequential; the
/// associations are read in parallel after their table). Assumed, from the provider's Read
/// functions:
/// - VPC 7: DescribeVpcs, DescribeVpcAttribute x3 (DNS support, DNS hostnames, network address
///   usage metrics), the main route table, the default security group, the default network ACL;
/// - subnet, internet gateway, security group (inline rules): 1 describe each;
/// - route table 1, plus 1 per `aws_route_table_association`;
/// - load balancer and target group 3: describe, attributes, tags;
/// - listener and listener rule 2: describe, tags;
/// - launch template 2: the template and its versions;
/// - Auto Scaling Group 3: the group, its traffic sources, its warm pool;
/// - certificate 2, DB subnet group 2, DB instance 2 (describe, tags);
/// - S3 bucket 15: location, ACL, CORS, website, versioning, accelerate, request payment,
///   logging, lifecycle, replication, encryption, object lock, policy, tags, public access block;
/// - IAM role 7 over 4 resources: `aws_iam_role` (GetRole, ListRolePolicies,
///   ListAttachedRolePolicies), `aws_iam_instance_profile` (GetInstanceProfile),
///   `aws_iam_role_policy` (GetRolePolicy), `aws_iam_role_policy_attachment`
///   (ListAttachedRolePolicies).
struct Reads {
    calls: usize,
    resources: usize,
    sequential: usize,
}

fn terraform_reads(resource: &Resource) -> Reads {
    let (calls, resources, sequential) = match resource {
        Resource::Vpc(_) => (7, 1, 7),
        Resource::RouteTable(rt) => {
            let associations = rt.subnets.len();
            (1 + associations, 1 + associations, 1 + associations.min(1))
        }
        Resource::Subnet(_) | Resource::InternetGateway(_) | Resource::SecurityGroup(_) => {
            (1, 1, 1)
        }
        Resource::LoadBalancer(_) | Resource::TargetGroup(_) | Resource::AutoScalingGroup(_) => {
            (3, 1, 3)
        }
        Resource::Listener(_)
        | Resource::ListenerRule(_)
        | Resource::LaunchTemplate(_)
        | Resource::Certificate(_)
        | Resource::DbSubnetGroup(_)
        | Resource::DbInstance(_) => (2, 1, 2),
        Resource::Bucket(_) => (15, 1, 15),
        Resource::Role(_) => (7, 4, 4),
        Resource::HostedZone(_) | Resource::Record(_) => (1, 1, 1),
    };
    Reads {
        calls,
        resources,
        sequential,
    }
}

struct Baseline {
    resources: usize,
    calls: usize,
    /// `ceil(calls / 10) x latency`: 10 reads always in flight.
    wall: Duration,
    /// Also no faster than the longest dependency chain of sequential reads (Terraform refreshes
    /// a resource in its graph walk, after what it depends on).
    ordered_wall: Duration,
    /// The same reads under infra's client pacing: no faster than their bucket allows either.
    paced_wall: Duration,
}

fn baseline(stack: &Stack, plan: &Plan, latency: Duration) -> Baseline {
    let reads: Vec<Reads> = stack
        .resources
        .iter()
        .map(|d| terraform_reads(&d.resource))
        .collect();
    let calls: usize = reads.iter().map(|r| r.calls).sum();
    let resources = reads.iter().map(|r| r.resources).sum();
    let sequential: HashMap<Address, usize> = stack
        .resources
        .iter()
        .zip(&reads)
        .map(|(d, r)| (d.address(), r.sequential))
        .collect();
    let (chain, _) = heaviest_chain(plan, |i| {
        sequential
            .get(&plan.changes[i].address)
            .map_or(0.0, |&s| s as f64)
    });
    let rounds = calls.div_ceil(TERRAFORM_PARALLELISM);
    let ordered = rounds.max(chain as usize);
    let ordered_wall = latency * u32::try_from(ordered).expect("a small count");
    let mut per_meter: HashMap<Meter, usize> = HashMap::new();
    for (d, r) in stack.resources.iter().zip(&reads) {
        *per_meter.entry(read_meter(d.resource.kind())).or_default() += r.calls;
    }
    let floor = per_meter
        .iter()
        .map(|(meter, &calls)| meter.floor(calls))
        .max()
        .unwrap_or_default();
    Baseline {
        resources,
        calls,
        wall: latency * u32::try_from(rounds).expect("a small count"),
        ordered_wall,
        paced_wall: ordered_wall.max(floor),
    }
}

/// The bucket a Terraform-style read of `kind` would draw from under infra's pacing.
fn read_meter(kind: Kind) -> Meter {
    let service = match kind {
        Kind::Vpc
        | Kind::Subnet
        | Kind::InternetGateway
        | Kind::RouteTable
        | Kind::SecurityGroup
        | Kind::LaunchTemplate => "ec2",
        Kind::LoadBalancer | Kind::TargetGroup | Kind::Listener | Kind::ListenerRule => {
            "elasticloadbalancing"
        }
        Kind::DbInstance | Kind::DbSubnetGroup => "rds",
        _ => "",
    };
    Meter::of(service, "Describe")
}

// ---------------------------------------------------------------------------------------------
// Recording calls and actions
// ---------------------------------------------------------------------------------------------

/// The counting proxy plus the moment each request arrived (taken in the proxy's fault hook,
/// which sees every request before the added latency).
struct Recorder {
    proxy: CountingProxy,
    arrivals: Arc<Mutex<Vec<(usize, Instant)>>>,
}

impl Recorder {
    fn start(upstream: SocketAddr, latency: Duration) -> Recorder {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&arrivals);
        let faults: FaultHook = Arc::new(move |_: &Operation, position: usize| {
            log.lock()
                .expect("arrivals")
                .push((position, Instant::now()));
            Fault::Forward
        });
        let proxy = CountingProxy::with_options(
            upstream,
            ProxyOptions {
                latency,
                faults: Some(faults),
            },
        );
        Recorder { proxy, arrivals }
    }

    /// Requests seen since the last clear.
    fn count(&self) -> usize {
        self.arrivals.lock().expect("arrivals").len()
    }

    /// Forget everything; only between phases, when no request is in flight.
    fn clear(&self) {
        self.proxy.clear();
        self.arrivals.lock().expect("arrivals").clear();
    }

    /// The calls since the last clear, each with its arrival time, in arrival order.
    fn calls(&self) -> Vec<(Operation, Instant)> {
        let operations = self.proxy.operations();
        let mut arrivals = self.arrivals.lock().expect("arrivals").clone();
        arrivals.sort_by_key(|&(position, _)| position);
        let mut calls: Vec<_> = operations
            .into_iter()
            .zip(arrivals)
            .map(|(op, (_, at))| (op, at))
            .collect();
        calls.sort_by_key(|(_, at)| *at);
        calls
    }
}

/// One action of an apply: when it ran (from the apply's start) and, in a serial apply, the API
/// calls it made.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: Duration,
    end: Duration,
    calls_before: usize,
    calls: usize,
}

/// A hook that timestamps every action and counts the proxy's requests across it.
struct Timeline<'a> {
    recorder: &'a Recorder,
    origin: Instant,
    spans: Mutex<BTreeMap<Address, Span>>,
}

impl<'a> Timeline<'a> {
    fn new(recorder: &'a Recorder) -> Timeline<'a> {
        Timeline {
            recorder,
            origin: Instant::now(),
            spans: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Hook for Timeline<'_> {
    fn before(&self, change: &Change) {
        let span = Span {
            start: self.origin.elapsed(),
            calls_before: self.recorder.count(),
            ..Span::default()
        };
        self.spans
            .lock()
            .expect("spans")
            .insert(change.address.clone(), span);
    }

    fn after(&self, change: &Change, _outcome: &Outcome, _elapsed: Duration) {
        if let Some(span) = self.spans.lock().expect("spans").get_mut(&change.address) {
            span.end = self.origin.elapsed();
            span.calls = self.recorder.count().saturating_sub(span.calls_before);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Analysis
// ---------------------------------------------------------------------------------------------

/// The heaviest chain of dependent changes in the plan's edges: its total weight and its
/// changes, first to last.
fn heaviest_chain(plan: &Plan, weight: impl Fn(usize) -> f64) -> (f64, Vec<usize>) {
    let n = plan.changes.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for &(from, to) in &plan.edges {
        preds[to].push(from);
        succs[from].push(to);
        indegree[to] += 1;
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let i = order[next];
        next += 1;
        for &j in &succs[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                order.push(j);
            }
        }
    }
    let mut best = vec![0.0f64; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    for &i in &order {
        let from = preds[i]
            .iter()
            .copied()
            .max_by(|&a, &b| best[a].total_cmp(&best[b]));
        best[i] = weight(i) + from.map_or(0.0, |p| best[p]);
        via[i] = from;
    }
    let Some(mut last) = (0..n).max_by(|&a, &b| best[a].total_cmp(&best[b])) else {
        return (0.0, Vec::new());
    };
    let total = best[last];
    let mut chain = vec![last];
    while let Some(p) = via[last] {
        chain.push(p);
        last = p;
    }
    chain.reverse();
    (total, chain)
}

/// The wall time of the plan's actions on `slots` workers if every action took its serial time:
/// the apply walker's own rule (start the lowest-numbered ready change whenever a slot is free).
fn scheduled(plan: &Plan, duration: impl Fn(usize) -> f64, slots: usize) -> f64 {
    let n = plan.changes.len();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for &(from, to) in &plan.edges {
        succs[from].push(to);
        waiting[to] += 1;
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut running: Vec<(f64, usize)> = Vec::new();
    let mut now = 0.0f64;
    loop {
        while running.len() < slots.max(1) {
            let Some(i) = ready.pop_first() else { break };
            running.push((now + duration(i), i));
        }
        let Some(first) = (0..running.len()).min_by(|&a, &b| running[a].0.total_cmp(&running[b].0))
        else {
            return now;
        };
        let (end, i) = running.swap_remove(first);
        now = end;
        for &j in &succs[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.insert(j);
            }
        }
    }
}

/// Least time the client-side pacing allows for these calls, and the bucket that sets it.
fn pacing_floor(calls: &[(Operation, Instant)]) -> (Duration, &'static str) {
    let mut per_meter: HashMap<Meter, usize> = HashMap::new();
    for (op, _) in calls {
        *per_meter
            .entry(Meter::of(&op.service, &op.name))
            .or_default() += 1;
    }
    per_meter
        .iter()
        .map(|(meter, &calls)| (meter.floor(calls), meter.name()))
        .filter(|&(d, _)| !d.is_zero())
        .max_by_key(|&(d, _)| d)
        .unwrap_or((Duration::ZERO, "no bucket runs dry"))
}

/// Waves of calls: a call starts a new wave when it arrives after every call of the current wave
/// was answered. A call's answer is taken as its arrival plus the added latency (a lower bound:
/// moto's own service time comes on top).
fn waves(calls: &[(Operation, Instant)], latency: Duration) -> usize {
    let mut count = 0;
    let mut answered: Option<Instant> = None;
    for (_, at) in calls {
        match answered {
            Some(end) if *at < end => answered = Some(end.max(*at + latency)),
            _ => {
                count += 1;
                answered = Some(*at + latency);
            }
        }
    }
    count
}

fn by_operation(calls: &[(Operation, Instant)]) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    for (op, _) in calls {
        *map.entry(op.name.clone()).or_insert(0) += 1;
    }
    map
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// Peak resident set size of this process, in MB (`VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// One size
// ---------------------------------------------------------------------------------------------

struct Measured {
    n: usize,
    resources: usize,
    actions: usize,
    apply_wall: Duration,
    apply_calls: Vec<(Operation, Instant)>,
    /// Unweighted: the most actions in one dependency chain.
    chain_actions: usize,
    /// Critical path weighted by calls x latency, and its calls.
    cp_calls: usize,
    cp_latency: Duration,
    /// Critical path weighted by each action's measured serial duration.
    cp_measured: Duration,
    cp_chain: Vec<(Address, usize, Duration)>,
    serial_total: Duration,
    serial_calls: usize,
    /// The serial action times laid out on the default number of slots.
    scheduled_10: Duration,
    pacing_floor: (Duration, &'static str),
    unpaced_wall: Duration,
    unpaced_calls: usize,
    noop_wall: Duration,
    noop_calls: Vec<(Operation, Instant)>,
    noop_waves: usize,
    noop_changes: usize,
    /// The same no-change plan through a proxy that adds no latency: moto and client time only.
    noop_bare_wall: Duration,
    baseline: Baseline,
    failures: Vec<String>,
}

/// `AwsProvider::connect` with the endpoint taken from `AWS_ENDPOINT_URL`, set to `endpoint`
/// (the configuration is read once, here).
async fn connect(endpoint: &str, stack: &Stack, pacing: bool) -> AwsProvider {
    std::env::set_var("AWS_ENDPOINT_URL", endpoint);
    AwsProvider::connect(
        &stack.region,
        AwsOptions {
            pacing,
            ..AwsOptions::default()
        },
    )
    .await
}

/// An apply: its plan, its actions' spans, its wall time, and what failed or was skipped.
struct Applied<'r> {
    plan: Plan,
    timeline: Timeline<'r>,
    wall: Duration,
    failures: Vec<String>,
}

/// Plan from scratch (also warms moto up after a reset), then apply with `options`, recording.
async fn plan_and_apply<'r>(
    stack: &Stack,
    provider: &AwsProvider,
    recorder: &'r Recorder,
    options: &ApplyOptions,
) -> Res<Applied<'r>> {
    let plan = engine::plan(stack, provider, &PlanOptions::default()).await?;
    recorder.clear();
    let timeline = Timeline::new(recorder);
    let started = Instant::now();
    let result = engine::apply(&plan, stack, provider, options, &timeline).await?;
    let wall = started.elapsed();
    let failures = result
        .failed
        .iter()
        .map(|(address, error)| format!("{address}: {error}"))
        .chain(result.skipped.iter().map(|a| format!("{a}: skipped")))
        .collect();
    Ok(Applied {
        plan,
        timeline,
        wall,
        failures,
    })
}

async fn measure(
    n: usize,
    emulator: &Emulator,
    recorder: &Recorder,
    bare: &CountingProxy,
    latency: Duration,
) -> Res<Measured> {
    let endpoint = recorder.proxy.endpoint();
    let stack = generated_stack(n);
    let report = infra_core::validate::check(&stack);
    if report.errors().count() > 0 || report.warnings().count() > 0 {
        eprintln!("{}", report.render());
    }
    if report.has_errors() {
        return Err(format!("the generated stack for N={n} is not valid").into());
    }
    let mut failures = Vec::new();

    // 1. Calibration: one action at a time, no pacing: calls and time of every action alone.
    eprintln!("N={n}: serial calibration apply");
    emulator.reset();
    let unpaced = connect(&endpoint, &stack, false).await;
    let serial = ApplyOptions {
        concurrency: 1,
        ..ApplyOptions::default()
    };
    let calibration = plan_and_apply(&stack, &unpaced, recorder, &serial).await?;
    failures.extend(calibration.failures);
    let serial_wall = calibration.wall;
    let weights: HashMap<Address, Span> = calibration
        .timeline
        .spans
        .lock()
        .expect("spans")
        .iter()
        .map(|(a, s)| (a.clone(), *s))
        .collect();
    let serial_calls = recorder.count();
    eprintln!(
        "N={n}: serial apply {} with {serial_calls} calls",
        secs(serial_wall)
    );

    // 2. The apply as users run it.
    eprintln!("N={n}: default apply");
    emulator.reset();
    let provider = connect(&endpoint, &stack, true).await;
    let applied = plan_and_apply(&stack, &provider, recorder, &ApplyOptions::default()).await?;
    failures.extend(applied.failures);
    let (plan, apply_wall) = (applied.plan, applied.wall);
    let apply_calls = recorder.calls();
    eprintln!(
        "N={n}: apply {} with {} calls",
        secs(apply_wall),
        apply_calls.len()
    );

    // 3. No-change plans right after, each from a new provider (as a new `infra plan` process),
    //    through the latency proxy and then straight to moto; the median of a few runs of each.
    let mut timed = Vec::new();
    let mut noop_changes = 0;
    for _ in 0..PLAN_RUNS {
        let fresh = connect(&endpoint, &stack, true).await;
        recorder.clear();
        let started = Instant::now();
        let again = engine::plan(&stack, &fresh, &PlanOptions::default()).await?;
        timed.push((started.elapsed(), recorder.calls()));
        let changes = again
            .changes
            .iter()
            .filter(|c| c.action != engine::Action::NoOp)
            .count();
        if changes > 0 {
            eprintln!(
                "N={n}: the plan after apply is not empty:\n{}",
                engine::render_plan(&again, false)
            );
            noop_changes = noop_changes.max(changes);
        }
    }
    if noop_changes > 0 {
        failures.push(format!(
            "{noop_changes} change(s) planned right after apply"
        ));
    }
    timed.sort_by_key(|(wall, _)| *wall);
    let (noop_wall, noop_calls) = timed.swap_remove(PLAN_RUNS / 2);
    eprintln!(
        "N={n}: no-change plan {} (median of {PLAN_RUNS}) with {} calls",
        secs(noop_wall),
        noop_calls.len()
    );
    let mut bare_walls = Vec::new();
    for _ in 0..PLAN_RUNS {
        let direct = connect(&bare.endpoint(), &stack, true).await;
        let started = Instant::now();
        engine::plan(&stack, &direct, &PlanOptions::default()).await?;
        bare_walls.push(started.elapsed());
    }
    bare_walls.sort();
    let noop_bare_wall = bare_walls[PLAN_RUNS / 2];

    // 4. The engine's scheduling alone: no pacing, no concurrency limit.
    eprintln!("N={n}: unpaced, unbounded apply");
    emulator.reset();
    let unbounded = ApplyOptions {
        concurrency: stack.resources.len().max(1),
        ..ApplyOptions::default()
    };
    let loose = plan_and_apply(&stack, &unpaced, recorder, &unbounded).await?;
    failures.extend(loose.failures);
    let unpaced_wall = loose.wall;
    let unpaced_calls = recorder.count();

    // The critical path of the measured plan, weighted from the calibration.
    let span_of = |i: usize| weights.get(&plan.changes[i].address).copied();
    let (_, by_count) = heaviest_chain(&plan, |_| 1.0);
    let (cp_calls, cp_chain) =
        heaviest_chain(&plan, |i| span_of(i).map_or(0.0, |s| s.calls as f64));
    let (cp_measured, _) = heaviest_chain(&plan, |i| {
        span_of(i).map_or(0.0, |s| (s.end - s.start).as_secs_f64())
    });
    let cp_calls = cp_calls as usize;
    let serial_total = weights.values().map(|s| s.end - s.start).sum();
    let scheduled_10 = scheduled(
        &plan,
        |i| span_of(i).map_or(0.0, |s| (s.end - s.start).as_secs_f64()),
        ApplyOptions::default().concurrency,
    );

    Ok(Measured {
        n,
        resources: stack.resources.len(),
        actions: plan.changes.len(),
        pacing_floor: pacing_floor(&apply_calls),
        apply_wall,
        apply_calls,
        chain_actions: by_count.len(),
        cp_calls,
        cp_latency: latency * u32::try_from(cp_calls).expect("a small count"),
        cp_measured: Duration::from_secs_f64(cp_measured),
        cp_chain: cp_chain
            .iter()
            .map(|&i| {
                let span = span_of(i).unwrap_or_default();
                (
                    plan.changes[i].address.clone(),
                    span.calls,
                    span.end - span.start,
                )
            })
            .collect(),
        serial_total,
        serial_calls,
        scheduled_10: Duration::from_secs_f64(scheduled_10),
        unpaced_wall,
        unpaced_calls,
        noop_wall,
        noop_waves: waves(&noop_calls, latency),
        noop_calls,
        noop_changes,
        noop_bare_wall,
        baseline: baseline(&stack, &plan, latency),
        failures,
    })
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn operations_table(
    title: &str,
    results: &[Measured],
    calls: impl Fn(&Measured) -> &[(Operation, Instant)],
) {
    let per_size: Vec<BTreeMap<String, usize>> =
        results.iter().map(|m| by_operation(calls(m))).collect();
    let names: BTreeSet<&String> = per_size.iter().flat_map(|m| m.keys()).collect();
    println!("\n### {title}\n");
    let header: Vec<String> = results.iter().map(|m| format!("N={}", m.n)).collect();
    println!("| operation | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(results.len()));
    for name in names {
        let cells: Vec<String> = per_size
            .iter()
            .map(|m| m.get(name).copied().unwrap_or(0).to_string())
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = results.iter().map(|m| calls(m).len().to_string()).collect();
    println!("| **total** | {} |", totals.join(" | "));
}

fn report(results: &[Measured], latency: Duration) {
    let l = latency.as_secs_f64();
    println!("## Results: latency {} ms per call\n", latency.as_millis());

    println!("### From-scratch apply vs its critical path\n");
    println!("The apply as users run it: `ApplyOptions::default()` ({} actions at once), `AwsOptions::default()`. The critical path is the heaviest chain of the plan's dependency edges, each action weighted by the API calls it made in the serial calibration apply (× latency), or by its measured serial time.\n", ApplyOptions::default().concurrency);
    println!("| N | resources | API calls | apply wall | longest chain (actions) | critical path: calls | critical path: calls × latency | apply wall / critical path (calls × latency) | critical path: serial times | apply wall / critical path (serial times) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.n,
            m.resources,
            m.apply_calls.len(),
            secs(m.apply_wall),
            m.chain_actions,
            m.cp_calls,
            secs(m.cp_latency),
            ratio(m.apply_wall.as_secs_f64(), m.cp_latency.as_secs_f64()),
            secs(m.cp_measured),
            ratio(m.apply_wall.as_secs_f64(), m.cp_measured.as_secs_f64()),
        );
    }

    println!("\n### What bounds the apply\n");
    println!("| N | apply wall | serial times on the default slots (the walker's order) | apply wall / that schedule | moto service time (est., serial run) | client pacing floor (bucket) | pacing visible in the wall? | apply wall / max(critical path (serial times), pacing floor) | unpaced, unbounded apply wall | its / critical path (serial times) |");
    println!("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    for m in results {
        let moto = m
            .serial_total
            .saturating_sub(latency * u32::try_from(m.serial_calls).expect("small"));
        let visible = if m.pacing_floor.0.is_zero() {
            "nothing to pace"
        } else if m.apply_wall >= m.pacing_floor.0 {
            "yes"
        } else {
            "**no: the wall is under the floor**"
        };
        let bound = m.cp_measured.max(m.pacing_floor.0);
        println!(
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
            m.n,
            secs(m.apply_wall),
            secs(m.scheduled_10),
            ratio(m.apply_wall.as_secs_f64(), m.scheduled_10.as_secs_f64()),
            secs(moto),
            secs(m.pacing_floor.0),
            m.pacing_floor.1,
            visible,
            ratio(m.apply_wall.as_secs_f64(), bound.as_secs_f64()),
            secs(m.unpaced_wall),
            ratio(m.unpaced_wall.as_secs_f64(), m.cp_measured.as_secs_f64()),
        );
    }

    println!("\n### No-change plan right after the apply, vs a Terraform-style refresh\n");
    println!("| N | resources (Terraform resources) | plan API calls | plan wall (median of 5) | wall / latency | waves | same plan, no added latency (median of 5) | client pacing floor | Terraform-style reads | Terraform-style wall: ceil(reads/10) × latency | same, no faster than its longest read chain | same, under infra's pacing | calls: infra / baseline | wall: infra / baseline (ceil formula) | wall: infra / baseline (chain-aware) | wall: infra / baseline (chain-aware, paced) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        println!(
            "| {} | {} ({}) | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.n,
            m.resources,
            m.baseline.resources,
            m.noop_calls.len(),
            secs(m.noop_wall),
            m.noop_wall.as_secs_f64() / l,
            m.noop_waves,
            secs(m.noop_bare_wall),
            secs(pacing_floor(&m.noop_calls).0),
            m.baseline.calls,
            secs(m.baseline.wall),
            secs(m.baseline.ordered_wall),
            secs(m.baseline.paced_wall),
            ratio(m.noop_calls.len() as f64, m.baseline.calls as f64),
            ratio(m.noop_wall.as_secs_f64(), m.baseline.wall.as_secs_f64()),
            ratio(
                m.noop_wall.as_secs_f64(),
                m.baseline.ordered_wall.as_secs_f64()
            ),
            ratio(
                m.noop_wall.as_secs_f64(),
                m.baseline.paced_wall.as_secs_f64()
            ),
        );
    }

    operations_table("No-change plan: calls by operation", results, |m| {
        &m.noop_calls
    });
    operations_table("From-scratch apply: calls by operation", results, |m| {
        &m.apply_calls
    });

    println!("\n### Calibration (serial apply, pacing off) and the unpaced run\n");
    println!("| N | actions | serial apply: calls | sum of action times | moto service time (est.: sum − calls × latency) | unpaced, unbounded apply: calls |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for m in results {
        let moto = m
            .serial_total
            .saturating_sub(latency * u32::try_from(m.serial_calls).expect("small"));
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            m.n,
            m.actions,
            m.serial_calls,
            secs(m.serial_total),
            secs(moto),
            m.unpaced_calls
        );
    }

    if let Some(m) = results.last() {
        println!("\n### Critical path at N={} (by calls)\n", m.n);
        println!("| action | calls | serial time |");
        println!("|---|---:|---:|");
        for (address, calls, time) in &m.cp_chain {
            println!("| {address} | {calls} | {} |", secs(*time));
        }
    }

    let failures: Vec<String> = results
        .iter()
        .flat_map(|m| m.failures.iter().map(move |f| format!("N={}: {f}", m.n)))
        .collect();
    let leftover: usize = results.iter().map(|m| m.noop_changes).sum();
    println!("\n### Failures\n");
    if failures.is_empty() && leftover == 0 {
        println!("None: every apply succeeded and every plan after it was empty.");
    } else {
        for f in failures {
            println!("- {f}");
        }
    }

    match peak_rss_mb() {
        Some(mb) => println!("\nPeak RSS of this benchmark process (VmHWM): {mb:.1} MB"),
        None => println!("\nPeak RSS of this benchmark process: not available"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let args = args()?;
    let emulator = Emulator::start();
    let upstream: SocketAddr = ([127, 0, 0, 1], emulator.port()).into();
    let recorder = Recorder::start(upstream, args.latency);
    let bare = CountingProxy::start(upstream);
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(key, value);
    }
    let started = Instant::now();
    let mut results = Vec::new();
    for &n in &args.sizes {
        results.push(measure(n, &emulator, &recorder, &bare, args.latency).await?);
    }
    report(&results, args.latency);
    eprintln!("benchmark took {}", secs(started.elapsed()));
    Ok(())
}
