//! The engine against the in-memory fake provider: plan, apply, replace, fail half way, destroy.

#[path = "../../stacks/closet.rs"]
mod closet;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use infra_core::engine::{
    self, Action, ApplyOptions, ApplyResult, Change, EngineError, Graph, Hook, NoHook, Outcome,
    Plan, PlanMode, PlanOptions, ReplaceMode,
};
use infra_core::model::{Access, Role, Statement};
use infra_core::provider::ProviderError;
use infra_core::testing::{Call, FakeProvider, Op};
use infra_core::{
    Address, DbInstance, FinalSnapshot, MasterPassword, Ref, Resource, Sensitive, Stack,
};
use proptest::prelude::*;

fn addr(s: &str) -> Address {
    Address::from_str(s).unwrap()
}

async fn plan(stack: &Stack, fake: &FakeProvider) -> Plan {
    engine::plan(stack, fake, &PlanOptions::default())
        .await
        .unwrap()
}

async fn destroy_plan(stack: &Stack, fake: &FakeProvider, allow_data_loss: bool) -> Plan {
    let options = PlanOptions {
        mode: PlanMode::Destroy,
        allow_data_loss,
    };
    engine::plan(stack, fake, &options).await.unwrap()
}

async fn apply(plan: &Plan, stack: &Stack, fake: &FakeProvider) -> ApplyResult {
    engine::apply(plan, stack, fake, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap()
}

async fn converge(stack: &Stack, fake: &FakeProvider) {
    let p = plan(stack, fake).await;
    assert!(apply(&p, stack, fake).await.is_success());
}

fn actions(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| format!("{:?} {}", c.action, c.address))
        .collect()
}

/// The finished call `op address`.
fn call<'a>(calls: &'a [Call], op: Op, address: &str) -> &'a Call {
    let address = addr(address);
    calls
        .iter()
        .find(|c| c.op == op && c.address.as_ref() == Some(&address) && c.succeeded)
        .unwrap_or_else(|| panic!("no successful {op} {address} in {calls:?}"))
}

#[tokio::test]
async fn create_from_nothing_respects_dependencies() {
    let stack = closet::stack();
    let fake = FakeProvider::new();
    let p = plan(&stack, &fake).await;
    assert_eq!(
        p.summary().to_string(),
        "Plan: 28 to add, 0 to change, 0 to destroy."
    );
    assert!(p.refusals.is_empty());
    let result = apply(&p, &stack, &fake).await;
    assert!(result.is_success(), "{result:?}");
    assert_eq!(result.completed.len(), 28);
    assert_eq!(fake.resources().len(), 28);

    let calls = fake.calls();
    for declared in &stack.resources {
        let created = call(&calls, Op::Create, &declared.address().to_string());
        for dep in declared.resource.references() {
            if dep == declared.address() {
                continue;
            }
            let ready = call(&calls, Op::WaitReady, &dep.to_string());
            assert!(
                ready.finished < created.started,
                "{} started before {dep} was ready",
                declared.address()
            );
        }
    }
    // Physical ids flowed into dependents.
    let rule_links = fake.links(&addr("elbv2_listener_rule.api"));
    let backend = fake.get(&addr("elbv2_target_group.backend")).unwrap();
    assert!(rule_links.contains(&(backend.address.clone(), backend.physical_id.clone())));

    let outputs = engine::outputs(&stack, &result.state);
    assert_eq!(
        outputs["uploads_bucket"].as_deref(),
        Some("closet-uploads-apne2")
    );
    assert!(outputs["alb_dns_name"]
        .as_deref()
        .unwrap()
        .ends_with(".elb.fake"));
    assert_eq!(engine::read_outputs(&stack, &fake).await.unwrap(), outputs);
}

#[tokio::test]
async fn plan_after_apply_is_empty() {
    let stack = closet::stack();
    let fake = FakeProvider::new();
    converge(&stack, &fake).await;
    let again = plan(&stack, &fake).await;
    assert!(!again.has_changes(), "{:?}", actions(&again));
    assert_eq!(
        again.summary().to_string(),
        "Plan: 0 to add, 0 to change, 0 to destroy."
    );
}

#[tokio::test]
async fn a_new_log_writer_updates_the_log_bucket_policy_first() {
    let stack = closet::stack();
    let mut before = stack.clone();
    for d in &mut before.resources {
        if let Resource::Bucket(b) = &mut d.resource {
            b.access_logging = None;
        }
    }
    let fake = FakeProvider::applied(&before);
    let p = plan(&stack, &fake).await;
    assert_eq!(
        actions(&p),
        ["Update s3_bucket.logs", "Update s3_bucket.uploads"]
    );
    let fields = |address: &str| -> Vec<String> {
        let change = p.change(&addr(address)).unwrap();
        change.fields.iter().map(|f| f.field.clone()).collect()
    };
    assert_eq!(fields("s3_bucket.logs"), ["policy"]);
    assert_eq!(fields("s3_bucket.uploads"), ["access_logging"]);
    assert!(apply(&p, &stack, &fake).await.is_success());
    let calls = fake.calls();
    let policy = call(&calls, Op::Update, "s3_bucket.logs");
    let writer = call(&calls, Op::Update, "s3_bucket.uploads");
    assert!(policy.finished < writer.started);
    assert!(!plan(&stack, &fake).await.has_changes());
}

