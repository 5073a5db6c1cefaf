//! The closet community site's production stack (seeds 002 and 004): an ALB terminating HTTPS in
//! front of a web tier on 3000 and an API tier on 8080, a private MySQL database, an S3 bucket
//! for uploads and one for the access logs of both, in ap-northeast-2.
//!
//! `infra plan stacks/closet.rs` — a stack file is a Rust file with `pub fn stack() -> Stack`.

use infra_core::prelude::*;

/// The site's zone: created by the stack (set its name servers, the `name_servers` output, at
/// the registrar once). Use `HostedZone::existing(ZONE)` when the zone is already in Route53.
const ZONE: &str = "example.com";
const DOMAIN: &str = "closet.example.com";

/// User data for an app tier: Docker, a 2 GB swap file (1 GB instances run out of memory while
/// pulling images), then the app's container on `port` with `env` (`-e NAME=value` each; a
/// value may be a `${NAME}` placeholder, filled from the stack's resources).
fn app_user_data(image: &str, port: u16, env: &[(&str, &str)]) -> String {
    let env: String = env
        .iter()
        .map(|(name, value)| format!("-e {name}={value} "))
        .collect();
    format!(
        r#"#!/bin/bash
set -euo pipefail
dnf install -y docker
systemctl enable --now docker
if [ ! -f /swapfile ]; then
  dd if=/dev/zero of=/swapfile bs=1M count=2048
  chmod 600 /swapfile
  mkswap /swapfile
  swapon /swapfile
  echo '/swapfile swap swap defaults 0 0' >> /etc/fstab
fi
docker run -d --restart unless-stopped --name app {env}-p {port}:{port} {image}
"#
    )
}

pub fn stack() -> Stack {
    let mut s = Stack::new("closet", "ap-northeast-2");

    // Network: one VPC, two public subnets in two zones, routed to the internet.
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let public_a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    let public_c = s.add(
        "public_c",
        Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"),
    );
    let igw = s.add("gateway", InternetGateway::new(&vpc));
    s.add(
        "public",
        RouteTable::new(&vpc)
            .route("0.0.0.0/0", &igw)
            .associate(&public_a)
            .associate(&public_c),
    );

    // Security groups: each tier admits only the tier in front of it.
    let alb_sg = s.add(
        "alb",
        SecurityGroup::new(&vpc, "Load balancer: HTTP and HTTPS from anywhere")
            .ingress(Rule::tcp(80).from_anywhere())
            .ingress(Rule::tcp(443).from_anywhere()),
    );
    let web_sg = s.add(
        "web",
        SecurityGroup::new(&vpc, "Web tier: 3000 from the load balancer")
            .ingress(Rule::tcp(3000).from_group(&alb_sg)),
    );
    let api_sg = s.add(
        "api",
        SecurityGroup::new(&vpc, "API tier: 8080 from the load balancer")
            .ingress(Rule::tcp(8080).from_group(&alb_sg)),
    );
    let db_sg = s.add(
        "db",
        SecurityGroup::new(&vpc, "Database: MySQL from the API tier")
            .ingress(Rule::tcp(3306).from_group(&api_sg)),
    );

    // HTTPS: the ALB terminates TLS; targets speak plain HTTP on the port the app listens on.
    // The certificate's DNS validation records are written into the zone; ACM then issues it.
    let zone = s.add("site", HostedZone::new(ZONE));
    let cert = s.add("site", Certificate::request(DOMAIN).validate_in(&zone));
    let frontend = s.add(
        "frontend",
        TargetGroup::http(&vpc, 3000)
            .health_check(HealthCheck::http("/").port(3000))
            .deregistration_delay(30),
    );
    let backend = s.add(
        "backend",
        TargetGroup::http(&vpc, 8080)
            .health_check(HealthCheck::http("/api/health").port(8080))
            .deregistration_delay(30),
    );
    // Access logs of the load balancer and of the uploads bucket, kept 90 days.
    let logs = s.add("logs", Bucket::logs("closet-logs-apne2"));
    let alb = s.add(
        "alb",
        LoadBalancer::internet_facing(&[&public_a, &public_c], &[&alb_sg]).access_logs(&logs),
    );
    let site = s.add("closet", Record::alias(&zone, "closet", &alb));
    s.add("http", Listener::http(&alb, 80));
    let https = s.add("https", Listener::https(&alb, &cert).forward(&frontend));
    s.add(
        "api",
        ListenerRule::new(&https, 10)
            .path("/api/*")
            .forward(&backend),
    );

    // Data: a private, encrypted MySQL reachable only from the API tier, and an uploads bucket
    // whose requests are logged.
    let db_subnets = s.add(
        "db",
        DbSubnetGroup::new("closet database subnets", &[&public_a, &public_c]),
    );
    let db = s.add(
        "db",
        DbInstance::mysql("8.0", "db.t3.micro", &db_subnets)
            .db_name("closet")
            .security_group(&db_sg),
    );
    let uploads = s.add(
        "uploads",
        Bucket::new("closet-uploads-apne2").access_logging(&logs),
    );

    // Identity: each tier's instances act as a role. Both get a shell through Session Manager
    // (no port 22); the API may read exactly the database's managed secret and use the uploads.
    let web_role = s.add(
        "web",
        Role::ec2().managed_policy(Role::SSM_MANAGED_INSTANCE_CORE),
    );
    let api_role = s.add(
        "api",
        Role::ec2()
            .managed_policy(Role::SSM_MANAGED_INSTANCE_CORE)
            .grant(db.secret_read())
            .grant(uploads.read_write()),
    );

    // App tiers: Amazon Linux 2023 on t3.micro, rolled out through their Auto Scaling Groups.
    // The API's container is told where the database, its password and the uploads are: the
    // values are filled in at apply time, and a change of them rolls out a new version.
    let api_url = format!("https://{DOMAIN}/api");
    let web_lt = s.add(
        "web",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
            .security_group(&web_sg)
            .instance_role(&web_role)
            .user_data(app_user_data(
                "ghcr.io/closet/web:latest",
                3000,
                &[("API_URL", &api_url)],
            )),
    );
    let api_env = [
        ("DB_HOST", "${DB_HOST}"),
        ("DB_SECRET_ARN", "${DB_SECRET_ARN}"),
        ("UPLOADS_BUCKET", "${UPLOADS_BUCKET}"),
    ];
    let api_lt = s.add(
        "api",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
            .security_group(&api_sg)
            .instance_role(&api_role)
            .user_data(
                UserData::template(app_user_data("ghcr.io/closet/api:latest", 8080, &api_env))
                    .var("DB_HOST", db.endpoint())
                    .var("DB_SECRET_ARN", db.master_user_secret_arn())
                    .var("UPLOADS_BUCKET", uploads.bucket_name()),
            ),
    );
    s.add(
        "web",
        AutoScalingGroup::new(&web_lt, &[&public_a, &public_c], 1, 2)
            .target_group(&frontend)
            .health_check(HealthCheckType::Elb, 120),
    );
    s.add(
        "api",
        AutoScalingGroup::new(&api_lt, &[&public_a, &public_c], 1, 2)
            .target_group(&backend)
            .health_check(HealthCheckType::Elb, 120)
            .scale_on_cpu(50.0),
    );

    s.output("url", site.https_url());
    s.output("name_servers", zone.name_servers());
    s.output("alb_dns_name", alb.dns_name());
    s.output("db_endpoint", db.endpoint());
    s.output("db_secret_arn", db.master_user_secret_arn());
    s.output("uploads_bucket", uploads.bucket_name());
    s.output("certificate_validation", cert.validation_records());
    s
}
