//! Issue 15: IAM roles for the instances. Each checked through IAM's own API: trust policy,
//! the inline policy's exact ARNs, the managed policy, the profile in the template's `$Latest`
//! version, a hand-edited statement mended, destroy leaving nothing, IAM's propagation delays
//! retried, a wildcard refused before any call.

use std::sync::Arc;

use infra_tests::iam::{
    allow, inline_policy, list, managed_policies, role_and_profile, statements, template_profile,
    SSM_CORE,
};
use infra_tests::proxy::{CountingProxy, Fault, FaultHook, Operation, ProxyOptions};
use infra_tests::Emulator;
use serde_json::json;

use crate::apply::applied_closet;
use crate::aws::Aws;
use crate::support::{
    assert_no_changes, changed_fields, dead_address, edited_stack, infra, plan_changes, stack_file,
    upstream, TempDir,
};

const SINGLE_ROLE: &str = "honeyflow-ap-northeast-2-app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closet_roles_trust_ec2_and_allow_exactly_the_secret_and_the_uploads() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let dbs = aws.db_instances("closet").await;
    let secret = dbs["db"]
        .master_user_secret()
        .and_then(|s| s.secret_arn())
        .unwrap()
        .to_string();
    let bucket = "arn:aws:s3:::closet-uploads-apne2";

    for tier in ["web", "api"] {
        let role = format!("closet-ap-northeast-2-{tier}");
        let (trust, path, held) = role_and_profile(&aws, &role).await;
        let statement = &trust["Statement"][0];
        assert_eq!(statement["Effect"], "Allow", "{trust}");
        assert_eq!(list(&statement["Action"]), ["sts:AssumeRole"], "{trust}");
        assert_eq!(
            list(&statement["Principal"]["Service"]),
            ["ec2.amazonaws.com"],
            "{trust}"
        );
        assert_eq!(path, "/infra/ap-northeast-2/closet/");
        assert_eq!(held, std::slice::from_ref(&role));
        assert_eq!(managed_policies(&aws, &role).await, [SSM_CORE]);
        assert_eq!(
            template_profile(&aws, "closet", tier).await.as_deref(),
            Some(role.as_str())
        );
    }
    let api = inline_policy(&aws, "closet-ap-northeast-2-api")
        .await
        .expect("the api role has infra's inline policy");
    let objects = format!("{bucket}/*");
    let mut expected = vec![
        allow(
            &[
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
            ],
            &[&secret],
        ),
        allow(&["s3:ListBucket"], &[bucket]),
        allow(
            &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            &[&objects],
        ),
    ];
    expected.sort();
    assert_eq!(statements(&api), expected);
    assert_eq!(inline_policy(&aws, "closet-ap-northeast-2-web").await, None);
    assert_no_changes(
        &emulator.endpoint(),
        &stack_file("closet.rs"),
        "after apply",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_statement_is_mended_and_destroy_leaves_no_role_profile_or_policy() {
    let emulator = Emulator::start();
    let endpoint = emulator.endpoint();
    let stack = stack_file("single.rs");
    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();
    let aws = Aws::connect(&endpoint).await;
    let declared = inline_policy(&aws, SINGLE_ROLE).await.unwrap();

    let mut widened = declared.clone();
    widened["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}));
    aws.iam
        .put_role_policy()
        .role_name(SINGLE_ROLE)
        .policy_name("infra")
        .policy_document(widened.to_string())
        .send()
        .await
        .unwrap();
    let plan = infra(&endpoint, &["plan", &stack, "--json"]).json();
    assert_eq!(
        plan_changes(&plan),
        [("iam_role.app".to_string(), "update".to_string())]
    );
    assert_eq!(changed_fields(&plan, "iam_role.app"), ["statements"]);
    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();
    let mended = inline_policy(&aws, SINGLE_ROLE).await.unwrap();
    assert_eq!(statements(&mended), statements(&declared));
    assert_no_changes(&endpoint, &stack, "after mending");

    infra(
        &endpoint,
        &["destroy", &stack, "--auto-approve", "--allow-data-loss"],
    )
    .assert_success();
    assert_no_roles_or_profiles(&aws).await;
    assert_eq!(inline_policy(&aws, SINGLE_ROLE).await, None);
}

/// No role and no instance profile of infra's (path `/infra/`) is left.
async fn assert_no_roles_or_profiles(aws: &Aws) {
    let roles = aws
        .iam
        .list_roles()
        .path_prefix("/infra/")
        .send()
        .await
        .unwrap();
    assert!(roles.roles().is_empty(), "{:?}", roles.roles());
    let profiles = aws
        .iam
        .list_instance_profiles()
        .path_prefix("/infra/")
        .send()
        .await
        .unwrap();
    assert!(profiles.instance_profiles().is_empty(), "{profiles:?}");
}

/// IAM's eventual consistency, as AWS shows it and moto does not: the first inline-policy write
/// after CreateRole answers NoSuchEntity, and EC2 and Auto Scaling refuse the new instance
/// profile twice each.
fn propagation_faults() -> FaultHook {
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    Arc::new(move |operation: &Operation, _| {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(operation.name.clone()).or_insert(0);
        *n += 1;
        match (operation.name.as_str(), *n) {
            ("PutRolePolicy", 1) => Fault::error(operation, 404, "NoSuchEntity", "The role with name x cannot be found."),
            ("CreateLaunchTemplate", 1 | 2) => Fault::error(
                operation,
                400,
                "InvalidParameterValue",
                &format!("Value ({SINGLE_ROLE}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"),
            ),
            ("CreateAutoScalingGroup", 1 | 2) => Fault::error(
                operation,
                400,
                "ValidationError",
                &format!("Invalid IamInstanceProfile: {SINGLE_ROLE}"),
            ),
            _ => Fault::Forward,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_role_not_yet_visible_to_iam_ec2_and_auto_scaling_is_waited_for() {
    let emulator = Emulator::start();
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(propagation_faults()),
            ..ProxyOptions::default()
        },
    );
    let stack = stack_file("single.rs");
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    assert_eq!(proxy.count("PutRolePolicy"), 2);
    assert!(proxy.count("CreateLaunchTemplate") >= 3);
    assert!(proxy.count("CreateAutoScalingGroup") >= 3);
    let aws = Aws::connect(&emulator.endpoint()).await;
    assert_eq!(aws.launch_templates("honeyflow").await.len(), 1);
    assert_eq!(
        template_profile(&aws, "honeyflow", "app").await.as_deref(),
        Some(SINGLE_ROLE)
    );
    assert!(inline_policy(&aws, SINGLE_ROLE).await.is_some());
    assert_no_changes(&emulator.endpoint(), &stack, "after the retried apply");
}

/// A destroy whose first RemoveRoleFromInstanceProfile took effect but lost its answer: the
/// SDK's retry is told NoSuchEntity (IAM's answer; localstack/moto_server.py makes moto's), which
/// means done, and the role and profile go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_taking_the_role_out_of_its_profile_does_not_fail_destroy() {
    let emulator = Emulator::start();
    let stack = stack_file("single.rs");
    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(Arc::new(move |operation: &Operation, _| {
                let removing = operation.name == "RemoveRoleFromInstanceProfile";
                if removing && !lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    Fault::LoseResponse
                } else {
                    Fault::Forward
                }
            })),
            ..ProxyOptions::default()
        },
    );
    let destroy = ["destroy", &stack, "--auto-approve", "--allow-data-loss"];
    infra(&proxy.endpoint(), &destroy).assert_success();
    assert!(proxy.count("RemoveRoleFromInstanceProfile") >= 2);
    let aws = Aws::connect(&emulator.endpoint()).await;
    assert_no_roles_or_profiles(&aws).await;
}

#[test]
fn a_wildcard_statement_fails_validation_before_any_call() {
    let dir = TempDir::new("iam-wildcard");
    let stack = edited_stack(
        &dir,
        "single.rs",
        &[(
            ".grant(assets.read_write()),",
            ".grant(assets.read_write())\n            .statement(Statement::allow(&[\"*\"], &[\"*\"])),",
        )],
    );
    let nowhere = format!("http://{}", dead_address());
    let run = infra(&nowhere, &["plan", &stack]);
    assert!(!run.success(), "{}", run.output());
    let out = run.output();
    for expected in ["E0604", "iam_role.app", "statements[0]", "every action"] {
        assert!(out.contains(expected), "`{expected}` missing:\n{out}");
    }
    assert!(
        !out.to_lowercase().contains("connect"),
        "an API call was attempted:\n{out}"
    );
}
