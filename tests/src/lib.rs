//! Test support: a private AWS emulator (moto's server) per test binary.
//!
//! [`Emulator::start`] runs `moto_server` on a free loopback port under a small watchdog that
//! stops it when the test process exits, however it exits, so no emulator outlives its tests;
//! [`localstack::LocalStack::start`] does the same with LocalStack's free edition.
//! [`proxy::CountingProxy`] sits between a client and the emulator and records the AWS
//! operations that pass. [`aws::Aws`] reads what the emulator holds with the raw SDK clients;
//! [`support`] runs the `infra` binary.

pub mod aws;
pub mod iam;
pub mod localstack;
pub mod proxy;
pub mod refresh_double;
pub mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server, stopped on drop (and by its watchdog if the process dies first).
pub struct Emulator {
    port: u16,
    child: Child,
}

/// The repository root (the parent of this crate's folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The emulator's command line, before `-H HOST -p PORT`: `$INFRA_MOTO_SERVER` (a
/// `moto_server`), else the server `localstack/emulator start` runs, `localstack/moto_server.py`
/// (moto's, with its bugs that break the stacks here worked around: see its header), under the
/// project's `.venv` (made by `localstack/emulator install`).
pub fn moto_server() -> Vec<PathBuf> {
    if let Ok(path) = std::env::var("INFRA_MOTO_SERVER") {
        return vec![PathBuf::from(path)];
    }
    let python = repo_root().join(".venv/bin/python");
    vec![python, repo_root().join("localstack/moto_server.py")]
}

// The watchdog: start the emulator (its output goes where the watchdog's goes), then stop it as
// soon as the parent (the test process) is gone.
const WATCHDOG: &str = r#"
import os, signal, subprocess, sys, time
parent = os.getppid()
child = subprocess.Popen(sys.argv[1:])
def stop(*_):
    child.terminate()
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        child.kill()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while child.poll() is None and os.getppid() == parent:
    time.sleep(0.3)
stop()
"#;

impl Emulator {
    /// Start a fresh emulator and wait until it answers (panics with the reason otherwise:
    /// this is test support). Requested certificates turn ISSUED at the first look after the
    /// request instead of after 60 s.
    pub fn start() -> Emulator {
        Emulator::with_acm_validation_wait(0)
    }

    /// [`Emulator::start`], with requested certificates kept PENDING_VALIDATION for `seconds`
    /// (moto's `MOTO_ACM_VALIDATION_WAIT`) before they turn ISSUED.
    pub fn with_acm_validation_wait(seconds: u64) -> Emulator {
        let port = free_port();
        let server = moto_server();
        let child = Command::new("python3")
            .args(["-c", WATCHDOG])
            .args(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            // Not the test's own output: the test harness would wait on (and flag) the handles.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("MOTO_ACM_VALIDATION_WAIT", seconds.to_string())
            // AWS's managed policies exist (AmazonSSMManagedInstanceCore), as in every account.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", server));
        let emulator = Emulator { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(port, "/moto-api/") {
            assert!(
                Instant::now() < deadline,
                "moto ({server:?}) did not answer on port {port} within 60 s; run `localstack/emulator install`",
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a child process (the `infra` binary) to talk to this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        aws_env(self.endpoint())
    }

    /// Set this process's AWS environment to the emulator (for in-process SDK clients).
    pub fn set_process_env(&self) {
        for (key, value) in self.env() {
            std::env::set_var(key, value);
        }
    }

    /// Clear all emulator state (`POST /moto-api/reset`). Slow once IAM was used: moto loads
    /// AWS's managed policies again (1.7 s on a busy 2-core machine, more under heavier load).
    pub fn reset(&self) {
        let status = status_line(
            self.port,
            "POST",
            "/moto-api/reset",
            Duration::from_secs(120),
        );
        assert!(status.starts_with("HTTP/1.1 200"), "reset failed: {status}");
    }
}

/// The standard AWS environment for a child process (the `infra` binary) to talk to an emulator
/// at `endpoint`, with test credentials.
fn aws_env(endpoint: String) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "ap-northeast-2".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// Whether `GET path` on the loopback `port` answers 200.
fn answers(port: u16, path: &str) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
        && status_line(port, "GET", path, Duration::from_secs(10)).starts_with("HTTP/1.1 200")
}

/// The status line of `METHOD path` on the loopback `port`, empty when nothing answers.
fn status_line(port: u16, method: &str, path: &str, timeout: Duration) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.lines().next().unwrap_or_default().to_string()
}

impl Drop for Emulator {
    fn drop(&mut self) {
        stop_watchdog(&mut self.child);
    }
}

/// Stop an emulator through its watchdog (which stops the emulator and waits for it).
fn stop_watchdog(watchdog: &mut Child) {
    let _ = Command::new("kill").arg(watchdog.id().to_string()).status();
    let _ = watchdog.wait();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A self-signed certificate for `cn` and its private key, as PEM files in `dir` (made with
/// `openssl`): (certificate path, key path).
pub fn self_signed(dir: &Path, cn: &str) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let cert = dir.join(format!("{cn}.crt.pem"));
    let key = dir.join(format!("{cn}.key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        status.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}