#[tokio::test]
async fn drift_in_one_field_is_exactly_one_update() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    fake.mutate(&addr("elbv2_target_group.frontend"), |r| {
        if let Resource::TargetGroup(tg) = r {
            tg.health_check.path = "/drifted".into();
        }
    });
    let p = plan(&stack, &fake).await;
    assert_eq!(actions(&p), ["Update elbv2_target_group.frontend"]);
    let change = p.change(&addr("elbv2_target_group.frontend")).unwrap();
    assert_eq!(change.fields.len(), 1);
    assert_eq!(change.fields[0].field, "health_check");
    assert!(!change.fields[0].forces_replacement);

    fake.clear_calls();
    assert!(apply(&p, &stack, &fake).await.is_success());
    let update = call(&fake.calls(), Op::Update, "elbv2_target_group.frontend").clone();
    assert_eq!(update.changed, ["health_check"]);
    assert_eq!(fake.changes(), ["update elbv2_target_group.frontend"]);
    assert!(!plan(&stack, &fake).await.has_changes());
}

#[tokio::test]
async fn out_of_band_delete_is_created_again_and_dependents_repointed() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    fake.remove(&addr("s3_bucket.uploads"));
    let p = plan(&stack, &fake).await;
    // The api role's grant names the bucket's ARN, known again only once the bucket exists.
    assert_eq!(
        actions(&p),
        ["Create s3_bucket.uploads", "Update iam_role.api"]
    );

    fake.remove(&addr("elbv2_target_group.backend"));
    let p = plan(&stack, &fake).await;
    assert_eq!(
        actions(&p),
        [
            "Create elbv2_target_group.backend",
            "Update elbv2_listener_rule.api",
            "Update autoscaling_group.api",
            "Create s3_bucket.uploads",
            "Update iam_role.api",
        ]
    );
    assert!(apply(&p, &stack, &fake).await.is_success());
    let backend = fake.get(&addr("elbv2_target_group.backend")).unwrap();
    assert!(fake
        .links(&addr("elbv2_listener_rule.api"))
        .contains(&(backend.address.clone(), backend.physical_id.clone())));
    assert!(!plan(&stack, &fake).await.has_changes());
}

/// closet with the backend target group moved to `port` (health check and security group along).
fn closet_with_backend_port(port: u16) -> Stack {
    let mut stack = closet::stack();
    for declared in &mut stack.resources {
        match &mut declared.resource {
            Resource::TargetGroup(tg) if declared.id == "backend" => {
                tg.port = port;
                tg.health_check.port = infra_core::HealthCheckPort::Port(port);
            }
            Resource::SecurityGroup(sg) if declared.id == "api" => {
                sg.ingress[0].from_port = port;
                sg.ingress[0].to_port = port;
            }
            _ => {}
        }
    }
    stack
}

#[tokio::test]
async fn replacement_creates_repoints_then_deletes() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let old = fake.get(&addr("elbv2_target_group.backend")).unwrap();
    let changed = closet_with_backend_port(8081);
    let p = plan(&changed, &fake).await;
    let replace = p.change(&addr("elbv2_target_group.backend")).unwrap();
    assert_eq!(replace.action, Action::Replace);
    assert_eq!(replace.replace_mode, Some(ReplaceMode::CreateBeforeDestroy));
    assert!(replace
        .fields
        .iter()
        .any(|f| f.field == "port" && f.forces_replacement));
    // The rule's own fields did not change, but the target group it resolves to does.
    let rule = p.change(&addr("elbv2_listener_rule.api")).unwrap();
    assert_eq!(rule.action, Action::Update);
    assert_eq!(rule.fields[0].field, "action");
    assert_eq!(
        p.summary().to_string(),
        "Plan: 1 to add, 3 to change, 1 to destroy."
    );

    fake.clear_calls();
    let result = apply(&p, &changed, &fake).await;
    assert!(result.is_success(), "{result:?}");
    let calls = fake.calls();
    let created = call(&calls, Op::Create, "elbv2_target_group.backend");
    let rule_updated = call(&calls, Op::Update, "elbv2_listener_rule.api");
    let asg_updated = call(&calls, Op::Update, "autoscaling_group.api");
    let deleted = call(&calls, Op::Delete, "elbv2_target_group.backend");
    assert_eq!(
        deleted.physical_id.as_deref(),
        Some(old.physical_id.as_str())
    );
    assert!(created.finished < rule_updated.started);
    assert!(rule_updated.finished < deleted.started);
    assert!(asg_updated.finished < deleted.started);
    assert!(!plan(&changed, &fake).await.has_changes());
}

