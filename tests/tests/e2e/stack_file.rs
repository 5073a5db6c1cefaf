//! Issue #14: stack files that include other files rebuild when any of them changes, what
//! `stack()` prints on stderr reaches the user, and `--var` makes one stack file serve several
//! environments side by side.

use infra_tests::Emulator;

use crate::aws::{Aws, STACK_TAG};
use crate::support::{dead_address, infra, Run, TempDir};

/// `infra ARGS` for a command that needs no AWS (nothing listens at the endpoint).
fn offline(args: &[&str]) -> Run {
    infra(&format!("http://{}", dead_address()), args)
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a file has a directory")).unwrap();
    std::fs::write(path, text).expect("the file writes");
}

/// The stack `infra synth` printed.
#[track_caller]
fn synth(file: &str) -> serde_json::Value {
    offline(&["synth", file]).assert_success().json()
}

const SPLIT_STACK: &str = r#"use infra_core::prelude::*;

mod common;
#[path = "my parts/names.rs"]
mod names;

pub fn stack() -> Stack {
    let mut s = Stack::new(names::STACK, "ap-northeast-2");
    s.add("main", Vpc::new(common::CIDR));
    s
}
"#;

#[test]
fn a_stack_file_rebuilds_when_a_file_it_includes_changes() {
    let dir = TempDir::new("split-stack");
    let stack = dir.path().join("split.rs");
    write(&stack, SPLIT_STACK);
    let common = dir.path().join("common.rs");
    write(&common, "pub const CIDR: &str = \"10.40.0.0/16\";\n");
    let names = dir.path().join("my parts/names.rs");
    write(&names, "pub const STACK: &str = \"split\";\n");
    let file = stack.to_string_lossy().into_owned();

    let first = synth(&file);
    assert_eq!(first["name"], "split");
    assert_eq!(first["resources"][0]["cidr"], "10.40.0.0/16", "{first}");
    let cached = offline(&["synth", &file]);
    cached.assert_success();
    assert!(
        !cached.stderr.contains("Compiling"),
        "nothing changed, yet it compiled again:\n{}",
        cached.output()
    );

    write(&common, "pub const CIDR: &str = \"10.41.0.0/16\";\n");
    let edited = offline(&["synth", &file]);
    assert!(
        edited.assert_success().stderr.contains("Compiling"),
        "{}",
        edited.output()
    );
    assert_eq!(edited.json()["resources"][0]["cidr"], "10.41.0.0/16");

    // Through `#[path]`, in a directory whose name has a space (escaped in cargo's dep-info).
    write(&names, "pub const STACK: &str = \"split-renamed\";\n");
    assert_eq!(synth(&file)["name"], "split-renamed");

    // Back to the first CIDR: that program is still cached.
    write(&common, "pub const CIDR: &str = \"10.40.0.0/16\";\n");
    write(&names, "pub const STACK: &str = \"split\";\n");
    let back = offline(&["synth", &file]);
    assert!(
        !back.assert_success().stderr.contains("Compiling"),
        "{}",
        back.output()
    );
    assert_eq!(back.json(), first);
}

#[test]
fn what_the_stack_prints_on_stderr_reaches_the_user() {
    let dir = TempDir::new("chatty-stack");
    let stack = dir.path().join("chatty.rs");
    write(
        &stack,
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {
    eprintln!("warning: hello from the stack");
    eprintln!("1 vpc");
    let mut s = Stack::new("chatty", "ap-northeast-2");
    s.add("main", Vpc::new("10.42.0.0/16"));
    s
}
"#,
    );
    let file = stack.to_string_lossy().into_owned();
    for _ in 0..2 {
        // Compiled, then from the cache: shown both times.
        let run = offline(&["synth", &file]);
        assert_eq!(run.assert_success().json()["name"], "chatty");
        assert!(
            run.stderr
                .lines()
                .any(|l| l == "warning: hello from the stack"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("{file}: 1 vpc")),
            "{}",
            run.stderr
        );
        assert!(!run.stdout.contains("hello"), "{}", run.stdout);
    }
}

/// A VPC and a bucket per environment, named after it: staging is the default.
const ENV_STACK: &str = r#"use infra_core::prelude::*;

pub fn stack() -> Stack {
    let env = Stack::var_or("env", "staging");
    let mut s = Stack::new(format!("envs-{env}"), "ap-northeast-2");
    let cidr = if env == "production" { "10.51.0.0/16" } else { "10.50.0.0/16" };
    s.add("main", Vpc::new(cidr));
    s.add("assets", Bucket::new(format!("envs-{env}-assets-apne2")));
    s
}
"#;

