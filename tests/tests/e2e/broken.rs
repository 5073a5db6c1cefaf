//! Issue #6, item 7: broken stacks fail with a clear error naming the resource and the field,
//! before any request reaches AWS.

use infra_tests::proxy::CountingProxy;

use crate::support::{broken_file, dead_address, infra};

/// Runs `plan` and `apply` on a broken stack through a counting proxy (with nothing behind
/// it) and returns the plan's output after checking both failed without a request.
fn fails_offline(file: &str) -> String {
    let proxy = CountingProxy::start(dead_address());
    let path = broken_file(file);
    let plan = infra(&proxy.endpoint(), &["plan", &path]);
    assert_eq!(
        plan.code,
        Some(1),
        "`infra plan {file}`:\n{}",
        plan.output()
    );
    let apply = infra(&proxy.endpoint(), &["apply", &path, "--auto-approve"]);
    assert_eq!(
        apply.code,
        Some(1),
        "`infra apply {file}`:\n{}",
        apply.output()
    );
    let sent = proxy.operations();
    assert!(
        sent.is_empty(),
        "{file}: a broken stack must not reach AWS: {sent:?}"
    );
    plan.output()
}

#[track_caller]
fn assert_names(output: &str, address: &str, field: &str) {
    assert!(output.contains("error"), "{output}");
    assert!(
        output.contains(address),
        "expected `{address}` in:\n{output}"
    );
    assert!(
        output.contains(&format!("`{field}`")),
        "expected the field `{field}` in:\n{output}"
    );
}

#[test]
fn a_malformed_cidr_names_the_vpc_and_its_cidr() {
    assert_names(&fails_offline("bad_cidr.rs"), "ec2_vpc.main", "cidr");
}

#[test]
fn a_subnet_outside_its_vpc_names_the_subnet_and_its_cidr() {
    let output = fails_offline("subnet_outside_vpc.rs");
    assert_names(&output, "ec2_subnet.public_a", "cidr");
    assert!(output.contains("10.1.1.0/24"), "{output}");
}

#[test]
fn an_https_listener_without_certificate_names_the_listener_and_the_field() {
    assert_names(
        &fails_offline("https_without_certificate.rs"),
        "elbv2_listener.https",
        "certificate",
    );
}

#[test]
fn an_auto_scaling_group_with_min_above_max_names_the_sizes() {
    let output = fails_offline("asg_min_above_max.rs");
    assert!(output.contains("autoscaling_group.web"), "{output}");
    assert!(
        output.contains("`min_size`") || output.contains("`max_size`"),
        "expected the field `min_size` or `max_size` in:\n{output}"
    );
}

#[test]
fn a_duplicate_logical_id_names_the_address() {
    let output = fails_offline("duplicate_id.rs");
    assert!(output.contains("ec2_subnet.public_a"), "{output}");
    assert!(output.to_lowercase().contains("duplicate"), "{output}");
}

#[test]
fn a_stack_file_that_does_not_compile_shows_the_compiler_error_in_the_users_file() {
    let output = fails_offline("compile_error.rs");
    assert!(output.contains("compile_error.rs"), "{output}");
    assert!(
        output.contains("error[E0425]"),
        "the rustc error is shown:\n{output}"
    );
    assert!(output.contains("public_b"), "{output}");
}