#[tokio::test]
async fn delete_before_create_where_both_cannot_exist() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let mut renamed = closet::stack();
    for declared in &mut renamed.resources {
        if let Resource::Subnet(s) = &mut declared.resource {
            if declared.id == "public_a" {
                s.availability_zone = "ap-northeast-2b".into();
            }
        }
    }
    let p = plan(&renamed, &fake).await;
    let subnet = p.change(&addr("ec2_subnet.public_a")).unwrap();
    assert_eq!(subnet.action, Action::Replace);
    assert_eq!(subnet.replace_mode, Some(ReplaceMode::DeleteBeforeCreate));
    let text = engine::render_plan(&p, false);
    assert!(
        text.contains("-/+ ec2_subnet.public_a (delete the old one first"),
        "{text}"
    );
    assert!(text.contains("# forces replacement"), "{text}");
}

#[tokio::test]
async fn failure_half_way_returns_partial_result_and_a_rerun_converges() {
    let stack = closet::stack();
    let fake = FakeProvider::new();
    let error = ProviderError::Api {
        operation: "elasticloadbalancing:CreateLoadBalancer".into(),
        code: "TooManyLoadBalancers".into(),
        message: "quota reached".into(),
    };
    fake.fail_on(Op::Create, &addr("elbv2_load_balancer.alb"), error);
    let p = plan(&stack, &fake).await;
    let result = apply(&p, &stack, &fake).await;
    assert!(!result.is_success());
    assert_eq!(result.failed.len(), 1);
    assert_eq!(result.failed[0].0, addr("elbv2_load_balancer.alb"));
    assert!(result.completed.contains(&addr("ec2_vpc.main")));
    for dependent in [
        "elbv2_listener.http",
        "elbv2_listener.https",
        "elbv2_listener_rule.api",
    ] {
        assert!(
            result.skipped.contains(&addr(dependent)),
            "{dependent} not skipped"
        );
    }
    assert_eq!(
        result.completed.len() + result.failed.len() + result.skipped.len(),
        28
    );
    assert_eq!(result.state.len(), result.completed.len());

    let rerun = plan(&stack, &fake).await;
    let remaining = 28 - result.completed.len();
    assert_eq!(rerun.summary().add, remaining);
    assert_eq!(rerun.summary().change, 0);
    assert!(apply(&rerun, &stack, &fake).await.is_success());
    assert!(!plan(&stack, &fake).await.has_changes());
}

#[tokio::test]
async fn destroy_deletes_dependents_first() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let p = destroy_plan(&stack, &fake, true).await;
    assert_eq!(p.mode, PlanMode::Destroy);
    assert_eq!(
        p.summary().to_string(),
        "Plan: 0 to add, 0 to change, 28 to destroy."
    );
    let result = apply(&p, &stack, &fake).await;
    assert!(result.is_success(), "{result:?}");
    assert!(fake.resources().is_empty());
    assert!(result.state.is_empty());
    let calls = fake.calls();
    for declared in &stack.resources {
        let deleted = call(&calls, Op::Delete, &declared.address().to_string());
        // What AWS holds: a user-data value taken from another resource does not bind deletes.
        let held = declared.resource.filled(|_| String::new());
        for dep in held.references() {
            if dep == declared.address() {
                continue;
            }
            let dep_deleted = call(&calls, Op::Delete, &dep.to_string());
            assert!(
                deleted.finished < dep_deleted.started,
                "{dep} deleted before {}",
                declared.address()
            );
        }
    }
    // The database keeps its final snapshot and has its protection turned off, as allowed.
    let db = call(&calls, Op::Delete, "rds_db_instance.db");
    let options = db.delete_options.unwrap();
    assert_eq!(options.final_snapshot, FinalSnapshot::Take);
    assert!(options.disable_deletion_protection);
}

#[tokio::test]
async fn resources_no_longer_declared_are_deleted_after_what_released_them() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let mut smaller = closet::stack();
    smaller
        .resources
        .retain(|d| d.address() != addr("elbv2_listener_rule.api"));
    let p = plan(&smaller, &fake).await;
    assert_eq!(actions(&p), ["Delete elbv2_listener_rule.api"]);
    assert_eq!(
        p.change(&addr("elbv2_listener_rule.api"))
            .unwrap()
            .reason
            .as_deref(),
        Some("no longer declared in the stack")
    );
    assert!(apply(&p, &smaller, &fake).await.is_success());
    assert!(fake.get(&addr("elbv2_listener_rule.api")).is_none());
}

