//! Commands that need no AWS: validate, lint, synth, graph, and loading stack files.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::{infra, scratch, small_stack, stack_file, stderr_of, stdout_of};

#[test]
fn validate_accepts_a_valid_stack() {
    let path = stack_file("valid", &small_stack("valid"));
    infra()
        .arg("validate")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "stack `valid` is valid: 4 resources in ap-northeast-2",
        ));
}

#[test]
fn validate_lists_every_error_and_fails() {
    let path = stack_file(
        "invalid",
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("invalid", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    s.add("outside", Subnet::public(&vpc, "10.1.0.0/24", "ap-northeast-2a"));
    s.add("garbled", Subnet::public(&vpc, "10.0.300.0/24", "ap-northeast-2c"));
    s
}
"#,
    );
    let output = infra().arg("validate").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("ec2_subnet.outside"), "{stderr}");
    assert!(stderr.contains("ec2_subnet.garbled"), "{stderr}");
    assert!(
        stderr.ends_with("error: stack `invalid` is not valid: 2 errors\n"),
        "{stderr}"
    );
    // The first run compiles the file; that status line is not part of the report.
    let report: String = stderr
        .lines()
        .filter(|l| !l.trim_start().starts_with("Compiling"))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!("validate_errors", report);
}

#[test]
fn a_compile_error_points_at_the_users_file_and_line() {
    let path = stack_file(
        "broken",
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("broken", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    s.add("public_a", Subnet::public(&vpcc, "10.0.1.0/24", "ap-northeast-2a"));
    s
}
"#,
    );
    let output = infra().arg("validate").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("{}:6:39", path.display())),
        "no file:line in\n{stderr}"
    );
    assert!(stderr.contains("cannot find value `vpcc`"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: could not compile stack file `{}`",
            path.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("infra-stack-"),
        "generated project noise in\n{stderr}"
    );
}

#[test]
fn a_stack_file_without_a_stack_function_is_explained() {
    let path = stack_file("nostack", "pub fn other() {}\n");
    infra()
        .arg("validate")
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "does not define `pub fn stack() -> infra_core::Stack`",
        ));
}

#[test]
fn other_extensions_are_refused() {
    let path = scratch().join("stack.yaml");
    std::fs::write(&path, "name: x\n").unwrap();
    infra()
        .arg("synth")
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a stack file"));
}

#[test]
fn an_unchanged_stack_file_runs_from_the_cache() {
    let path = stack_file("cached", &small_stack("cached"));
    let first = infra().arg("synth").arg(&path).output().unwrap();
    assert!(first.status.success(), "{}", stderr_of(&first));
    let started = Instant::now();
    let second = infra().arg("synth").arg(&path).output().unwrap();
    let took = started.elapsed();
    assert!(second.status.success(), "{}", stderr_of(&second));
    assert_eq!(stdout_of(&first), stdout_of(&second));
    assert!(
        !stderr_of(&second).contains("Compiling"),
        "{}",
        stderr_of(&second)
    );
    assert!(took < Duration::from_secs(1), "cached run took {took:?}");
}

#[test]
fn synth_writes_json_that_every_command_accepts() {
    let path = stack_file("synth", &small_stack("synth"));
    let output = infra().arg("synth").arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let json = stdout_of(&output);
    let stack = infra_core::Stack::from_json(&json).expect("synth prints a stack");
    assert_eq!(stack.name, "synth");
    assert_eq!(stack.resources.len(), 4);

    let json_path = scratch().join("synth.json");
    infra()
        .args(["synth", "--out"])
        .arg(&json_path)
        .arg(&path)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&json_path).unwrap(), json);
    infra()
        .arg("validate")
        .arg(&json_path)
        .assert()
        .success()
        .stdout(predicate::str::contains("stack `synth` is valid"));
}

#[test]
fn lint_shows_findings_with_ids() {
    let path = stack_file(
        "linted",
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("linted", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    s.add(
        "ssh",
        SecurityGroup::new(&vpc, "SSH from anywhere").ingress(Rule::tcp(22).from_anywhere()),
    );
    s
}
"#,
    );
    let output = infra().arg("lint").arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("warning[INFRA-"), "{stdout}");
    assert!(stdout.contains("ec2_security_group.ssh"), "{stdout}");

    let json = infra()
        .args(["lint", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(!report["diagnostics"].as_array().unwrap().is_empty());
}

#[test]
fn lint_of_a_stack_that_is_not_valid_reports_its_errors_and_fails() {
    let path = stack_file(
        "lintbad",
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("lintbad", "ap-northeast-2");
    s.add("main", Vpc::new("10.0.0.0/33"));
    s
}
"#,
    );
    let output = infra().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("error[E0101]: ec2_vpc.main"), "{stdout}");
    assert!(stdout.contains("1 error, 0 warnings"), "{stdout}");
    assert!(
        stderr_of(&output).contains("stack `lintbad` is not valid: 1 error"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let path = stack_file("graphed", &small_stack("graphed"));
    let dot = infra().arg("graph").arg(&path).output().unwrap();
    assert!(dot.status.success(), "{}", stderr_of(&dot));
    let dot = stdout_of(&dot);
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(
        dot.contains("\"ec2_subnet.public_a\" -> \"ec2_vpc.main\""),
        "{dot}"
    );

    let mermaid = infra()
        .args(["graph", "--format", "mermaid"])
        .arg(&path)
        .output()
        .unwrap();
    let mermaid = stdout_of(&mermaid);
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    assert!(
        mermaid.contains("[\"ec2_security_group.web\"]"),
        "{mermaid}"
    );

    infra()
        .args(["graph", "--format", "svg"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid value 'svg'"));
}

#[test]
fn import_refuses_an_undeclared_address() {
    let path = stack_file("importing", &small_stack("importing"));
    infra()
        .args(["import"])
        .arg(&path)
        .args(["ec2_vpc.other", "vpc-123"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`ec2_vpc.other` is not declared in stack `importing`",
        ));
    infra()
        .args(["import"])
        .arg(&path)
        .args(["vpc.main", "vpc-123"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown resource type `vpc`"));
}
