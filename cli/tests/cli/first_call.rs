//! Issue 18: what the first call says when no call can work: no credentials, nothing listening
//! at the endpoint, a host that does not resolve. One message naming the endpoint, the region
//! and where credentials come from, with the fix; the AWS SDK's error only with `-v`; and no
//! retries of a connection that cannot be made (attempts counted in the SDK's debug log).

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::{infra, scratch, small_stack, stack_file, stderr_of};

/// `infra plan` of a small stack with this AWS environment and nothing else of the developer's
/// (no profile files: HOME is an empty folder). Returns (exit code, stderr).
fn plan(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let path = stack_file("first_call", &small_stack("first-call"));
    let home = scratch().join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = infra();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_MAX_ATTEMPTS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "aws_smithy_runtime::client::orchestrator=debug")
        .envs(env.iter().copied())
        .arg("plan")
        .arg(&path)
        .args(args);
    let output = cmd.output().unwrap();
    (output.status.code(), stderr_of(&output))
}

const TEST_KEYS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
];

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The message, from `error:` on, with a test's own `port` written as PORT.
fn message(stderr: &str, port: Option<u16>) -> String {
    let start = stderr
        .find("error:")
        .unwrap_or_else(|| panic!("no error in:\n{stderr}"));
    match port {
        Some(port) => stderr[start..].replace(&format!(":{port}"), ":PORT"),
        None => stderr[start..].to_string(),
    }
}

/// How many HTTP attempts the SDK began (its debug log).
fn attempts(stderr: &str) -> usize {
    stderr.matches("beginning attempt #").count()
}

#[test]
fn no_credentials() {
    let port = dead_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let (code, stderr) = plan(&[("AWS_ENDPOINT_URL", &endpoint)], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    insta::assert_snapshot!("no_credentials", message(&stderr, Some(port)));
}

#[test]
fn a_dead_port_is_tried_once() {
    let port = dead_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [TEST_KEYS[0], TEST_KEYS[1], ("AWS_ENDPOINT_URL", &endpoint)];
    let (code, stderr) = plan(&env, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(attempts(&stderr), 1, "{stderr}");
    insta::assert_snapshot!("dead_port", message(&stderr, Some(port)));

    let (_, verbose) = plan(&env, &["-v"]);
    assert!(
        verbose.contains("Caused by:") && verbose.contains("Connection refused"),
        "-v shows the SDK's error:\n{verbose}"
    );
}

#[test]
fn an_unresolvable_host_is_tried_once() {
    let endpoint = "http://no-such-host.invalid:4566";
    let env = [TEST_KEYS[0], TEST_KEYS[1], ("AWS_ENDPOINT_URL", endpoint)];
    let (code, stderr) = plan(&env, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(attempts(&stderr), 1, "{stderr}");
    insta::assert_snapshot!("unresolvable_host", message(&stderr, None));
}

/// An endpoint that takes connections and closes them unanswered: a fault the first call
/// retries like any other (AWS_MAX_ATTEMPTS of them), then stops the run before any other call.
#[test]
fn an_endpoint_that_never_answers_stops_the_run_after_the_first_call() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        TEST_KEYS[0],
        TEST_KEYS[1],
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_MAX_ATTEMPTS", "2"),
    ];
    let (code, stderr) = plan(&env, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        message(&stderr, Some(port)).starts_with("error: no answer from http://127.0.0.1:PORT\n"),
        "{stderr}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "{stderr}");
}
