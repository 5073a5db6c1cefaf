//! Helpers: the `infra` command with a shared stack-file cache, and stack files to run it on.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Where tests write their stack files and plans.
pub fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("infra-cli-tests");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// `infra` with a cache shared by every test (infra-core compiles once for all of them) and no
/// AWS environment from the developer's shell.
pub fn infra() -> Command {
    let mut cmd = Command::cargo_bin("infra").expect("the infra binary is built");
    cmd.env(
        "INFRA_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("infra-cache"),
    )
    .env_remove("RUST_LOG")
    .env_remove("AWS_PROFILE")
    .env_remove("AWS_ENDPOINT_URL")
    .env("NO_COLOR", "1");
    cmd
}

/// `infra` talking to an emulator.
pub fn infra_on(emu: &infra_tests::Emulator) -> Command {
    let mut cmd = infra();
    cmd.envs(emu.env());
    cmd
}

/// Write a stack file named `name.rs` with `body` and return its path.
pub fn stack_file(name: &str, body: &str) -> PathBuf {
    let path = scratch().join(format!("{name}.rs"));
    std::fs::write(&path, body).expect("write the stack file");
    path
}

/// A small stack the emulator serves quickly: a VPC, a subnet, a security group, a bucket.
pub fn small_stack(name: &str) -> String {
    small_stack_with(name, "")
}

/// The small stack with extra statements before `s` is returned (`vpc` is in scope).
pub fn small_stack_with(name: &str, extra: &str) -> String {
    format!(
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {{
    let mut s = Stack::new("{name}", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    s.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
    s.add(
        "web",
        SecurityGroup::new(&vpc, "Web: HTTPS from anywhere").ingress(Rule::tcp(443).from_anywhere()),
    );
    let uploads = s.add("uploads", Bucket::new("{name}-uploads"));
    s.output("uploads_bucket", uploads.bucket_name());
    s.output("vpc_id", vpc.vpc_id());
    {extra}
    s
}}
"#
    )
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