#[test]
fn vars_choose_the_environment_and_bad_keys_are_refused() {
    let dir = TempDir::new("env-stack");
    let stack = dir.path().join("envs.rs");
    write(&stack, ENV_STACK);
    let file = stack.to_string_lossy().into_owned();

    assert_eq!(synth(&file)["name"], "envs-staging");
    let staging = offline(&["synth", &file, "--var", "env=staging"]);
    assert_eq!(staging.assert_success().json()["name"], "envs-staging");
    let production = offline(&["synth", &file, "--var", "env=production", "--var", "x=1"]);
    assert_eq!(
        production.assert_success().json()["name"],
        "envs-production"
    );
    assert!(
        !production.stderr.contains("Compiling"),
        "a var must not recompile the stack:\n{}",
        production.output()
    );

    let bad = offline(&["synth", &file, "--var", "1x=y"]);
    assert_eq!(bad.code, Some(1), "{}", bad.output());
    assert!(bad.stderr.contains("`1x`"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("[A-Za-z_][A-Za-z0-9_]*"),
        "{}",
        bad.stderr
    );

    let json = dir.path().join("envs.json");
    std::fs::write(&json, &staging.stdout).unwrap();
    let json = json.to_string_lossy().into_owned();
    assert_eq!(synth(&json)["name"], "envs-staging");
    let refused = offline(&["validate", &json, "--var", "env=production"]);
    assert_eq!(refused.code, Some(1), "{}", refused.output());
    assert!(
        refused.stderr.contains("`--var` does not apply"),
        "{}",
        refused.stderr
    );
}

/// `infra plan --detailed-exitcode` of one environment finds nothing to change.
#[track_caller]
fn assert_plan_empty(endpoint: &str, file: &str, env: &str) {
    let plan = infra(
        endpoint,
        &["plan", file, "--var", env, "--detailed-exitcode"],
    );
    assert_eq!(plan.code, Some(0), "{env}:\n{}", plan.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_and_production_live_side_by_side_from_one_stack_file() {
    let emulator = Emulator::start();
    let endpoint = emulator.endpoint();
    let aws = Aws::connect(&endpoint).await;
    let dir = TempDir::new("env-apply");
    let stack = dir.path().join("envs.rs");
    write(&stack, ENV_STACK);
    let file = stack.to_string_lossy().into_owned();

    for env in ["env=staging", "env=production"] {
        infra(&endpoint, &["apply", &file, "--var", env, "--auto-approve"]).assert_success();
    }
    let staging = aws.vpcs("envs-staging").await;
    let production = aws.vpcs("envs-production").await;
    assert_eq!(staging["main"].cidr_block(), Some("10.50.0.0/16"));
    assert_eq!(production["main"].cidr_block(), Some("10.51.0.0/16"));
    for env in ["staging", "production"] {
        let tags = aws
            .bucket_tags(&format!("envs-{env}-assets-apne2"))
            .await
            .unwrap_or_else(|| panic!("the {env} bucket exists"));
        let stack_name = format!("envs-{env}");
        assert!(
            tags.contains(&(STACK_TAG.to_string(), stack_name)),
            "{tags:?}"
        );
    }
    assert_plan_empty(&endpoint, &file, "env=staging");
    assert_plan_empty(&endpoint, &file, "env=production");

    // A saved plan keeps the keys, not the values: applying it takes the same `--var` again.
    let saved = dir.path().join("production-plan.json");
    let saved = saved.to_string_lossy().into_owned();
    infra(
        &endpoint,
        &["plan", &file, "--var", "env=production", "--out", &saved],
    )
    .assert_success();
    let without = infra(&endpoint, &["apply", &saved]);
    assert_eq!(without.code, Some(1), "{}", without.output());
    assert!(
        without.stderr.contains("`--var env=...`"),
        "{}",
        without.stderr
    );
    infra(&endpoint, &["apply", &saved, "--var", "env=production"]).assert_success();

    infra(
        &endpoint,
        &["destroy", &file, "--var", "env=staging", "--auto-approve"],
    )
    .assert_success();
    assert!(aws.vpcs("envs-staging").await.is_empty());
    assert_eq!(aws.bucket_tags("envs-staging-assets-apne2").await, None);
    let left = aws.vpcs("envs-production").await;
    assert_eq!(
        left["main"].vpc_id(),
        production["main"].vpc_id(),
        "production's VPC was touched"
    );
    assert!(aws
        .bucket_tags("envs-production-assets-apne2")
        .await
        .is_some());
    assert_plan_empty(&endpoint, &file, "env=production");
}