#[tokio::test]
async fn data_loss_is_refused_without_the_flag() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    fake.set_holds_data(&addr("s3_bucket.uploads"), true);
    let p = destroy_plan(&stack, &fake, false).await;
    let refused: Vec<String> = p.refusals.iter().map(|r| r.address.to_string()).collect();
    assert_eq!(refused, ["rds_db_instance.db", "s3_bucket.uploads"]);
    assert!(p.refusals.iter().all(|r| r.flag == "--allow-data-loss"));
    assert!(
        p.refusals[0].message.contains("deletion protection"),
        "{}",
        p.refusals[0].message
    );
    let rendered = engine::render_plan(&p, false);
    assert!(
        rendered.contains("refused: rds_db_instance.db"),
        "{rendered}"
    );
    // The flag is named once, by the error that ends the command.
    assert!(!rendered.contains("--allow-data-loss"), "{rendered}");

    fake.clear_calls();
    let err = engine::apply(&p, &stack, &fake, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Refused(ref r) if r.len() == 2));
    assert_eq!(err.to_string().matches("--allow-data-loss").count(), 1);
    assert!(
        fake.calls().is_empty(),
        "the provider was called: {:?}",
        fake.calls()
    );

    // Allowed: the bucket is emptied first.
    let p = destroy_plan(&stack, &fake, true).await;
    assert!(p.refusals.is_empty());
    let bucket = p.change(&addr("s3_bucket.uploads")).unwrap();
    assert!(bucket.delete_options.unwrap().empty_bucket);
}

#[tokio::test]
async fn a_bucket_with_force_destroy_or_no_data_is_deleted_without_the_flag() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let p = destroy_plan(&stack, &fake, false).await;
    assert_eq!(p.refusals.len(), 1, "only the database: {:?}", p.refusals);

    let mut forced = closet::stack();
    for declared in &mut forced.resources {
        if let Resource::Bucket(b) = &mut declared.resource {
            b.force_destroy = true;
        }
    }
    fake.set_holds_data(&addr("s3_bucket.uploads"), true);
    let p = destroy_plan(&forced, &fake, false).await;
    assert_eq!(p.refusals.len(), 1, "only the database: {:?}", p.refusals);
    let bucket = p.change(&addr("s3_bucket.uploads")).unwrap();
    assert!(bucket.delete_options.unwrap().empty_bucket);
}

fn with_db(stack: &mut Stack, change: impl Fn(&mut DbInstance)) {
    for declared in &mut stack.resources {
        if let Resource::DbInstance(db) = &mut declared.resource {
            change(db);
        }
    }
}

#[tokio::test]
async fn replacing_a_database_is_refused_and_skips_the_snapshot_only_when_told() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let mut upgraded = closet::stack();
    with_db(&mut upgraded, |db| db.engine_version = "8.4".into());
    let p = plan(&upgraded, &fake).await;
    // The api tier's user data takes the new database's endpoint and secret: a new version;
    // its role's grant moves to the new secret.
    assert_eq!(
        actions(&p),
        [
            "Replace rds_db_instance.db",
            "Update iam_role.api",
            "Update ec2_launch_template.api",
            "Update autoscaling_group.api"
        ]
    );
    assert_eq!(p.refusals.len(), 1);
    assert!(p.refusals[0].message.starts_with("replacing the database"));

    with_db(&mut upgraded, |db| db.final_snapshot = FinalSnapshot::Skip);
    let options = PlanOptions {
        mode: PlanMode::Normal,
        allow_data_loss: true,
    };
    let p = engine::plan(&upgraded, &fake, &options).await.unwrap();
    assert!(p.refusals.is_empty());
    assert!(apply(&p, &upgraded, &fake).await.is_success());
    let calls = fake.calls();
    let options = call(&calls, Op::Delete, "rds_db_instance.db")
        .delete_options
        .unwrap();
    assert_eq!(options.final_snapshot, FinalSnapshot::Skip);
    assert!(!plan(&upgraded, &fake).await.has_changes());
}

#[tokio::test]
async fn in_place_database_changes_need_no_flag() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let mut bigger = closet::stack();
    with_db(&mut bigger, |db| {
        db.instance_class = "db.t3.small".into();
        db.final_snapshot = FinalSnapshot::Skip;
    });
    let p = plan(&bigger, &fake).await;
    assert_eq!(actions(&p), ["Update rds_db_instance.db"]);
    assert!(p.refusals.is_empty());
}

#[tokio::test]
async fn a_database_made_before_iam_authentication_is_updated_in_place() {
    let mut before = closet::stack();
    with_db(&mut before, |db| db.iam_database_authentication = false);
    let fake = FakeProvider::applied(&before);
    let p = plan(&closet::stack(), &fake).await;
    assert_eq!(actions(&p), ["Update rds_db_instance.db"]);
    assert!(p.refusals.is_empty());
    let change = p.change(&addr("rds_db_instance.db")).unwrap();
    assert_eq!(change.fields[0].field, "iam_database_authentication");
}

