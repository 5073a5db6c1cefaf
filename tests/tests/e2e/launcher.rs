//! The `localstack/emulator` launcher: starts moto, is safe to call twice, reports its status,
//! prints the environment, and stops cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use infra_tests::repo_root;

use crate::aws::Aws;
use crate::support::{assert_no_changes, infra, stack_file, TempDir};

struct Launcher {
    run_dir: TempDir,
    port: u16,
}

impl Launcher {
    fn on_a_free_port(label: &str) -> Launcher {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        Launcher {
            run_dir: TempDir::new(label),
            port,
        }
    }

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
    let launcher = Launcher::on_a_free_port("launcher");
    let port = launcher.port;

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

/// The README's "Shipping a new version", on the emulator `start` runs: a new image tag in user
/// data becomes a template version and an instance refresh (which moto lacks; the launcher's
/// server answers it), the refresh ends, and the group is left on the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_rolls_out_on_the_emulator_the_launcher_starts() {
    let launcher = Launcher::on_a_free_port("rollout");
    let started = launcher.run(&["start"]);
    assert!(started.status.success(), "{}", text(&started));
    let endpoint = format!("http://127.0.0.1:{}", launcher.port);
    let stacks = TempDir::new("rollout-stack");
    let stack = stacks
        .path()
        .join("single.rs")
        .to_string_lossy()
        .into_owned();
    let original = std::fs::read_to_string(stack_file("single.rs")).unwrap();
    std::fs::write(&stack, &original).unwrap();
    infra(&endpoint, &["apply", &stack, "--auto-approve"]).assert_success();

    let next = original.replace("ghcr.io/honeyflow/app:latest", "ghcr.io/honeyflow/app:v2");
    assert_ne!(next, original, "the stack names its image");
    std::fs::write(&stack, next).unwrap();
    let rollout = infra(&endpoint, &["apply", &stack, "--auto-approve"]);
    rollout.assert_success();
    assert!(
        rollout.stdout.contains("instance refresh"),
        "{}",
        rollout.output()
    );

    let aws = Aws::connect(&endpoint).await;
    let group = &aws.auto_scaling_groups("honeyflow").await["app"];
    let name = group.auto_scaling_group_name().unwrap();
    let pinned = group.launch_template().and_then(|t| t.version());
    assert_eq!(pinned, Some("2"), "{group:?}");
    let refreshes = aws
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(name)
        .send()
        .await
        .unwrap();
    let statuses: Vec<_> = refreshes
        .instance_refreshes()
        .iter()
        .map(|r| r.status().map(|s| s.as_str().to_string()))
        .collect();
    assert_eq!(statuses, [Some("Successful".to_string())]);
    assert_no_changes(&endpoint, &stack, "after the rollout");
}
