//! The closet site's preview environment: its own network and security groups, a DNS zone with
//! the preview certificate validated in it, an uploads bucket, and the role and launch template
//! a release candidate's instance is launched from by hand
//! (`aws ec2 run-instances --launch-template LaunchTemplateId=...`, the `launch_template`
//! output). No load balancer, Auto Scaling or database: the instance answers by itself. That is
//! also everything LocalStack's free edition serves, so the tests apply this stack to LocalStack
//! (`tests/tests/localstack/`).
//!
//! `infra plan stacks/preview.rs` — a stack file is a Rust file with `pub fn stack() -> Stack`.

use infra_core::prelude::*;

/// The preview zone: created by the stack (delegate it from `example.com` with the
/// `name_servers` output once).
const ZONE: &str = "preview.example.com";

/// User data: a 2 GB swap file (a 1 GB instance runs out of memory while pulling images), then
/// Docker, the release candidate's container on 80 and the metrics exporter on 9100.
const USER_DATA: &str = r#"#!/bin/bash
set -euo pipefail
if [ ! -f /swapfile ]; then
  dd if=/dev/zero of=/swapfile bs=1M count=2048
  chmod 600 /swapfile
  mkswap /swapfile
  swapon /swapfile
fi
dnf install -y docker
systemctl enable --now docker
docker run -d --restart unless-stopped --name app -p 80:3000 ghcr.io/closet/app:candidate
docker run -d --restart unless-stopped --name metrics --net host prom/node-exporter
"#;

pub fn stack() -> Stack {
    let mut s = Stack::new("closet-preview", "ap-northeast-2");

    let vpc = s.add("main", Vpc::new("10.1.0.0/16"));
    let public_a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.1.1.0/24", "ap-northeast-2a"),
    );
    let public_c = s.add(
        "public_c",
        Subnet::public(&vpc, "10.1.2.0/24", "ap-northeast-2c"),
    );
    let igw = s.add("gateway", InternetGateway::new(&vpc));
    s.add(
        "public",
        RouteTable::new(&vpc)
            .route("0.0.0.0/0", &igw)
            .associate(&public_a)
            .associate(&public_c),
    );

    // The office reaches the app; the monitoring host (launched into `monitoring`) scrapes it.
    let monitoring = s.add(
        "monitoring",
        SecurityGroup::new(&vpc, "Preview monitoring host"),
    );
    let app_sg = s.add(
        "app",
        SecurityGroup::new(&vpc, "Preview app: HTTP from the office, metrics from monitoring")
            .ingress(Rule::tcp(80).from_cidr("203.0.113.0/24"))
            .ingress(Rule::tcp(9100).from_group(&monitoring)),
    );

    // The certificate a preview load balancer will use: validated ahead through the zone.
    let zone = s.add("preview", HostedZone::new(ZONE));
    let cert = s.add(
        "site",
        Certificate::request("closet.preview.example.com")
            .validate_in(&zone)
            .wait_for_issued(),
    );
    s.add(
        "status",
        Record::cname(&zone, "status", "closet.statuspage.example.net"),
    );
    s.add(
        "verify",
        Record::txt(&zone, "_verify", ["closet-preview-verification=5f2c9a"]),
    );

    let uploads = s.add("uploads", Bucket::new("closet-preview-uploads-apne2"));
    s.allow_lint(
        "INFRA-S3-004",
        "a preview lives for days and holds test uploads: a log bucket of its own is not worth it",
    );
    let role = s.add(
        "app",
        Role::ec2()
            .managed_policy(Role::SSM_MANAGED_INSTANCE_CORE)
            .grant(uploads.read_write()),
    );
    let template = s.add(
        "app",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
            .security_group(&app_sg)
            .instance_role(&role)
            .user_data(USER_DATA),
    );

    s.output("launch_template", template.physical_id());
    s.output("subnet", public_a.physical_id());
    s.output("name_servers", zone.name_servers());
    s.output("certificate", cert.arn());
    s.output("uploads_bucket", uploads.bucket_name());
    s
}
