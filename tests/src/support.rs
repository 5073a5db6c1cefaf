//! Running the `infra` binary, and files the tests write.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::aws::ELSEWHERE_LOCK_ID;
use crate::proxy::CountingProxy;
use crate::{aws_env, repo_root};

/// `<target>/<profile>`: where this test binary's own build put its outputs.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/<profile>/deps/e2e-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("a profile directory has a parent")
        .to_path_buf()
}

/// The `infra` binary: `$INFRA_BIN`, or built once per test process into this test's own
/// target directory with the same packages, features and targets as `scripts/test` (any other
/// selection resolves features differently and compiles the AWS SDK crates again, minutes).
pub fn infra_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("INFRA_BIN").filter(|v| !v.is_empty()) {
            return PathBuf::from(bin);
        }
        let profile = profile_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(repo_root())
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--all-features",
                "--all-targets",
            ])
            .env("CARGO_TARGET_DIR", target_dir());
        if profile.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let output = build.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        profile.join(format!("infra{}", std::env::consts::EXE_SUFFIX))
    })
}

/// Where compiled stack files are cached: shared by every test, so each file compiles once.
fn cache_dir() -> PathBuf {
    target_dir().join("infra-e2e-cache")
}

/// What one `infra` run printed and how it ended.
pub struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything printed, for messages and `contains` checks.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panic with the whole output unless the command exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success(),
            "`{}` exited with {:?}:\n{}",
            self.command,
            self.code,
            self.output()
        );
        self
    }

    /// The plan `infra plan --json` printed.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}):\n{}",
                self.command,
                self.output()
            )
        })
    }
}

/// `infra ARGS` against `endpoint` (an emulator or a proxy in front of one), not started yet.
pub fn infra_command(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(infra_bin());
    command
        .args(args)
        .current_dir(repo_root())
        .envs(aws_env(endpoint.to_string()))
        .env("INFRA_CACHE_DIR", cache_dir())
        .env("NO_COLOR", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_MAX_ATTEMPTS");
    command
}

/// Run `infra ARGS` against `endpoint` (an emulator or a proxy in front of one).
pub fn infra(endpoint: &str, args: &[&str]) -> Run {
    run(infra_command(endpoint, args), args)
}

/// Run a command made by [`infra_command`] to the end.
pub fn run(mut command: Command, args: &[&str]) -> Run {
    let output = command.output().expect("the infra binary runs");
    Run {
        command: format!("infra {}", args.join(" ")),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `infra plan --detailed-exitcode` finds nothing to change (exit 0); `context` says when.
pub fn assert_no_changes(endpoint: &str, stack: &str, context: &str) {
    let plan = infra(endpoint, &["plan", stack, "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        Some(0),
        "{context}: the plan is not empty:\n{}",
        plan.output()
    );
}

/// A stack file in `stacks/`.
pub fn stack_file(name: &str) -> String {
    repo_root()
        .join("stacks")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A stack file in `tests/broken/`.
pub fn broken_file(name: &str) -> String {
    repo_root()
        .join("tests/broken")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A directory under the target directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = target_dir().join("e2e-tmp").join(format!(
            "{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of `stacks/NAME` in `dir` with each `(from, to)` replaced; every `from` must occur.
/// Edits moving closet's backend to port 8081: the target group's port (which forces its
/// replacement), its health check and the security-group rule admitting it.
pub const BACKEND_ON_8081: [(&str, &str); 3] = [
    (
        "TargetGroup::http(&vpc, 8080)",
        "TargetGroup::http(&vpc, 8081)",
    ),
    (
        "HealthCheck::http(\"/api/health\").port(8080)",
        "HealthCheck::http(\"/api/health\").port(8081)",
    ),
    (
        "Rule::tcp(8080).from_group(&alb_sg)",
        "Rule::tcp(8081).from_group(&alb_sg)",
    ),
];

pub fn edited_stack(dir: &TempDir, name: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(stack_file(name)).expect("the stack file reads");
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "`{from}` does not occur in stacks/{name}"
        );
        text = text.replace(from, to);
    }
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("the edited stack writes");
    path.to_string_lossy().into_owned()
}

/// The changes of a `--json` plan other than no-ops, as `(address, action)`.
pub fn plan_changes(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .expect("a plan has `changes`")
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(_, action)| action != "no_op")
        .collect()
}

/// Names of the fields a change in a `--json` plan touches.
pub fn changed_fields(plan: &serde_json::Value, address: &str) -> Vec<String> {
    plan["changes"]
        .as_array()
        .expect("a plan has `changes`")
        .iter()
        .find(|c| c["address"] == address)
        .and_then(|c| c["fields"].as_array())
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A loopback address nothing listens on.
pub fn dead_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address")
}

/// The emulator's address, for a proxy in front of it.
pub fn upstream(emulator: &crate::Emulator) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], emulator.port()))
}

/// `infra COMMAND STACK_FILE` against the emulator at `upstream`, while another machine holds
/// the lock of `stack` ([`crate::aws::Aws::take_lock_elsewhere`]): it fails at once naming the
/// holder, and its only write is the attempt to take the lock.
pub fn assert_refused_by_the_held_lock(
    upstream: std::net::SocketAddr,
    command: &str,
    stack_file: &str,
    stack: &str,
) {
    let proxy = CountingProxy::start(upstream);
    let refused = infra(
        &proxy.endpoint(),
        &[command, stack_file, "--auto-approve", "--allow-data-loss"],
    );
    assert_eq!(refused.code, Some(1), "{}", refused.output());
    assert!(
        refused.stderr.contains(&format!(
            "error: stack `{stack}` is locked by dana@build-7 (`infra apply`, pid 4242) since 2026-11-30T00:34:56Z; lock id {ELSEWHERE_LOCK_ID}"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains(&format!("infra force-unlock STACK {ELSEWHERE_LOCK_ID}")),
        "{}",
        refused.stderr
    );
    let writes: Vec<String> = proxy.mutating().into_iter().map(|o| o.name).collect();
    assert_eq!(
        writes,
        ["PutParameter"],
        "`infra {command}`: the only write is the attempt to take the lock"
    );
}