#[tokio::test]
async fn connect_grants_name_the_database_user() {
    let mut stack = closet::stack();
    let connect = Ref::<DbInstance>::from_id("db").grant_connect("api");
    for declared in &mut stack.resources {
        if let (Resource::Role(role), "api") = (&mut declared.resource, declared.id.as_str()) {
            role.grants.push(connect.clone());
        }
    }
    let fake = FakeProvider::applied(&closet::stack());
    let p = plan(&stack, &fake).await;
    assert_eq!(actions(&p), ["Update iam_role.api"]);
    assert!(apply(&p, &stack, &fake).await.is_success());
    let db = fake.get(&addr("rds_db_instance.db")).unwrap();
    let Resource::Role(api) = fake.get(&addr("iam_role.api")).unwrap().resource else {
        panic!("a role")
    };
    let user = format!("arn:fake:rds-db:dbuser:db-{}/api", db.physical_id);
    assert!(api
        .statements
        .contains(&Statement::allow(&["rds-db:connect"], &[&user])));
    assert!(!plan(&stack, &fake).await.has_changes());
}

#[tokio::test]
async fn a_monitoring_role_is_ready_before_the_database_is_modified_to_use_it() {
    let mut stack = closet::stack();
    let monitoring = stack.add("monitoring", Role::rds_monitoring());
    with_db(&mut stack, |db| {
        *db = db.clone().enhanced_monitoring(60, &monitoring);
    });
    let fake = FakeProvider::applied(&closet::stack());
    let p = plan(&stack, &fake).await;
    assert_eq!(
        actions(&p),
        ["Create iam_role.monitoring", "Update rds_db_instance.db"]
    );
    let change = p.change(&addr("rds_db_instance.db")).unwrap();
    assert_eq!(change.fields[0].field, "enhanced_monitoring");
    assert!(apply(&p, &stack, &fake).await.is_success());
    let calls = fake.calls();
    let role_ready = call(&calls, Op::WaitReady, "iam_role.monitoring");
    assert!(role_ready.finished < call(&calls, Op::Update, "rds_db_instance.db").started);
    assert!(!plan(&stack, &fake).await.has_changes());
}

#[tokio::test]
async fn secrets_never_reach_the_plan() {
    let mut stack = closet::stack();
    with_db(&mut stack, |db| {
        db.master_password = MasterPassword::Plain(Sensitive::new("hunter2-secret"))
    });
    // A plain password has no managed secret for the api tier to be told of (E0409), to be
    // granted (E0605) or to output (E0906).
    stack.outputs.remove("db_secret_arn");
    for declared in &mut stack.resources {
        match &mut declared.resource {
            Resource::LaunchTemplate(t) => {
                t.user_data_vars.remove("DB_SECRET_ARN");
            }
            Resource::Role(r) => r.grants.retain(|g| g.access != Access::SecretRead),
            _ => {}
        }
    }
    let fake = FakeProvider::new();
    let p = plan(&stack, &fake).await;
    let json = p.to_json();
    assert!(!json.contains("hunter2-secret"));
    assert_eq!(Plan::from_json(&json).unwrap(), p);
    assert!(apply(&p, &stack, &fake).await.is_success());

    let mut managed = stack.clone();
    with_db(&mut managed, |db| {
        db.master_password = MasterPassword::Managed
    });
    let p = plan(&managed, &fake).await;
    let change = p.change(&addr("rds_db_instance.db")).unwrap();
    assert_eq!(change.action, Action::Update);
    assert!(change.fields[0].sensitive);
    let text = engine::render_plan(&p, false);
    assert!(
        text.contains("master_password: (sensitive) -> (sensitive)"),
        "{text}"
    );
    assert!(!text.contains("hunter2-secret"));
}

#[tokio::test]
async fn apply_checks_the_plan_belongs_to_the_stack() {
    let stack = closet::stack();
    let fake = FakeProvider::new();
    let p = plan(&stack, &fake).await;
    let other = Stack::new("other", "ap-northeast-2");
    let err = engine::apply(&p, &other, &fake, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the plan is for stack `closet`, not `other`"
    );

    let changed = closet_with_backend_port(8081);
    let err = engine::apply(&p, &changed, &fake, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::StalePlan { .. }), "{err}");
}

#[tokio::test]
async fn plan_json_is_versioned() {
    let stack = closet::stack();
    let p = plan(&stack, &FakeProvider::new()).await;
    let json = p.to_json();
    assert!(json.contains("\"format_version\": 1"));
    let future = json.replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    assert!(matches!(
        Plan::from_json(&future),
        Err(EngineError::PlanVersion {
            found: 99,
            expected: 1
        })
    ));
    // The fingerprint changes with what exists.
    let fake = FakeProvider::applied(&stack);
    assert_ne!(plan(&stack, &fake).await.fingerprint, p.fingerprint);
    assert_eq!(
        plan(&stack, &fake).await.fingerprint,
        plan(&stack, &fake).await.fingerprint
    );
}

