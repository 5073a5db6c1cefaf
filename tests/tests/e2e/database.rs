//! Issue 19: a database's IAM authentication, Performance Insights and enhanced monitoring, read
//! back through RDS's DescribeDBInstances after each apply; IAM authentication switched off and
//! on again in place; the role's `rds-db:connect` grant checked through IAM; a monitoring role
//! RDS refuses at first (IAM propagation, from the fault proxy) waited out; modifies refused
//! while the instance is busy (backing up) sent again once it is available.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_rds::types::DbInstance;
use infra_tests::iam::{allow, inline_policy, statements};
use infra_tests::proxy::{CountingProxy, Fault, Operation, ProxyOptions};
use infra_tests::Emulator;

use crate::aws::Aws;
use crate::support::{assert_no_changes, changed_fields, infra, plan_changes, upstream, TempDir};

const STACK: &str = "vault";
const MONITORING_ROLE: &str = "vault-ap-northeast-2-monitoring";

/// One version of the `vault` stack: two private subnets, a MySQL database on db.t3.medium in its
/// own security group with `db_tail` appended to its declaration, an EC2 role `app` with `app_tail`. `lines` go before
/// the database (roles it refers to) and `settings` after the role.
struct Version<'a> {
    lines: &'a str,
    db_tail: &'a str,
    app_tail: &'a str,
    settings: &'a str,
}

