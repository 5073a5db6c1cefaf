//! Issue #8: a database password and a private key given to the stack never show in anything
//! infra prints or writes (plan, JSON plan, saved plan, apply, -v and -vv logs, errors,
//! outputs, destroy); and replacing a database is refused unless data loss is allowed.

use std::sync::Arc;

use infra_tests::proxy::{CountingProxy, Fault, Operation, ProxyOptions};
use infra_tests::{self_signed, Emulator};

use crate::support::{edited_stack, infra, stack_file, upstream, Run, TempDir};

const CANARY: &str = "canary-Pw-7f3a9c21e5d0";

/// Every base64 line of the private key: none may appear anywhere.
fn key_lines(key: &str) -> Vec<String> {
    std::fs::read_to_string(key)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        .map(str::to_string)
        .collect()
}

fn assert_no_secret(what: &str, text: &str, key: &[String]) {
    assert!(!text.contains(CANARY), "{what} shows the password:\n{text}");
    if let Some(line) = key.iter().find(|l| text.contains(l.as_str())) {
        panic!("{what} shows a line of the private key ({line}):\n{text}");
    }
}

fn checked(run: Run, key: &[String]) -> Run {
    assert_no_secret(&run.command, &run.output(), key);
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_and_a_private_key_never_show_in_output_logs_errors_or_plans() {
    let emulator = Emulator::start();
    let dir = TempDir::new("secrets");
    let (cert, key_path) = self_signed(dir.path(), "closet.example.com");
    let key = key_lines(&key_path);
    assert!(key.len() > 10, "the key has a body");
    let stack = edited_stack(
        &dir,
        "closet.rs",
        &[
            (
                "Certificate::request(DOMAIN)",
                &format!("Certificate::import({cert:?}, {key_path:?})"),
            ),
            (
                ".db_name(\"closet\")",
                &format!(
                    ".db_name(\"closet\").master_password(MasterPassword::Plain(Sensitive::new(\"{CANARY}\")))"
                ),
            ),
            // A plain password has no managed secret for the api tier to be told of (E0409), to
            // be granted (E0605) or to output (E0906).
            (".var(\"DB_SECRET_ARN\", db.master_user_secret_arn())", ""),
            (".grant(db.secret_read())", ""),
            (
                "s.output(\"db_secret_arn\", db.master_user_secret_arn());",
                "",
            ),
        ],
    );
    let endpoint = emulator.endpoint();
    checked(infra(&endpoint, &["validate", &stack]), &key).assert_success();
    checked(infra(&endpoint, &["lint", &stack]), &key);
    checked(infra(&endpoint, &["plan", &stack, "-v"]), &key).assert_success();
    checked(infra(&endpoint, &["plan", &stack, "--json"]), &key).assert_success();

    // An apply that fails creating the database: the error and the -vv log.
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(Arc::new(|operation: &Operation, _| {
                if operation.name == "CreateDBInstance" {
                    Fault::error(operation, 400, "InvalidParameterCombination", "injected")
                } else {
                    Fault::Forward
                }
            })),
            ..ProxyOptions::default()
        },
    );
    let failed = checked(
        infra(
            &proxy.endpoint(),
            &["apply", &stack, "--auto-approve", "-vv"],
        ),
        &key,
    );
    assert!(
        failed
            .stderr
            .contains("rds:CreateDBInstance: InvalidParameterCombination: injected"),
        "{}",
        failed.stderr
    );
    drop(proxy);

    // The rest through a saved plan, with -v logs.
    let saved = dir.path().join("closet.plan.json");
    let saved = saved.to_string_lossy();
    checked(infra(&endpoint, &["plan", &stack, "--out", &saved]), &key).assert_success();
    assert_no_secret(
        "the saved plan",
        &std::fs::read_to_string(&*saved).unwrap(),
        &key,
    );
    checked(infra(&endpoint, &["apply", &saved, "-v"]), &key).assert_success();
    checked(infra(&endpoint, &["output", &stack]), &key).assert_success();
    checked(infra(&endpoint, &["output", &stack, "--json"]), &key).assert_success();
    checked(infra(&endpoint, &["graph", &stack]), &key).assert_success();
    checked(
        infra(
            &endpoint,
            &[
                "destroy",
                &stack,
                "--auto-approve",
                "--allow-data-loss",
                "-v",
            ],
        ),
        &key,
    )
    .assert_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_database_is_refused_without_allow_data_loss() {
    let emulator = Emulator::start();
    let endpoint = emulator.endpoint();
    infra(
        &endpoint,
        &["apply", &stack_file("closet.rs"), "--auto-approve"],
    )
    .assert_success();
    let dir = TempDir::new("replace-db");
    // A major engine version forces a new instance.
    let stack = edited_stack(
        &dir,
        "closet.rs",
        &[("DbInstance::mysql(\"8.0\"", "DbInstance::mysql(\"8.4\"")],
    );
    let proxy = CountingProxy::start(upstream(&emulator));
    for args in [
        vec!["plan", stack.as_str()],
        vec!["apply", stack.as_str(), "--auto-approve"],
    ] {
        let refused = infra(&proxy.endpoint(), &args);
        assert_eq!(refused.code, Some(1), "{}", refused.output());
        let text = refused.output();
        assert!(text.contains("rds_db_instance.db"), "{text}");
        assert!(text.contains("--allow-data-loss"), "{text}");
    }
    assert_eq!(
        proxy.mutating(),
        Vec::new(),
        "a refused replacement changes nothing"
    );
}