#[tokio::test]
async fn cycles_are_reported() {
    let mut stack = Stack::new("loop", "ap-northeast-2");
    let vpc = stack.add("main", infra_core::Vpc::new("10.0.0.0/16"));
    let a = infra_core::Ref::<infra_core::SecurityGroup>::from_id("a");
    let b = infra_core::Ref::<infra_core::SecurityGroup>::from_id("b");
    stack.add(
        "a",
        infra_core::SecurityGroup::new(&vpc, "a").ingress(infra_core::Rule::tcp(1).from_group(&b)),
    );
    stack.add(
        "b",
        infra_core::SecurityGroup::new(&vpc, "b").ingress(infra_core::Rule::tcp(1).from_group(&a)),
    );
    let err = Graph::from_stack(&stack).topo_order().unwrap_err();
    assert_eq!(
        err.cycle,
        [addr("ec2_security_group.a"), addr("ec2_security_group.b")]
    );
    let err = engine::plan(&stack, &FakeProvider::new(), &PlanOptions::default())
        .await
        .unwrap_err();
    // Validation reports the cycle first when it knows the rule; the engine does otherwise.
    assert!(
        matches!(err, EngineError::Invalid(_) | EngineError::Cycle(_)),
        "{err}"
    );
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl Hook for Recorder {
    fn before(&self, change: &Change) {
        self.events
            .lock()
            .unwrap()
            .push(format!("before {}", change.address));
    }
    fn after(&self, change: &Change, outcome: &Outcome, _: Duration) {
        let outcome = match outcome {
            Outcome::Done => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped => "skipped",
        };
        self.events
            .lock()
            .unwrap()
            .push(format!("{outcome} {}", change.address));
    }
    fn waiting(&self, address: &Address, status: &str, _: Duration) {
        self.events
            .lock()
            .unwrap()
            .push(format!("waiting {address} {status}"));
    }
}

#[tokio::test]
async fn the_hook_hears_every_action_and_concurrency_is_bounded() {
    let stack = closet::stack();
    let fake = FakeProvider::new();
    fake.set_latency(Duration::from_millis(2));
    let p = plan(&stack, &fake).await;
    let hook = Recorder::default();
    let options = ApplyOptions {
        concurrency: 3,
        no_wait: false,
    };
    let result = engine::apply(&p, &stack, &fake, &options, &hook)
        .await
        .unwrap();
    assert!(result.is_success());
    assert!(fake.max_in_flight() <= 3);
    assert!(
        fake.max_in_flight() > 1,
        "independent actions ran one at a time"
    );
    let events = hook.events.lock().unwrap();
    for c in &p.changes {
        let before = events
            .iter()
            .position(|e| *e == format!("before {}", c.address))
            .unwrap();
        let waiting = events
            .iter()
            .position(|e| *e == format!("waiting {} ready", c.address))
            .unwrap();
        let done = events
            .iter()
            .position(|e| *e == format!("done {}", c.address))
            .unwrap();
        assert!(before < waiting && waiting < done);
    }
}

/// Asks the apply to stop once `after` actions have finished (an interrupt, as the CLI's).
struct StopAfter {
    after: usize,
    done: AtomicUsize,
    started_after_stop: AtomicUsize,
}

impl Hook for StopAfter {
    fn before(&self, _: &Change) {
        if self.should_stop() {
            self.started_after_stop.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn after(&self, _: &Change, outcome: &Outcome, _: Duration) {
        if matches!(outcome, Outcome::Done) {
            self.done.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn should_stop(&self) -> bool {
        self.done.load(Ordering::SeqCst) >= self.after
    }
}

#[tokio::test]
async fn asked_to_stop_the_apply_finishes_what_runs_starts_nothing_and_a_rerun_completes() {
    let stack = closet::stack();
    let fake = FakeProvider::new();
    fake.set_latency(Duration::from_millis(2));
    let p = plan(&stack, &fake).await;
    let hook = StopAfter {
        after: 5,
        done: AtomicUsize::new(0),
        started_after_stop: AtomicUsize::new(0),
    };
    let result = engine::apply(&p, &stack, &fake, &ApplyOptions::default(), &hook)
        .await
        .unwrap();
    assert!(!result.is_success());
    assert!(result.failed.is_empty(), "{:?}", result.failed);
    assert!(result.completed.len() >= 5, "{:?}", result.completed);
    assert!(!result.skipped.is_empty());
    assert_eq!(hook.started_after_stop.load(Ordering::SeqCst), 0);
    // Everything that started finished: what exists is exactly what completed.
    let made: BTreeSet<Address> = fake.resources().into_iter().map(|o| o.address).collect();
    let completed: BTreeSet<Address> = result.completed.iter().cloned().collect();
    assert_eq!(made, completed);
    let rerun = plan(&stack, &fake).await;
    assert_eq!(rerun.summary().add, result.skipped.len());
    assert!(apply(&rerun, &stack, &fake).await.is_success());
    assert!(!plan(&stack, &fake).await.has_changes());
}

#[test]
fn render_create_from_nothing() {
    let stack = closet::stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = rt.block_on(plan(&stack, &FakeProvider::new()));
    insta::assert_snapshot!(engine::render_plan(&p, false));
}

#[test]
fn render_update_and_replace() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    fake.mutate(&addr("ec2_security_group.alb"), |r| {
        if let Resource::SecurityGroup(sg) = r {
            sg.ingress.push(infra_core::Rule::tcp(22).from_anywhere());
        }
    });
    fake.remove(&addr("s3_bucket.uploads"));
    let changed = closet_with_backend_port(8081);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = rt.block_on(plan(&changed, &fake));
    insta::assert_snapshot!(engine::render_plan(&p, false));
    let colored = engine::render_plan(&p, true);
    assert!(colored.contains("\x1b["));
    assert!(!engine::render_plan(&p, false).contains('\x1b'));
}

/// A stack of security groups forming a random DAG: group `i` admits from groups `< i`.
fn dag_stack(edges: &[(usize, usize)], n: usize) -> Stack {
    let mut stack = Stack::new("dag", "ap-northeast-2");
    let vpc = stack.add("main", infra_core::Vpc::new("10.0.0.0/16"));
    for i in 0..n {
        let mut sg = infra_core::SecurityGroup::new(&vpc, format!("group {i}"));
        for &(from, to) in edges {
            if to == i {
                let peer = infra_core::Ref::from_id(format!("g{from}"));
                sg = sg.ingress(infra_core::Rule::tcp(443).from_group(&peer));
            }
        }
        stack.add(format!("g{i}"), sg);
    }
    stack
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn apply_and_destroy_respect_random_dags(
        n in 1usize..12,
        raw in prop::collection::vec((0usize..12, 0usize..12), 0..30),
        concurrency in 1usize..6,
    ) {
        let edges: Vec<(usize, usize)> = raw
            .into_iter()
            .filter(|&(a, b)| a < n && b < n && a != b)
            .map(|(a, b)| (a.min(b), a.max(b)))
            .collect();
        let stack = dag_stack(&edges, n);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let fake = FakeProvider::new();
        let options = ApplyOptions { concurrency, no_wait: false };
        rt.block_on(async {
            let p = plan(&stack, &fake).await;
            let result = engine::apply(&p, &stack, &fake, &options, &NoHook).await.unwrap();
            assert!(result.is_success(), "{result:?}");
            let d = destroy_plan(&stack, &fake, false).await;
            let result = engine::apply(&d, &stack, &fake, &options, &NoHook).await.unwrap();
            assert!(result.is_success(), "{result:?}");
        });
        prop_assert!(fake.max_in_flight() <= concurrency);
        let calls = fake.calls();
        for declared in &stack.resources {
            let me = declared.address().to_string();
            for dep in declared.resource.references() {
                let dep = dep.to_string();
                prop_assert!(call(&calls, Op::WaitReady, &dep).finished < call(&calls, Op::Create, &me).started);
                prop_assert!(call(&calls, Op::Delete, &me).finished < call(&calls, Op::Delete, &dep).started);
            }
        }
    }
}

#[tokio::test]
async fn replacing_a_load_balancer_replaces_its_listeners_and_rules() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let mut internal = closet::stack();
    for declared in &mut internal.resources {
        if let Resource::LoadBalancer(lb) = &mut declared.resource {
            lb.scheme = infra_core::Scheme::Internal;
        }
    }
    let p = plan(&internal, &fake).await;
    assert_eq!(
        actions(&p),
        [
            "Replace elbv2_load_balancer.alb",
            "Replace elbv2_listener.http",
            "Replace elbv2_listener.https",
            "Replace elbv2_listener_rule.api",
            // The alias follows the new load balancer (an UPSERT).
            "Update route53_record.closet",
        ]
    );
    assert!(p
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .all(|c| c.replace_mode == Some(ReplaceMode::CreateBeforeDestroy)));
    fake.clear_calls();
    let result = apply(&p, &internal, &fake).await;
    assert!(result.is_success(), "{result:?}");
    let calls = fake.calls();
    let new_rule = call(&calls, Op::Create, "elbv2_listener_rule.api");
    let new_https = call(&calls, Op::Create, "elbv2_listener.https");
    let new_lb = call(&calls, Op::Create, "elbv2_load_balancer.alb");
    let old_rule = call(&calls, Op::Delete, "elbv2_listener_rule.api");
    let old_https = call(&calls, Op::Delete, "elbv2_listener.https");
    let old_lb = call(&calls, Op::Delete, "elbv2_load_balancer.alb");
    assert!(new_lb.finished < new_https.started && new_https.finished < new_rule.started);
    assert!(new_rule.finished < old_rule.started);
    assert!(old_rule.finished < old_https.started && old_https.finished < old_lb.started);
    assert!(!plan(&internal, &fake).await.has_changes());
}

#[tokio::test]
async fn an_interrupted_replacement_is_finished_by_the_next_apply() {
    let stack = closet::stack();
    let fake = FakeProvider::applied(&stack);
    let old = fake.get(&addr("elbv2_target_group.backend")).unwrap();
    let changed = closet_with_backend_port(8081);
    let error = ProviderError::Other("connection reset".into());
    fake.fail_on(Op::Update, &addr("elbv2_listener_rule.api"), error);
    let p = plan(&changed, &fake).await;
    let result = apply(&p, &changed, &fake).await;
    assert_eq!(result.failed.len(), 1);
    // The new group exists, the old one is not deleted: the replacement counts as skipped.
    assert!(result.skipped.contains(&addr("elbv2_target_group.backend")));
    let backends: Vec<_> = fake
        .resources()
        .into_iter()
        .filter(|o| o.address == addr("elbv2_target_group.backend"))
        .collect();
    assert_eq!(backends.len(), 2, "the new group exists beside the old one");

    let rerun = plan(&changed, &fake).await;
    let leftover: Vec<&Change> = rerun
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    assert_eq!(leftover.len(), 1);
    assert_eq!(
        leftover[0].prior.as_ref().unwrap().physical_id,
        old.physical_id
    );
    // Planning again (as the CLI does under the lock) sees the same two changes at the address.
    let again = plan(&changed, &fake).await;
    assert_eq!(rerun.differences(&again), Vec::<String>::new());
    let mut without_leftover = again.clone();
    without_leftover
        .changes
        .retain(|c| c.action != Action::Delete);
    assert_eq!(
        rerun.differences(&without_leftover),
        ["elbv2_target_group.backend"]
    );
    assert_eq!(
        rerun
            .change(&addr("elbv2_listener_rule.api"))
            .unwrap()
            .action,
        Action::Update
    );
    assert!(apply(&rerun, &changed, &fake).await.is_success());
    let backends: Vec<_> = fake
        .resources()
        .into_iter()
        .filter(|o| o.address == addr("elbv2_target_group.backend"))
        .collect();
    assert_eq!(backends.len(), 1);
    assert_ne!(backends[0].physical_id, old.physical_id);
    assert!(!plan(&changed, &fake).await.has_changes());
}

#[tokio::test]
async fn the_fake_keeps_one_lock_per_stack_released_only_by_its_id() {
    use infra_core::{LockError, LockInfo, StackLock};
    let fake = FakeProvider::new();
    let closet = Stack::new("closet", "ap-northeast-2");
    let other = Stack::new("other", "ap-northeast-2");
    let first = LockInfo::new("apply");
    fake.lock(&closet, &first).await.unwrap();
    fake.lock(&other, &LockInfo::new("apply")).await.unwrap();
    match fake.lock(&closet, &LockInfo::new("destroy")).await {
        Err(LockError::Held { holder, .. }) => assert_eq!(holder, first),
        other => panic!("a second lock of closet was not refused: {other:?}"),
    }
    assert!(matches!(
        fake.unlock(&closet, "not-the-id").await,
        Err(LockError::WrongId { .. })
    ));
    assert_eq!(fake.holder(&closet).await.unwrap(), Some(first.clone()));
    fake.unlock(&closet, &first.id).await.unwrap();
    assert_eq!(fake.holder(&closet).await.unwrap(), None);
    assert!(matches!(
        fake.unlock(&closet, &first.id).await,
        Err(LockError::NotLocked { .. })
    ));
}

#[tokio::test]
async fn locked_runs_the_work_only_under_the_lock_and_always_releases_it() {
    use infra_core::lock::locked;
    use infra_core::{LockError, LockInfo, StackLock};
    let fake = FakeProvider::new();
    let closet = Stack::new("closet", "ap-northeast-2");
    let held_inside = locked(&fake, &closet, "apply", async {
        Ok::<_, LockError>(fake.holder(&closet).await?.map(|h| h.operation))
    })
    .await
    .unwrap();
    assert_eq!(held_inside.as_deref(), Some("apply"));
    assert_eq!(fake.holder(&closet).await.unwrap(), None);

    let failed: Result<(), Box<dyn std::error::Error>> = locked(&fake, &closet, "apply", async {
        Err("the apply failed".into())
    })
    .await;
    assert_eq!(failed.unwrap_err().to_string(), "the apply failed");
    assert_eq!(fake.holder(&closet).await.unwrap(), None);

    let other = LockInfo::new("destroy");
    fake.lock(&closet, &other).await.unwrap();
    let ran = AtomicUsize::new(0);
    let refused = locked(&fake, &closet, "apply", async {
        ran.fetch_add(1, Ordering::SeqCst);
        Ok::<_, LockError>(())
    })
    .await;
    assert!(matches!(refused, Err(LockError::Held { holder, .. }) if holder == other));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(fake.holder(&closet).await.unwrap(), Some(other));
}
