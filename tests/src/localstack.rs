//! LocalStack's free edition as a private emulator per test, like [`crate::Emulator`] for moto:
//! the community runtime from PyPI in host mode (no Docker, no account), on a free loopback port
//! under the same watchdog, with a filesystem root of its own. It serves EC2, S3, ACM, SSM, IAM,
//! Route53 and STS; ELBv2, Auto Scaling and RDS answer HTTP 501.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{answers, free_port, repo_root, stop_watchdog, WATCHDOG};

/// How `localstack/emulator` installs the venv the tests run LocalStack from.
const INSTALL: &str = "localstack/emulator install localstack-host";

/// A running LocalStack, stopped on drop (and by its watchdog if the process dies first).
pub struct LocalStack {
    port: u16,
    child: Child,
    root: PathBuf,
}

/// The venv LocalStack runs from: `$INFRA_LOCALSTACK_VENV`, or `.venv-localstack` (both made
/// by [`INSTALL`]).
fn venv() -> PathBuf {
    std::env::var_os("INFRA_LOCALSTACK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-localstack"))
}

impl LocalStack {
    /// Start a fresh LocalStack and wait until it answers (about 3 s; panics with the reason
    /// otherwise: this is test support). Its first EC2 call takes about 10 s more.
    pub fn start() -> LocalStack {
        let python = venv().join("bin/python");
        assert!(
            python.exists(),
            "LocalStack is not installed: {} does not exist; run `{INSTALL}`",
            python.display()
        );
        let port = free_port();
        let root =
            std::env::temp_dir().join(format!("infra-localstack-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&root).expect("LocalStack's filesystem root");
        let log_path = root.join("localstack.log");
        let log = File::create(&log_path).expect("LocalStack's log file");
        let child = Command::new("python3")
            .args(["-c", WATCHDOG])
            .arg(&python)
            .args(["-m", "localstack.runtime.main"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("LocalStack's log file"))
            .stderr(log)
            .env("OVERRIDE_IN_DOCKER", "0")
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            // The default server binds 0.0.0.0 whatever GATEWAY_LISTEN says.
            .env("GATEWAY_SERVER", "hypercorn")
            .env("DISABLE_EVENTS", "1")
            .env("SKIP_SSL_CERT_DOWNLOAD", "1")
            .env("DNS_ADDRESS", "0")
            .env("FILESYSTEM_ROOT", &root)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let mut localstack = LocalStack { port, child, root };
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !answers(port, "/_localstack/health") {
            if let Ok(Some(status)) = localstack.child.try_wait() {
                panic!(
                    "LocalStack ({}) exited with {status} before answering:\n{}",
                    python.display(),
                    log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "LocalStack ({}) did not answer on port {port} within 120 s:\n{}",
                python.display(),
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        localstack
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        stop_watchdog(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
