//! API calls of the `infra` binary for one stack file, by operation: an apply from nothing, then
//! a no-change plan, against a private moto emulator behind a counting proxy. Used to check that
//! a change of the provider's code leaves its calls as they were.
//!
//! `target/debug/examples/calls [STACK_FILE]` (default `stacks/closet.rs`) after `cargo build
//! --workspace --all-features --all-targets` (a `-p` build resolves features differently and
//! compiles the SDK again). The binary is `$INFRA_BIN`, else `target/debug/infra`.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use infra_tests::proxy::CountingProxy;
use infra_tests::{repo_root, Emulator};

fn infra_bin() -> PathBuf {
    std::env::var_os("INFRA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/infra"))
}

/// Runs `infra ARGS` against `endpoint`; fails with its output unless it succeeds.
fn infra(endpoint: &str, args: &[&str]) -> Result<(), Box<dyn Error>> {
    let cache = std::env::temp_dir().join("infra-calls-cache");
    let output = Command::new(infra_bin())
        .args(args)
        .current_dir(repo_root())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "ap-northeast-2")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("INFRA_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "infra {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

/// Prints the calls recorded so far under `title`, and forgets them.
fn report(title: &str, proxy: &CountingProxy) {
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    let operations = proxy.operations();
    for op in &operations {
        *by_name.entry(op.name.clone()).or_default() += 1;
    }
    println!("## {title}: {} calls", operations.len());
    for (name, count) in by_name {
        println!("{count:5}  {name}");
    }
    println!();
    proxy.clear();
}

fn main() -> Result<(), Box<dyn Error>> {
    let stack = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "stacks/closet.rs".into());
    let emulator = Emulator::start();
    let proxy = CountingProxy::start(SocketAddr::from(([127, 0, 0, 1], emulator.port())));
    // Compile the stack file before counting (synth makes no AWS call).
    infra(&proxy.endpoint(), &["synth", &stack])?;
    proxy.clear();
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"])?;
    report(&format!("apply {stack} from nothing"), &proxy);
    infra(&proxy.endpoint(), &["plan", &stack, "--detailed-exitcode"])?;
    report(&format!("no-change plan of {stack}"), &proxy);
    Ok(())
}
