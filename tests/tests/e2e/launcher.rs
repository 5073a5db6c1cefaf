//! The `localstack/emulator` launcher: starts moto, is safe to call twice, reports its status,
//! prints the environment, and stops cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use infra_tests::repo_root;

use crate::support::TempDir;

struct Launcher {
    run_dir: TempDir,
    port: u16,
}

impl Launcher {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(repo_root().join("localstack/emulator"))
            .args(args)
            .env("INFRA_EMULATOR_RUN_DIR", self.run_dir.path())
            .env("INFRA_EMULATOR_PORT", self.port.to_string())
            .env("INFRA_EMULATOR", "moto")
            .env_remove("LOCALSTACK_AUTH_TOKEN")
            .output()
            .expect("the launcher runs")
    }
}

impl Drop for Launcher {
    /// Whatever happened in the test, the emulator it started does not outlive it.
    fn drop(&mut self) {
        let _ = self.run(&["stop"]);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn moto_api_status(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.lines().next().map(str::to_string)
}

fn alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

#[test]
fn the_launcher_starts_once_reports_and_stops() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let launcher = Launcher {
        run_dir: TempDir::new("launcher"),
        port,
    };

    let first = launcher.run(&["start"]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(
        moto_api_status(port).as_deref(),
        Some("HTTP/1.1 200 OK"),
        "moto answers on {port}"
    );
    let pid = std::fs::read_to_string(launcher.run_dir.path().join("emulator.pid"))
        .expect("the pid is recorded")
        .trim()
        .to_string();
    assert!(alive(&pid));
    assert!(launcher.run_dir.path().join("emulator.log").exists());

    let second = launcher.run(&["start"]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("already"), "{}", text(&second));

    let status = launcher.run(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(text(&status).contains(&format!("moto at http://127.0.0.1:{port}")));

    let env = launcher.run(&["env"]);
    let exports = String::from_utf8_lossy(&env.stdout).into_owned();
    assert!(
        exports.contains(&format!(
            "export AWS_ENDPOINT_URL=http://127.0.0.1:{port}\n"
        )),
        "{exports}"
    );
    assert!(exports.contains("export AWS_REGION="), "{exports}");

    let stop = launcher.run(&["stop"]);
    assert!(stop.status.success(), "{}", text(&stop));
    assert!(!alive(&pid), "moto (pid {pid}) still runs after stop");
    assert_eq!(moto_api_status(port), None);
    let status = launcher.run(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
}