fn vault_stack(dir: &TempDir, file: &str, v: Version<'_>) -> String {
    let Version {
        lines,
        db_tail,
        app_tail,
        settings,
    } = v;
    let text = format!(
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {{
    let mut s = Stack::new("{STACK}", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let a = s.add("a", Subnet::private(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
    let c = s.add("c", Subnet::private(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
    let subnets = s.add("db", DbSubnetGroup::new("vault", &[&a, &c]));
    let sg = s.add("db", SecurityGroup::new(&vpc, "database"));
    {lines}
    let db = s.add(
        "db",
        DbInstance::mysql("8.0", "db.t3.medium", &subnets).security_group(&sg){db_tail},
    );
    s.add("app", Role::ec2(){app_tail});
    s.output("db_endpoint", db.endpoint());
    {settings}
    s
}}
"#
    );
    let path = dir.path().join(file);
    std::fs::write(&path, text).expect("the stack file writes");
    path.to_string_lossy().into_owned()
}

async fn described(aws: &Aws) -> DbInstance {
    aws.db_instances(STACK)
        .await
        .remove("db")
        .expect("the database exists")
}

/// `(address, action)` of a `--json` plan, sorted.
fn sorted_changes(endpoint: &str, stack: &str) -> Vec<(String, String)> {
    let mut changes = plan_changes(&infra(endpoint, &["plan", stack, "--json"]).json());
    changes.sort();
    changes
}

fn change(address: &str, action: &str) -> (String, String) {
    (address.to_string(), action.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_authentication_insights_and_monitoring_are_read_back_and_changed_in_place() {
    let emulator = Emulator::start();
    let endpoint = emulator.endpoint();
    let aws = Aws::connect(&endpoint).await;
    let dir = TempDir::new("vault");

    // IAM authentication on by default, and a role allowed to log in as `app`.
    let first = vault_stack(
        &dir,
        "first.rs",
        Version {
            lines: "",
            db_tail: "",
            app_tail: ".grant(db.grant_connect(\"app\"))",
            settings: "",
        },
    );
    infra(&endpoint, &["lint", &first]).assert_success();
    infra(&endpoint, &["apply", &first, "--auto-approve"]).assert_success();
    let db = described(&aws).await;
    assert_eq!(db.iam_database_authentication_enabled(), Some(true));
    let resource_id = db.dbi_resource_id().expect("a DbiResourceId");
    let account = db.db_instance_arn().unwrap().split(':').nth(4).unwrap();
    let user = format!("arn:aws:rds-db:ap-northeast-2:{account}:dbuser:{resource_id}/app");
    let policy = inline_policy(&aws, "vault-ap-northeast-2-app")
        .await
        .unwrap();
    assert_eq!(statements(&policy), [allow(&["rds-db:connect"], &[&user])]);
    assert_no_changes(&endpoint, &first, "after the first apply");

    // Off: one in-place update, the grant goes with it (E0605 would refuse it).
    let off = vault_stack(
        &dir,
        "off.rs",
        Version {
            lines: "",
            db_tail: ".iam_database_authentication(false)",
            app_tail: "",
            settings: "s.allow_lint(\"INFRA-RDS-005\", \"the e2e test turns it off\");",
        },
    );
    let plan = infra(&endpoint, &["plan", &off, "--json"]).json();
    assert_eq!(
        changed_fields(&plan, "rds_db_instance.db"),
        ["iam_database_authentication"]
    );
    assert_eq!(
        sorted_changes(&endpoint, &off),
        [
            change("iam_role.app", "update"),
            change("rds_db_instance.db", "update")
        ]
    );
    infra(&endpoint, &["apply", &off, "--auto-approve"]).assert_success();
    assert_eq!(
        described(&aws).await.iam_database_authentication_enabled(),
        Some(false)
    );
    assert_no_changes(&endpoint, &off, "with IAM authentication off");

    // On again, with a new monitoring role made in the same apply, and Performance Insights.
    let on = vault_stack(
        &dir,
        "on.rs",
        Version {
            lines: "let monitoring = s.add(\"monitoring\", Role::rds_monitoring());",
            db_tail: ".enhanced_monitoring(60, &monitoring).performance_insights(7)",
            app_tail: ".grant(db.grant_connect(\"app\"))",
            settings: "",
        },
    );
    assert_eq!(
        sorted_changes(&endpoint, &on),
        [
            change("iam_role.app", "update"),
            change("iam_role.monitoring", "create"),
            change("rds_db_instance.db", "update")
        ]
    );
    infra(&endpoint, &["apply", &on, "--auto-approve"]).assert_success();
    let db = described(&aws).await;
    assert_eq!(db.iam_database_authentication_enabled(), Some(true));
    assert_eq!(db.monitoring_interval(), Some(60));
    let role_arn = db.monitoring_role_arn().expect("a monitoring role");
    assert!(
        role_arn.ends_with(&format!("/{MONITORING_ROLE}")),
        "{role_arn}"
    );
    assert_eq!(db.performance_insights_retention_period(), Some(7));
    // moto 5.2.1 never reports PerformanceInsightsEnabled, so the plan still asks for it.
    assert_eq!(db.performance_insights_enabled(), None);
    let plan = infra(&endpoint, &["plan", &on, "--json"]).json();
    assert_eq!(
        changed_fields(&plan, "rds_db_instance.db"),
        ["performance_insights_retention_days"]
    );
}

/// RDS's answer while IAM has not propagated a new monitoring role yet.
const ROLE_NOT_READY: &str =
    "IAM role ARN value is invalid or does not include the required permissions for: ENHANCED_MONITORING";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_monitoring_role_refused_by_create_db_instance_is_waited_out() {
    let emulator = Emulator::start();
    let dir = TempDir::new("vault-retry");
    let stack = vault_stack(
        &dir,
        "vault.rs",
        Version {
            lines: "let monitoring = s.add(\"monitoring\", Role::rds_monitoring());",
            db_tail: ".enhanced_monitoring(60, &monitoring)",
            app_tail: "",
            settings: "",
        },
    );
    let creates = Arc::new(AtomicUsize::new(0));
    let seen = creates.clone();
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(Arc::new(move |operation: &Operation, _| {
                let first = operation.name == "CreateDBInstance"
                    && seen.fetch_add(1, Ordering::SeqCst) == 0;
                if first {
                    Fault::error(operation, 400, "InvalidParameterValue", ROLE_NOT_READY)
                } else {
                    Fault::Forward
                }
            })),
            ..ProxyOptions::default()
        },
    );
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    assert_eq!(proxy.count("CreateDBInstance"), 2);
    let aws = Aws::connect(&emulator.endpoint()).await;
    assert_eq!(aws.db_instances(STACK).await.len(), 1);
    // Not read back: moto 5.2.1 keeps MonitoringInterval and MonitoringRoleArn only from a modify.
}

/// A proxy in front of `emulator` that refuses the first `refusals` ModifyDBInstance calls of
/// each run as RDS does while an instance backs up (moto's instances are always `available`).
fn busy_database(emulator: &Emulator, refusals: usize) -> (CountingProxy, Arc<AtomicUsize>) {
    let modifies = Arc::new(AtomicUsize::new(0));
    let seen = modifies.clone();
    let proxy = CountingProxy::with_options(
        upstream(emulator),
        ProxyOptions {
            faults: Some(Arc::new(move |operation: &Operation, _| {
                let refused = operation.name == "ModifyDBInstance"
                    && seen.fetch_add(1, Ordering::SeqCst) < refusals;
                if refused {
                    let message = "Database instance is not in available state.";
                    Fault::error(operation, 400, "InvalidDBInstanceState", message)
                } else {
                    Fault::Forward
                }
            })),
            ..ProxyOptions::default()
        },
    );
    (proxy, modifies)
}

/// The operations of `proxy` from the first ModifyDBInstance on, DescribeDBInstances and
/// ModifyDBInstance only.
fn modifies_and_describes(proxy: &CountingProxy) -> Vec<String> {
    let names: Vec<String> = proxy
        .operations()
        .into_iter()
        .map(|o| o.name)
        .filter(|n| n == "ModifyDBInstance" || n == "DescribeDBInstances")
        .collect();
    let first = names
        .iter()
        .position(|n| n == "ModifyDBInstance")
        .unwrap_or(0);
    let mut after = names[first..].to_vec();
    after.dedup();
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modify_refused_while_the_database_backs_up_is_sent_again_once_it_is_available() {
    let emulator = Emulator::start();
    let dir = TempDir::new("vault-busy");
    let version = |db_tail| Version {
        lines: "",
        db_tail,
        app_tail: "",
        settings: "",
    };
    let stack = vault_stack(&dir, "vault.rs", version(""));
    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    let stack = vault_stack(&dir, "vault.rs", version(".backup_retention_days(14)"));

    let (proxy, _) = busy_database(&emulator, 2);
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    // Each refusal is followed by a wait for `available`, then the modify again.
    assert_eq!(
        modifies_and_describes(&proxy),
        [
            "ModifyDBInstance",
            "DescribeDBInstances",
            "ModifyDBInstance",
            "DescribeDBInstances",
            "ModifyDBInstance",
            "DescribeDBInstances"
        ]
    );
    let aws = Aws::connect(&emulator.endpoint()).await;
    assert_eq!(described(&aws).await.backup_retention_period(), Some(14));

    // Destroy turns deletion protection off first: refused once, then sent again.
    let (proxy, modifies) = busy_database(&emulator, 1);
    let destroy = ["destroy", &stack, "--auto-approve", "--allow-data-loss"];
    infra(&proxy.endpoint(), &destroy).assert_success();
    assert_eq!(modifies.load(Ordering::SeqCst), 2);
    assert!(aws.db_instances(STACK).await.is_empty());
}
