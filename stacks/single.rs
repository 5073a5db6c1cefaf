//! A single-instance deployment (seeds 000 and 001): one small instance in one public subnet
//! running the app's containers behind nginx on 80/443, kept alive by an Auto Scaling Group of
//! exactly one, plus an S3 bucket for assets. No load balancer: the instance answers directly.
//!
//! `infra apply stacks/single.rs` — a stack file is a Rust file with `pub fn stack() -> Stack`.

use infra_core::prelude::*;

/// User data: a 2 GB swap file first (a 1 GB instance runs out of memory while images are
/// pulled and built), then Docker and the app's container on 80 and 443.
fn user_data(image: &str) -> String {
    format!(
        r#"#!/bin/bash
set -euo pipefail
if [ ! -f /swapfile ]; then
  dd if=/dev/zero of=/swapfile bs=1M count=2048
  chmod 600 /swapfile
  mkswap /swapfile
  swapon /swapfile
  echo '/swapfile swap swap defaults 0 0' >> /etc/fstab
fi
sysctl -w vm.swappiness=10
dnf install -y docker
systemctl enable --now docker
docker run -d --restart unless-stopped --name app -p 80:80 -p 443:443 {image}
"#
    )
}

pub fn stack() -> Stack {
    let mut s = Stack::new("honeyflow", "ap-northeast-2");

    let vpc = s.add("main", Vpc::new("10.20.0.0/16"));
    let public = s.add(
        "public",
        Subnet::public(&vpc, "10.20.1.0/24", "ap-northeast-2a"),
    );
    let igw = s.add("gateway", InternetGateway::new(&vpc));
    s.add(
        "public",
        RouteTable::new(&vpc)
            .route("0.0.0.0/0", &igw)
            .associate(&public),
    );

    let app_sg = s.add(
        "app",
        SecurityGroup::new(&vpc, "App host: HTTP and HTTPS from anywhere")
            .ingress(Rule::tcp(80).from_anywhere())
            .ingress(Rule::tcp(443).from_anywhere()),
    );

    // Requests to the assets are logged into a bucket that keeps them 90 days.
    let logs = s.add("logs", Bucket::logs("honeyflow-logs-apne2"));
    let assets = s.add(
        "assets",
        Bucket::new("honeyflow-assets-apne2").access_logging(&logs),
    );
    // The host acts as a role: a shell through Session Manager, and the assets bucket.
    let role = s.add(
        "app",
        Role::ec2()
            .managed_policy(Role::SSM_MANAGED_INSTANCE_CORE)
            .grant(assets.read_write()),
    );

    let template = s.add(
        "app",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
            .security_group(&app_sg)
            // No load balancer: the host itself answers the internet, so it needs an address.
            .public_ip(true)
            .instance_role(&role)
            .root_volume_size(30)
            .user_data(user_data("ghcr.io/honeyflow/app:latest")),
    );
    // min = max = 1: the group only replaces the instance when it fails its EC2 status checks.
    s.add(
        "app",
        AutoScalingGroup::new(&template, &[&public], 1, 1).health_check(HealthCheckType::Ec2, 300),
    );

    s.output("vpc_id", vpc.vpc_id());
    s.output("assets_bucket", assets.bucket_name());
    s
}
