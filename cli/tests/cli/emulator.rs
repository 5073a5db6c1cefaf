//! Commands that talk to AWS, run against the moto emulator: plan, apply, output, destroy,
//! saved plans, confirmation.

use infra_tests::Emulator;
use predicates::prelude::*;

use crate::support::{infra_on, scratch, small_stack, stack_file, stderr_of, stdout_of};

/// Keep only the lines a snapshot can hold: no compile status, no timings.
fn stable(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("Compiling"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn plan_apply_plan_output_destroy() {
    let emu = Emulator::start();
    let path = stack_file("lifecycle", &small_stack("lifecycle"));

    let plan = infra_on(&emu)
        .args(["plan", "--detailed-exitcode"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(2), "{}", stderr_of(&plan));
    insta::assert_snapshot!("plan_create", stable(&stdout_of(&plan)));

    let json = infra_on(&emu)
        .args(["plan", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(json.status.success(), "{}", stderr_of(&json));
    let plan_json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(plan_json["format_version"], 1);
    assert_eq!(plan_json["stack"], "lifecycle");

    let apply = infra_on(&emu)
        .args(["apply", "--auto-approve"])
        .arg(&path)
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&apply), stderr_of(&apply));
    assert!(apply.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Apply complete: 4 added, 0 changed, 0 destroyed."),
        "{stdout}"
    );
    assert!(stderr.contains("    Creating ec2_vpc.main"), "{stderr}");
    assert!(stderr.contains("     Created ec2_vpc.main ("), "{stderr}");
    assert!(
        stdout.contains("uploads_bucket = lifecycle-uploads"),
        "{stdout}"
    );

    infra_on(&emu)
        .args(["plan", "--detailed-exitcode"])
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No changes."));

    let output = infra_on(&emu).arg("output").arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("uploads_bucket = lifecycle-uploads\n"),
        "{stdout}"
    );
    assert!(stdout.contains("vpc_id = vpc-"), "{stdout}");
    infra_on(&emu)
        .args(["output"])
        .arg(&path)
        .arg("uploads_bucket")
        .assert()
        .success()
        .stdout("lifecycle-uploads\n");

    let destroy = infra_on(&emu)
        .args(["destroy", "--auto-approve"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = stdout_of(&destroy);
    assert!(
        destroy.status.success(),
        "{stdout}\n{}",
        stderr_of(&destroy)
    );
    assert!(
        stdout.contains("Destroy complete: 0 added, 0 changed, 4 destroyed."),
        "{stdout}"
    );

    infra_on(&emu)
        .args(["plan", "--detailed-exitcode"])
        .arg(&path)
        .assert()
        .code(2);
    infra_on(&emu)
        .args(["output"])
        .arg(&path)
        .arg("vpc_id")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "output `vpc_id` of stack `lifecycle` is not known yet",
        ));
}

#[test]
fn apply_without_a_terminal_or_auto_approve_refuses() {
    let emu = Emulator::start();
    let path = stack_file("unconfirmed", &small_stack("unconfirmed"));
    infra_on(&emu)
        .arg("apply")
        .arg(&path)
        .write_stdin("yes\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: refusing to apply without confirmation: stdin is not a terminal (pass --auto-approve",
        ));
    // Nothing was created.
    infra_on(&emu)
        .args(["plan", "--detailed-exitcode"])
        .arg(&path)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("4 to add"));
}

#[test]
fn a_saved_plan_applies_then_goes_stale() {
    let emu = Emulator::start();
    let path = stack_file("saved", &small_stack("saved"));
    let first = scratch().join("saved-first.plan.json");
    let second = scratch().join("saved-second.plan.json");

    for out in [&first, &second] {
        let plan = infra_on(&emu)
            .arg("plan")
            .arg("--out")
            .arg(out)
            .arg(&path)
            .output()
            .unwrap();
        assert!(plan.status.success(), "{}", stderr_of(&plan));
    }

    let apply = infra_on(&emu).arg("apply").arg(&first).output().unwrap();
    let stdout = stdout_of(&apply);
    assert!(apply.status.success(), "{stdout}\n{}", stderr_of(&apply));
    assert!(stdout.contains("Apply complete: 4 added"), "{stdout}");

    // What exists changed since the second plan was made (the first one was applied).
    infra_on(&emu)
        .arg("apply")
        .arg(&second)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is out of date"))
        .stderr(predicate::str::contains("run `infra plan` again"));

    infra_on(&emu)
        .args(["destroy", "--auto-approve"])
        .arg(&path)
        .assert()
        .success();
}

#[test]
fn a_saved_plan_is_refused_after_the_stack_file_changes() {
    let emu = Emulator::start();
    let path = stack_file("edited", &small_stack("edited"));
    let saved = scratch().join("edited.plan.json");
    infra_on(&emu)
        .arg("plan")
        .arg("--out")
        .arg(&saved)
        .arg(&path)
        .assert()
        .success();
    std::fs::write(
        &path,
        small_stack("edited").replace("10.0.1.0/24", "10.0.2.0/24"),
    )
    .unwrap();
    infra_on(&emu)
        .arg("apply")
        .arg(&saved)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is out of date"))
        .stderr(predicate::str::contains("ec2_subnet.public_a"));
}
