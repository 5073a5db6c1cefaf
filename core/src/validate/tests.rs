//! A positive and a negative case for every rule and lint, starting from one valid stack and
//! changing one thing at a time.

use proptest::prelude::*;

use super::*;
use crate::model::*;
use crate::refs::{Kind, Ref};
use crate::secret::Sensitive;

/// A small valid stack: every rule passes and no lint fires.
fn base() -> Stack {
    let mut s = Stack::new("shop", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let a = s.add("a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
    let c = s.add("c", Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
    let igw = s.add("gw", InternetGateway::new(&vpc));
    s.add(
        "public",
        RouteTable::new(&vpc)
            .route("0.0.0.0/0", &igw)
            .associate(&a)
            .associate(&c),
    );
    let alb_sg = s.add(
        "alb",
        SecurityGroup::new(&vpc, "load balancer")
            .ingress(Rule::tcp(80).from_anywhere())
            .ingress(Rule::tcp(443).from_anywhere()),
    );
    let web_sg = s.add(
        "web",
        SecurityGroup::new(&vpc, "web").ingress(Rule::tcp(3000).from_group(&alb_sg)),
    );
    let db_sg = s.add(
        "db",
        SecurityGroup::new(&vpc, "db").ingress(Rule::tcp(3306).from_group(&web_sg)),
    );
    let zone = s.add("zone", HostedZone::existing("example.com"));
    let cert = s.add(
        "site",
        Certificate::request("shop.example.com").validate_in(&zone),
    );
    let web = s.add("web", TargetGroup::http(&vpc, 3000));
    let logs = s.add("logs", Bucket::logs("shop-logs"));
    let alb = s.add(
        "alb",
        LoadBalancer::internet_facing(&[&a, &c], &[&alb_sg]).access_logs(&logs),
    );
    s.add("shop", Record::alias(&zone, "shop", &alb));
    s.add("http", Listener::http(&alb, 80));
    let https = s.add("https", Listener::https(&alb, &cert).forward(&web));
    s.add(
        "api",
        ListenerRule::new(&https, 10).path("/api/*").forward(&web),
    );
    let lt = s.add(
        "web",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
            .security_group(&web_sg)
            .user_data("#!/bin/bash\necho hello\n"),
    );
    s.add(
        "web",
        AutoScalingGroup::new(&lt, &[&a, &c], 1, 2)
            .target_group(&web)
            .health_check(HealthCheckType::Elb, 120),
    );
    let subnets = s.add("db", DbSubnetGroup::new("db subnets", &[&a, &c]));
    s.add(
        "db",
        DbInstance::mysql("8.0", "db.t3.micro", &subnets)
            .db_name("shop")
            .security_group(&db_sg),
    );
    let uploads = s.add("uploads", Bucket::new("shop-uploads").access_logging(&logs));
    s.add(
        "app",
        Role::ec2()
            .managed_policy(Role::SSM_MANAGED_INSTANCE_CORE)
            .grant(uploads.read_write()),
    );
    s.output("alb", alb.dns_name());
    s
}

/// A second VPC with a subnet and a security group, for the same-VPC rules.
fn add_other_vpc(s: &mut Stack) {
    let vpc = s.add("other", Vpc::new("10.1.0.0/16"));
    s.add(
        "other",
        Subnet::public(&vpc, "10.1.1.0/24", "ap-northeast-2b"),
    );
    s.add("other", SecurityGroup::new(&vpc, "other"));
    s.add("other", TargetGroup::http(&vpc, 3000));
}

/// Change the resource `id` of variant `$variant` in place.
macro_rules! edit {
    ($s:expr, $variant:ident, $id:expr, |$x:ident| $body:expr) => {{
        let declared = $s
            .resources
            .iter_mut()
            .find(|d| d.id == $id && matches!(d.resource, Resource::$variant(_)))
            .expect("resource in the base stack");
        if let Resource::$variant($x) = &mut declared.resource {
            $body;
        }
    }};
}

fn raised(s: &Stack, id: &str) -> bool {
    check(s).diagnostics.iter().any(|d| d.id == id)
}

/// `mutate` makes the base stack raise `id`.
fn fires(id: &str, mutate: impl FnOnce(&mut Stack)) {
    let mut s = base();
    mutate(&mut s);
    let report = check(&s);
    assert!(
        report.diagnostics.iter().any(|d| d.id == id),
        "{id} not raised; got:\n{}",
        report.render()
    );
}

/// The base stack, and the base stack changed by `mutate`, do not raise `id`.
fn quiet(id: &str, mutate: impl FnOnce(&mut Stack)) {
    assert!(!raised(&base(), id), "{id} raised by the base stack");
    let mut s = base();
    mutate(&mut s);
    let report = check(&s);
    assert!(
        !report.diagnostics.iter().any(|d| d.id == id),
        "{id} raised:\n{}",
        report.render()
    );
}

#[test]
fn base_stack_is_clean() {
    let report = check(&base());
    assert!(report.diagnostics.is_empty(), "{}", report.render());
}

/// One test per case: `name: id, fires |s| ..., quiet |s| ...`.
macro_rules! cases {
    ($($name:ident: $id:literal, fires |$f:ident| $fire:block, quiet |$q:ident| $quiet:block;)*) => {
        mod cases {
            use super::*;
            $(
                mod $name {
                    use super::*;
                    #[test]
                    fn fires() {
                        super::super::fires($id, |$f: &mut Stack| $fire);
                    }
                    #[test]
                    fn quiet() {
                        super::super::quiet($id, |$q: &mut Stack| $quiet);
                    }
                }
            )*
        }
    };
}

cases! {
    // ---- E01xx network
    e0101_cidr_syntax: "E0101",
        fires |s| { edit!(s, Vpc, "main", |v| v.cidr = "10.0.0/16".into()) },
        quiet |s| { edit!(s, RouteTable, "public", |t| t.routes[0].destination = "10.0.0.0/8".into()) };
    e0101_route_destination: "E0101",
        fires |s| { edit!(s, RouteTable, "public", |t| t.routes[0].destination = "0.0.0.0".into()) },
        quiet |s| { edit!(s, SecurityGroup, "alb", |g| g.ingress[0].peer = Peer::Ipv6Cidr("::/0".into())) };
    e0101_peer_family: "E0101",
        fires |s| { edit!(s, SecurityGroup, "alb", |g| g.ingress[0].peer = Peer::Cidr("::/0".into())) },
        quiet |s| { edit!(s, SecurityGroup, "alb", |g| g.ingress[0].peer = Peer::Cidr("192.168.0.0/16".into())) };
    e0101_host_bits: "E0101",
        fires |s| { edit!(s, Subnet, "a", |x| x.cidr = "10.0.1.7/24".into()) },
        quiet |s| { edit!(s, Subnet, "a", |x| x.cidr = "10.0.1.0/25".into()) };
    e0102_subnet_outside_vpc: "E0102",
        fires |s| { edit!(s, Subnet, "a", |x| x.cidr = "10.1.1.0/24".into()) },
        quiet |s| { edit!(s, Subnet, "a", |x| x.cidr = "10.0.255.0/24".into()) };
    e0103_subnets_overlap: "E0103",
        fires |s| { edit!(s, Subnet, "c", |x| x.cidr = "10.0.1.128/25".into()) },
        quiet |s| { edit!(s, Subnet, "c", |x| x.cidr = "10.0.3.0/24".into()) };
    e0104_prefix_range: "E0104",
        fires |s| { edit!(s, Subnet, "a", |x| x.cidr = "10.0.1.0/29".into()) },
        quiet |s| { edit!(s, Subnet, "a", |x| x.cidr = "10.0.1.0/28".into()) };
    e0104_vpc_prefix: "E0104",
        fires |s| { edit!(s, Vpc, "main", |v| v.cidr = "10.0.0.0/15".into()) },
        quiet |s| { edit!(s, Vpc, "main", |v| v.cidr = "10.0.0.0/16".into()) };
    e0105_zone_in_region: "E0105",
        fires |s| { edit!(s, Subnet, "a", |x| x.availability_zone = "us-east-1a".into()) },
        quiet |s| { edit!(s, Subnet, "a", |x| x.availability_zone = "ap-northeast-2b".into()) };
    e0105_zone_letter: "E0105",
        fires |s| { edit!(s, Subnet, "a", |x| x.availability_zone = "ap-northeast-2".into()) },
        quiet |s| { edit!(s, Subnet, "c", |x| x.availability_zone = "ap-northeast-2d".into()) };
    e0106_route_table_vpc: "E0106",
        fires |s| {
            add_other_vpc(s);
            edit!(s, RouteTable, "public", |t| t.subnets.push(Ref::from_id("other")))
        },
        quiet |s| { add_other_vpc(s) };

    // ---- E02xx security groups
    e0201_port_range: "E0201",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress[0] = Rule::tcp_range(3001, 3000).from_group(&Ref::from_id("alb"))) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress[0] = Rule::tcp_range(1, 65535).from_group(&Ref::from_id("alb"))) };
    e0201_all_tcp: "E0201",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp_range(65535, 0).from_group(&Ref::from_id("alb")))) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp_range(0, 65535).from_group(&Ref::from_id("alb")))) };
    e0201_udp_range: "E0201",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.egress.push(Rule::udp_range(600, 500).to_cidr("10.0.0.0/16"))) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.egress.push(Rule::udp_range(500, 600).to_cidr("10.0.0.0/16"))) };
    e0202_description: "E0202",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.description = String::new()) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.description = "x".repeat(255)) };
    e0203_peer_vpc: "E0203",
        fires |s| {
            add_other_vpc(s);
            edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_group(&Ref::from_id("other"))))
        },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_group(&Ref::from_id("db")))) };

    // ---- E03xx load balancing
    e0301_two_zones: "E0301",
        fires |s| { edit!(s, Subnet, "c", |x| x.availability_zone = "ap-northeast-2a".into()) },
        quiet |s| { edit!(s, Subnet, "c", |x| x.availability_zone = "ap-northeast-2b".into()) };
    e0301_one_subnet: "E0301",
        fires |s| { edit!(s, LoadBalancer, "alb", |lb| lb.subnets.truncate(1)) },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.subnets.reverse()) };
    e0302_port: "E0302",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.port = 0) },
        quiet |s| {
            edit!(s, TargetGroup, "web", |t| t.port = 65535);
            edit!(s, SecurityGroup, "web", |g| g.ingress[0].to_port = 65535)
        };
    e0302_redirect_port: "E0302",
        fires |s| { edit!(s, Listener, "http", |l| l.default_action = ListenerAction::Redirect { protocol: Some(AppProtocol::Https), port: Some(0), host: None, path: None, status: RedirectStatus::Found }) },
        quiet |s| { edit!(s, Listener, "http", |l| l.default_action = ListenerAction::Redirect { protocol: Some(AppProtocol::Https), port: Some(8443), host: None, path: None, status: RedirectStatus::Found }) };
    e0303_interval: "E0303",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.interval_seconds = 4) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check.interval_seconds = 300) };
    e0304_timeout: "E0304",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.timeout_seconds = 30) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check.timeout_seconds = 29) };
    e0304_timeout_floor: "E0304",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.timeout_seconds = 1) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check.timeout_seconds = 2) };
    e0305_thresholds: "E0305",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.healthy_threshold = 11) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check = t.health_check.clone().thresholds(10, 2)) };
    e0306_path: "E0306",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.path = "health".into()) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check.path = "/health".into()) };
    e0307_matcher: "E0307",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.matcher = "200-".into()) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check.matcher = "200-299".into()) };
    e0307_matcher_list: "E0307",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.matcher = "200,600".into()) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check.matcher = "200,302".into()) };
    e0308_priority_range: "E0308",
        fires |s| { edit!(s, ListenerRule, "api", |r| r.priority = 0) },
        quiet |s| { edit!(s, ListenerRule, "api", |r| r.priority = 50000) };
    e0309_priority_unique: "E0309",
        fires |s| { s.add("static", ListenerRule::new(&Ref::from_id("https"), 10).path("/static/*").forward(&Ref::from_id("web"))); },
        quiet |s| { s.add("static", ListenerRule::new(&Ref::from_id("https"), 11).path("/static/*").forward(&Ref::from_id("web"))); };
    e0310_condition_values: "E0310",
        fires |s| { edit!(s, ListenerRule, "api", |r| r.conditions = vec![Condition::PathPattern((0..6).map(|i| format!("/p{i}/*")).collect())]) },
        quiet |s| { edit!(s, ListenerRule, "api", |r| r.conditions = vec![Condition::PathPattern((0..4).map(|i| format!("/p{i}/*")).collect()), Condition::HostHeader(vec!["shop.example.com".into()])]) };
    e0310_no_conditions: "E0310",
        fires |s| { edit!(s, ListenerRule, "api", |r| r.conditions.clear()) },
        quiet |s| { edit!(s, ListenerRule, "api", |r| r.conditions = vec![Condition::HostHeader(vec!["api.example.com".into()])]) };
    e0311_https_certificate: "E0311",
        fires |s| { edit!(s, Listener, "https", |l| l.certificate = None) },
        quiet |s| { edit!(s, Listener, "https", |l| l.certificate = Some(Ref::from_id("site"))) };
    e0311_http_certificate: "E0311",
        fires |s| { edit!(s, Listener, "http", |l| l.certificate = Some(Ref::from_id("site"))) },
        quiet |s| { edit!(s, Listener, "http", |l| l.port = 8080) };
    e0312_target_group_vpc: "E0312",
        fires |s| {
            add_other_vpc(s);
            edit!(s, ListenerRule, "api", |r| r.action = ListenerAction::forward(&Ref::from_id("other")))
        },
        quiet |s| { add_other_vpc(s) };
    e0312_load_balancer_group_vpc: "E0312",
        fires |s| {
            add_other_vpc(s);
            edit!(s, LoadBalancer, "alb", |lb| lb.security_groups.push(Ref::from_id("other")))
        },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.security_groups.push(Ref::from_id("web"))) };
    e0313_listener_port: "E0313",
        fires |s| { s.add("http2", Listener::http(&Ref::from_id("alb"), 80)); },
        quiet |s| { s.add("http2", Listener::http(&Ref::from_id("alb"), 8080)); };
    e0314_fixed_response: "E0314",
        fires |s| { edit!(s, ListenerRule, "api", |r| r.action = ListenerAction::fixed_response(302, "moved")) },
        quiet |s| { edit!(s, ListenerRule, "api", |r| r.action = ListenerAction::fixed_response(503, "down")) };
    e0315_log_prefix_awslogs: "E0315",
        fires |s| { edit!(s, LoadBalancer, "alb", |lb| lb.access_logs.as_mut().unwrap().prefix = Some("alb/AWSLogs".into())) },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.access_logs.as_mut().unwrap().prefix = Some("alb/web".into())) };
    e0315_log_prefix_slash: "E0315",
        fires |s| { edit!(s, LoadBalancer, "alb", |lb| lb.access_logs.as_mut().unwrap().prefix = Some("alb/".into())) },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.access_logs.as_mut().unwrap().prefix = Some(String::new())) };
    e0316_log_bucket_kms: "E0316",
        fires |s| { edit!(s, Bucket, "logs", |b| b.encryption = BucketEncryption::Kms { key_id: None }) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.encryption = BucketEncryption::Kms { key_id: None }) };
    e0317_idle_timeout: "E0317",
        fires |s| { edit!(s, LoadBalancer, "alb", |lb| lb.idle_timeout_seconds = 4001) },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.idle_timeout_seconds = 4000) };
    e0317_idle_timeout_zero: "E0317",
        fires |s| { edit!(s, LoadBalancer, "alb", |lb| lb.idle_timeout_seconds = 0) },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.idle_timeout_seconds = 1) };
    e0318_deregistration_delay: "E0318",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.deregistration_delay_seconds = 3601) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.deregistration_delay_seconds = 0) };
    e0319_certificate_arn: "E0319",
        fires |s| { edit!(s, Certificate, "site", |c| *c = Certificate::existing("arn:aws:acm:ap-northeast-2:123456789012:cert/abc")) },
        quiet |s| { edit!(s, Certificate, "site", |c| *c = Certificate::existing("arn:aws:acm:ap-northeast-2:123456789012:certificate/12345678-1234-1234-1234-123456789012")) };
    e0319_certificate_region: "E0319",
        fires |s| { edit!(s, Certificate, "site", |c| *c = Certificate::existing("arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012")) },
        quiet |s| { edit!(s, Certificate, "site", |c| *c = Certificate::existing("arn:aws:acm:ap-northeast-2:123456789012:certificate/abc")) };

    // ---- E04xx compute
    e0401_sizes: "E0401",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.desired_capacity = Some(3)) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| g.desired_capacity = Some(2)) };
    e0401_min_max: "E0401",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.min_size = 3) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| g.min_size = 2) };
    e0402_user_data: "E0402",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("#".repeat(12289))) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("#".repeat(12288))) };
    e0403_subnets: "E0403",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.subnets.clear()) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| g.subnets.truncate(1)) };
    e0404_same_vpc: "E0404",
        fires |s| {
            add_other_vpc(s);
            edit!(s, AutoScalingGroup, "web", |g| g.subnets.push(Ref::from_id("other")))
        },
        quiet |s| { add_other_vpc(s) };
    e0404_template_groups: "E0404",
        fires |s| {
            add_other_vpc(s);
            edit!(s, LaunchTemplate, "web", |t| t.security_groups.push(Ref::from_id("other")))
        },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.security_groups.push(Ref::from_id("db"))) };
    e0405_hop_limit: "E0405",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.metadata_options.http_put_response_hop_limit = 0) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.metadata_options.http_put_response_hop_limit = 1) };
    e0204_rule_description: "E0204",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress[0].description = Some("web → app".into())) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress[0].description = Some("from the ALB (port 3000)".into())) };
    e0410_root_volume_type: "E0410",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.volume_type = "io2".into()) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.volume_type = "gp2".into()) };
    e0410_root_volume_size: "E0410",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.size_gib = Some(16385)) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.size_gib = Some(16384)) };
    e0411_key_on_unencrypted: "E0411",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| { t.root_volume.encrypted = false; t.root_volume.kms_key_id = Some("arn:aws:kms:ap-northeast-2:123456789012:alias/ebs".into()) }) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.kms_key_id = Some("arn:aws:kms:ap-northeast-2:123456789012:alias/ebs".into())) };
    e0411_key_not_an_arn: "E0411",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.kms_key_id = Some("alias/ebs".into())) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.kms_key_id = Some("arn:aws:kms:ap-northeast-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into())) };
    e0412_key_name: "E0412",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.key_name = Some(String::new())) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.key_name = Some("deploy key (2026)".into())) };
    e0406_instance_type: "E0406",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.instance_type = "micro".into()) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.instance_type = "m7g.2xlarge".into()) };
    e0409_unused_var: "E0409",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data_vars.insert("DB_HOST".into(), Ref::<DbInstance>::from_id("db").endpoint())) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("H=${DB_HOST} ${HOME}".into()); t.user_data_vars.insert("DB_HOST".into(), Ref::<DbInstance>::from_id("db").endpoint()) }) };
    e0409_var_name: "E0409",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("H=${DB-HOST}".into()); t.user_data_vars.insert("DB-HOST".into(), Ref::<DbInstance>::from_id("db").endpoint()) }) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("H=${_db_host1}".into()); t.user_data_vars.insert("_db_host1".into(), Ref::<DbInstance>::from_id("db").endpoint()) }) };
    e0409_attribute: "E0409",
        fires |s| {
            edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::FromEnv("DB_PASSWORD".into()));
            edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("S=${S}".into()); t.user_data_vars.insert("S".into(), Ref::<DbInstance>::from_id("db").master_user_secret_arn()) })
        },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("S=${S}".into()); t.user_data_vars.insert("S".into(), Ref::<DbInstance>::from_id("db").master_user_secret_arn()) }) };
    e0904_var_source: "E0904",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("B=${B}".into()); t.user_data_vars.insert("B".into(), Ref::<Bucket>::from_id("nope").bucket_name()) }) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("B=${B}".into()); t.user_data_vars.insert("B".into(), Ref::<Bucket>::from_id("uploads").bucket_name()) }) };
    e0407_instance_refresh: "E0407",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.instance_refresh.max_healthy_percentage = 201) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| g.instance_refresh.min_healthy_percentage = 0) };
    e0408_cpu_target: "E0408",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.cpu_target_tracking = Some(CpuTargetTracking { target_percent: f64::NAN })) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| g.cpu_target_tracking = Some(CpuTargetTracking { target_percent: 100.0 })) };

    // ---- E05xx data
    e0501_bucket_name: "E0501",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.name = "Shop_Uploads".into()) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.name = "a.b-c1".into()) };
    e0501_bucket_ip: "E0501",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.name = "192.168.5.4".into()) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.name = "192.168.5.4a".into()) };
    e0501_bucket_reserved: "E0501",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.name = "xn--shop".into()) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.name = "shop-xn--1".into()) };
    e0515_logs_into_itself: "E0515",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.access_logging.as_mut().unwrap().target = Ref::from_id("uploads")) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.access_logging.as_mut().unwrap().prefix = "uploads/".into()) };
    e0516_log_target_kms: "E0516",
        fires |s| {
            edit!(s, Bucket, "logs", |b| b.encryption = BucketEncryption::Kms { key_id: None });
            edit!(s, LoadBalancer, "alb", |lb| lb.access_logs = None);
        },
        quiet |s| { edit!(s, Bucket, "logs", |b| b.encryption = BucketEncryption::S3Managed) };
    e0517_logging_prefix: "E0517",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.access_logging.as_mut().unwrap().prefix = "/s3/".into()) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.access_logging.as_mut().unwrap().prefix = String::new()) };
    e0518_lifecycle_days: "E0518",
        fires |s| { edit!(s, Bucket, "logs", |b| b.lifecycle.as_mut().unwrap().noncurrent_expire_after_days = 0) },
        quiet |s| { edit!(s, Bucket, "logs", |b| *b = b.clone().expire_after_days(1)) };
    e0519_engine_version: "E0519",
        fires |s| { edit!(s, DbInstance, "db", |d| d.engine_version = "mysql8".into()) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.engine_version = "5.7.44-rds.20240408".into()) };
    e0520_instance_class: "E0520",
        fires |s| { edit!(s, DbInstance, "db", |d| d.instance_class = "t3.micro".into()) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.instance_class = "db.m7g.large".into()) };
    e0502_identifier: "E0502",
        fires |s| { edit!(s, DbInstance, "db", |d| d.identifier = Some("shop--db".into())) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.identifier = Some("shop-db".into())) };
    e0503_storage: "E0503",
        fires |s| { edit!(s, DbInstance, "db", |d| d.allocated_storage_gib = 19) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.allocated_storage_gib = 20) };
    e0504_plain_password: "E0504",
        fires |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::Plain(Sensitive::new("short"))) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::Plain(Sensitive::new("correct-horse-9"))) };
    e0504_redacted_password: "E0504",
        fires |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::Plain(Sensitive::redacted())) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::FromEnv("DB_PASSWORD".into())) };
    e0504_env_name: "E0504",
        fires |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::FromEnv("1-PASS".into())) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::Managed) };
    e0505_username: "E0505",
        fires |s| { edit!(s, DbInstance, "db", |d| d.master_username = "rdsadmin".into()) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.master_username = "shop_admin".into()) };
    e0506_db_subnet_zones: "E0506",
        fires |s| { edit!(s, DbSubnetGroup, "db", |g| g.subnets.truncate(1)) },
        quiet |s| { edit!(s, DbSubnetGroup, "db", |g| g.subnets.reverse()) };
    e0507_db_name: "E0507",
        fires |s| { edit!(s, DbInstance, "db", |d| d.db_name = Some("1shop".into())) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.db_name = Some("shop_2".into())) };
    e0508_backup_retention: "E0508",
        fires |s| { edit!(s, DbInstance, "db", |d| d.backup_retention_days = 36) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.backup_retention_days = 35) };
    e0509_db_vpc: "E0509",
        fires |s| {
            add_other_vpc(s);
            edit!(s, DbInstance, "db", |d| d.security_groups.push(Ref::from_id("other")))
        },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.security_groups.push(Ref::from_id("web"))) };
    e0511_insights_class: "E0511",
        fires |s| { edit!(s, DbInstance, "db", |d| d.performance_insights_retention_days = Some(7)) },
        quiet |s| { edit!(s, DbInstance, "db", |d| { d.instance_class = "db.t4g.medium".into(); d.performance_insights_retention_days = Some(7) }) };
    e0511_insights_engine: "E0511",
        fires |s| { edit!(s, DbInstance, "db", |d| { d.engine = DbEngine::Mariadb; d.engine_version = "10.11".into(); d.instance_class = "db.t2.small".into(); d.performance_insights_retention_days = Some(7) }) },
        quiet |s| { edit!(s, DbInstance, "db", |d| { d.engine = DbEngine::Postgres; d.engine_version = "16".into(); d.performance_insights_retention_days = Some(7) }) };
    e0512_insights_retention: "E0512",
        fires |s| { edit!(s, DbInstance, "db", |d| { d.instance_class = "db.m7g.large".into(); d.performance_insights_retention_days = Some(94) }) },
        quiet |s| { edit!(s, DbInstance, "db", |d| { d.instance_class = "db.m7g.large".into(); d.performance_insights_retention_days = Some(713) }) };
    e0512_insights_limits: "E0512",
        fires |s| { edit!(s, DbInstance, "db", |d| { d.instance_class = "db.m7g.large".into(); d.performance_insights_retention_days = Some(744) }) },
        quiet |s| { edit!(s, DbInstance, "db", |d| { d.instance_class = "db.m7g.large".into(); d.performance_insights_retention_days = Some(731) }) };
    e0513_monitoring_interval: "E0513",
        fires |s| { let m = s.add("monitoring", Role::rds_monitoring()); edit!(s, DbInstance, "db", |d| *d = d.clone().enhanced_monitoring(0, &m)) },
        quiet |s| { let m = s.add("monitoring", Role::rds_monitoring()); edit!(s, DbInstance, "db", |d| *d = d.clone().enhanced_monitoring(60, &m)) };
    e0514_monitoring_role_trust: "E0514",
        fires |s| { let m = s.add("monitoring", Role::for_service("rds.amazonaws.com").managed_policy(Role::RDS_ENHANCED_MONITORING)); edit!(s, DbInstance, "db", |d| *d = d.clone().enhanced_monitoring(1, &m)) },
        quiet |s| { let m = s.add("monitoring", Role::rds_monitoring()); edit!(s, DbInstance, "db", |d| *d = d.clone().enhanced_monitoring(1, &m)) };
    e0510_mariadb_iam_auth: "E0510",
        fires |s| { edit!(s, DbInstance, "db", |d| { d.engine = DbEngine::Mariadb; d.engine_version = "10.6".into() }) },
        quiet |s| { edit!(s, DbInstance, "db", |d| { d.engine = DbEngine::Mariadb; d.engine_version = "10.11.9".into() }) };

    // ---- E09xx stack-level
    e0901_stack_name: "E0901",
        fires |s| { s.name = "Shop".into() },
        quiet |s| { s.name = "shop-prod-2".into() };
    e0901_stack_name_length: "E0901",
        fires |s| { s.name = "a".repeat(25) },
        quiet |s| { s.name = "a".repeat(24) };
    e0902_region: "E0902",
        fires |s| { s.region = "korea".into() },
        quiet |s| {
            s.region = "us-gov-west-1".into();
            for z in ["a", "c"] {
                edit!(s, Subnet, z, |x| x.availability_zone = format!("us-gov-west-1{z}"))
            }
        };
    e0903_duplicate_id: "E0903",
        fires |s| { s.add("a", Subnet::public(&Ref::from_id("main"), "10.0.9.0/24", "ap-northeast-2a")); },
        quiet |s| { s.add("a", InternetGateway::new(&Ref::from_id("main"))); };
    e0904_dangling_reference: "E0904",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.launch_template = Ref::from_id("api")) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| g.launch_template = Ref::from_id("web")) };
    e0905_cycle: "E0905",
        fires |s| { edit!(s, SecurityGroup, "alb", |g| g.egress.push(Rule::tcp(3000).to_group(&Ref::from_id("web")))) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(9000).from_group(&Ref::from_id("web")))) };
    e0906_output: "E0906",
        fires |s| { s.output("db", Ref::<DbInstance>::from_id("nope").endpoint()); },
        quiet |s| { s.output("db", Ref::<DbInstance>::from_id("db").endpoint()); };
    e0906_output_attribute: "E0906",
        fires |s| {
            s.output("secret", Ref::<DbInstance>::from_id("db").master_user_secret_arn());
            edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::FromEnv("DB_PASSWORD".into()))
        },
        quiet |s| { s.output("secret", Ref::<DbInstance>::from_id("db").master_user_secret_arn()); };
    e0907_unknown_lint: "E0907",
        fires |s| { s.deny_lint("INFRA-NOPE-001"); },
        quiet |s| { s.deny_lint("INFRA-S3-003"); };
    e0908_allow_reason: "E0908",
        fires |s| { s.allow_lint("INFRA-S3-003", "  "); },
        quiet |s| { s.allow_lint("INFRA-S3-003", "uploads are immutable"); };
    e0909_logical_id: "E0909",
        fires |s| { s.add("bad.id", Bucket::new("shop-other")); },
        quiet |s| { s.add("good-id_2", Bucket::new("shop-other")); };

    e0601_role_name: "E0601",
        fires |s| { s.add("worker-role-for-the-nightly-image-resizing-batch-jobs", Role::ec2()); },
        quiet |s| { s.add("worker", Role::ec2()); };
    e0602_trust: "E0602",
        fires |s| { s.add("fn", Role::for_service("lambda")); },
        quiet |s| { s.add("fn", Role::for_service("lambda.amazonaws.com")); };
    e0602_profile_without_ec2: "E0602",
        fires |s| { edit!(s, Role, "app", |r| r.trusted_services = vec!["ecs-tasks.amazonaws.com".into()]) },
        quiet |s| { edit!(s, Role, "app", |r| r.trusted_services.push("ecs-tasks.amazonaws.com".into())) };
    e0603_managed_policy: "E0603",
        fires |s| { edit!(s, Role, "app", |r| r.managed_policies.push("AmazonS3ReadOnlyAccess".into())) },
        quiet |s| { edit!(s, Role, "app", |r| r.managed_policies.push("arn:aws:iam::123456789012:policy/team/reader".into())) };
    e0604_every_action: "E0604",
        fires |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["*"], &["*"]))) },
        quiet |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::deny(&["*"], &["arn:aws:s3:::shop-uploads"]))) };
    e0604_shape: "E0604",
        fires |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["GetObject"], &["shop-uploads"]))) },
        quiet |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["s3:Get*"], &["arn:aws:s3:::shop-uploads/*"]))) };
    e0604_reserved_element: "E0604",
        fires |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["s3:GetObject"], &["*"]).with("NotResource", serde_json::json!("x")))) },
        quiet |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["s3:GetObject"], &["*"]).with("Condition", serde_json::json!({"Bool": {"aws:SecureTransport": "true"}})))) };
    e0605_secret_of_a_plain_password: "E0605",
        fires |s| {
            edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::FromEnv("DB_PASSWORD".into()));
            edit!(s, Role, "app", |r| r.grants.push(Ref::<DbInstance>::from_id("db").secret_read()))
        },
        quiet |s| { edit!(s, Role, "app", |r| r.grants.push(Ref::<DbInstance>::from_id("db").secret_read())) };
    e0605_connect_without_iam_auth: "E0605",
        fires |s| {
            edit!(s, DbInstance, "db", |d| d.iam_database_authentication = false);
            edit!(s, Role, "app", |r| r.grants.push(Ref::<DbInstance>::from_id("db").grant_connect("app")))
        },
        quiet |s| { edit!(s, Role, "app", |r| r.grants.push(Ref::<DbInstance>::from_id("db").grant_connect("app"))) };
    e0606_role_without_profile: "E0606",
        fires |s| {
            s.add("fn", Role::for_service("lambda.amazonaws.com"));
            edit!(s, LaunchTemplate, "web", |t| t.instance_role = Some(Ref::from_id("fn")))
        },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.instance_role = Some(Ref::from_id("app"))) };
    e0607_connect_user: "E0607",
        fires |s| { edit!(s, Role, "app", |r| r.grants.push(Ref::<DbInstance>::from_id("db").grant_connect("*"))) },
        quiet |s| { edit!(s, Role, "app", |r| r.grants.push(Ref::<DbInstance>::from_id("db").grant_connect("shop_app_2"))) };

    e0701_zone_name: "E0701",
        fires |s| { s.add("dns", HostedZone::new("example")); },
        quiet |s| { s.add("dns", HostedZone::new("shop.example.com")); };
    e0702_record_outside_zone: "E0702",
        fires |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::alias(&z, "www.example.com", &Ref::from_id("alb"))); },
        quiet |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::alias(&z, "www", &Ref::from_id("alb"))); };
    e0703_cname_at_apex: "E0703",
        fires |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::cname(&z, "", "shop.example.net")); },
        quiet |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::cname(&z, "www", "shop.example.net")); };
    e0704_cname_target: "E0704",
        fires |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::cname(&z, "www", "shop example")); },
        quiet |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::cname(&z, "www", "shop-1.example.net.")); };
    e0705_txt_length: "E0705",
        fires |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("dkim", Record::txt(&z, "k._domainkey", ["v".repeat(256)])); },
        quiet |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("dkim", Record::txt(&z, "k._domainkey", ["v".repeat(255), "w".repeat(10)])); };
    e0707_ttl: "E0707",
        fires |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::cname(&z, "www", "shop.example.net").ttl(i32::MAX as u32 + 1)); },
        quiet |s| { let z = s.add("dns", HostedZone::existing("example.com")); s.add("www", Record::cname(&z, "www", "shop.example.net").ttl(i32::MAX as u32)); };
    e0706_certificate_outside_zone: "E0706",
        fires |s| { let z = s.add("dns", HostedZone::existing("example.org")); edit!(s, Certificate, "site", |c| *c = c.clone().validate_in(&z)) },
        quiet |s| { let z = s.add("dns", HostedZone::existing("example.com")); edit!(s, Certificate, "site", |c| *c = c.clone().alternative_name("*.shop.example.com").validate_in(&z)) };

    // ---- lints: identity
    iam_001_service_wide: "INFRA-IAM-001",
        fires |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["iam:PassRole"], &["arn:aws:iam::123456789012:role/x"]))) },
        quiet |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["sqs:SendMessage"], &["arn:aws:sqs:ap-northeast-2:123456789012:jobs"]))) };
    iam_002_write_anywhere: "INFRA-IAM-002",
        fires |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["s3:PutObject"], &["*"]))) },
        quiet |s| { edit!(s, Role, "app", |r| r.statements.push(Statement::allow(&["ec2:DescribeInstances"], &["*"]))) };
    iam_003_missing_grant: "INFRA-IAM-003",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("B=${B}".into()); t.user_data_vars.insert("B".into(), Ref::<Bucket>::from_id("uploads").bucket_name()) }) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| { t.user_data = Some("B=${B}".into()); t.user_data_vars.insert("B".into(), Ref::<Bucket>::from_id("uploads").bucket_name()); t.instance_role = Some(Ref::from_id("app")) }) };

    // ---- lints: security
    sg_001_ssh: "INFRA-SG-001",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_anywhere())) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_cidr("203.0.113.0/24"))) };
    sg_001_all_tcp_from_anywhere: "INFRA-SG-001",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp_range(0, 65535).from_anywhere())) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp_range(0, 65535).from_cidr("10.0.0.0/16"))) };
    sg_001_ssh_ipv6: "INFRA-SG-001",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::all().from_ipv6_cidr("::/0"))) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(2222).from_ipv6_cidr("::/0"))) };
    sg_002_rdp: "INFRA-SG-002",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp_range(3000, 4000).from_anywhere())) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::udp(3389).from_anywhere())) };
    sg_003_database: "INFRA-SG-003",
        fires |s| { edit!(s, SecurityGroup, "db", |g| g.ingress.push(Rule::tcp(5432).from_anywhere())) },
        quiet |s| { edit!(s, SecurityGroup, "db", |g| g.ingress.push(Rule::tcp(5432).from_cidr("10.0.0.0/16"))) };
    elb_001_http_redirect: "INFRA-ELB-001",
        fires |s| { edit!(s, Listener, "http", |l| l.default_action = ListenerAction::forward(&Ref::from_id("web"))) },
        quiet |s| { edit!(s, Listener, "http", |l| l.default_action = ListenerAction::Redirect { protocol: Some(AppProtocol::Https), port: None, host: None, path: None, status: RedirectStatus::Found }) };
    elb_002_invalid_headers: "INFRA-ELB-002",
        fires |s| { edit!(s, LoadBalancer, "alb", |lb| lb.drop_invalid_header_fields = false) },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.idle_timeout_seconds = 120) };
    elb_003_tls_policy: "INFRA-ELB-003",
        fires |s| { edit!(s, Listener, "https", |l| l.ssl_policy = Some("ELBSecurityPolicy-2016-08".into())) },
        quiet |s| { edit!(s, Listener, "https", |l| l.ssl_policy = Some("ELBSecurityPolicy-TLS13-1-3-2021-06".into())) };
    elb_003_no_policy: "INFRA-ELB-003",
        fires |s| { edit!(s, Listener, "https", |l| l.ssl_policy = None) },
        quiet |s| { edit!(s, Listener, "https", |l| l.ssl_policy = Some(DEFAULT_TLS_POLICY.into())) };
    elb_004_shadowed_rule: "INFRA-ELB-004",
        fires |s| { s.add("v1", ListenerRule::new(&Ref::from_id("https"), 20).path("/api/v1/*").forward(&Ref::from_id("web"))); },
        quiet |s| { s.add("v1", ListenerRule::new(&Ref::from_id("https"), 5).path("/api/v1/*").forward(&Ref::from_id("web"))); };
    elb_004_host_shadowed: "INFRA-ELB-004",
        fires |s| { s.add("v1", ListenerRule::new(&Ref::from_id("https"), 20).path("/api/x").host("API.example.com").forward(&Ref::from_id("web"))); },
        quiet |s| { s.add("v1", ListenerRule::new(&Ref::from_id("https"), 20).path("/apix").forward(&Ref::from_id("web"))); };
    ec2_001_imdsv2: "INFRA-EC2-001",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.metadata_options.http_tokens = HttpTokens::Optional) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.metadata_options.http_tokens = HttpTokens::Required) };
    ec2_004_unencrypted_root: "INFRA-EC2-004",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.encrypted = false) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.root_volume.encrypted = true) };
    ec2_002_hop_limit: "INFRA-EC2-002",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.metadata_options.http_put_response_hop_limit = 2) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.metadata_options.http_put_response_hop_limit = 1) };
    ec2_003_secret_assignment: "INFRA-EC2-003",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("#!/bin/bash\nexport DB_PASSWORD='hunter22'\n".into())) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("#!/bin/bash\nTOKEN=$(curl -X PUT http://169.254.169.254/latest/api/token)\ncurl -H \"X-aws-ec2-metadata-token: $TOKEN\" http://169.254.169.254/\n".into())) };
    ec2_003_access_key: "INFRA-EC2-003",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE\n".into())) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("docker run -p 3000:3000 -e PASSWORD_FILE=$SECRET_PATH app\n".into())) };
    ec2_003_arn_and_placeholder: "INFRA-EC2-003",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("docker run -e DB_SECRET=s3cr3t-value app\n".into())) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.user_data = Some("docker run -e DB_SECRET_ARN=arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:rds!db-1 -e DB_SECRET=${DB_SECRET_ARN} app\n".into())) };
    rds_001_public: "INFRA-RDS-001",
        fires |s| { edit!(s, DbInstance, "db", |d| d.publicly_accessible = true) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.multi_az = true) };
    rds_002_encryption: "INFRA-RDS-002",
        fires |s| { edit!(s, DbInstance, "db", |d| d.storage_encrypted = false) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.storage_encrypted = true) };
    rds_003_deletion_protection: "INFRA-RDS-003",
        fires |s| { edit!(s, DbInstance, "db", |d| d.deletion_protection = false) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.deletion_protection = true) };
    rds_004_backups: "INFRA-RDS-004",
        fires |s| { edit!(s, DbInstance, "db", |d| d.backup_retention_days = 6) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.backup_retention_days = 7) };
    rds_005_iam_auth: "INFRA-RDS-005",
        fires |s| { edit!(s, DbInstance, "db", |d| d.iam_database_authentication = false) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.iam_database_authentication = true) };
    rds_006_plain_password: "INFRA-RDS-006",
        fires |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::Plain(Sensitive::new("correct-horse-9"))) },
        quiet |s| { edit!(s, DbInstance, "db", |d| d.master_password = MasterPassword::FromEnv("DB_PASSWORD".into())) };
    s3_001_public_access: "INFRA-S3-001",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.public_access_block.block_public_policy = false) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.public_access_block = PublicAccessBlock::ALL) };
    s3_002_encryption: "INFRA-S3-002",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.encryption = BucketEncryption::None) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.encryption = BucketEncryption::Kms { key_id: None }) };
    s3_003_versioning: "INFRA-S3-003",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.versioning = false) },
        quiet |s| { edit!(s, Bucket, "uploads", |b| b.force_destroy = true) };
    s3_004_access_logging: "INFRA-S3-004",
        fires |s| { edit!(s, Bucket, "uploads", |b| b.access_logging = None) },
        quiet |s| { edit!(s, Bucket, "logs", |b| b.access_logging = None) };
    s3_004_log_target_of_one_load_balancer: "INFRA-S3-004",
        fires |s| {
            let audit = s.add("audit", Bucket::logs("shop-audit"));
            edit!(s, Bucket, "uploads", |b| b.access_logging.as_mut().unwrap().target = audit);
            edit!(s, LoadBalancer, "alb", |lb| lb.access_logs = None);
        },
        quiet |s| {
            let audit = s.add("audit", Bucket::logs("shop-audit"));
            edit!(s, Bucket, "uploads", |b| b.access_logging.as_mut().unwrap().target = audit);
        };
    elb_005_access_logs: "INFRA-ELB-005",
        fires |s| { edit!(s, LoadBalancer, "alb", |lb| lb.access_logs = None) },
        quiet |s| { edit!(s, LoadBalancer, "alb", |lb| lb.access_logs.as_mut().unwrap().prefix = Some("web".into())) };

    // ---- lints: misconfigurations that broke real deployments
    tg_001_health_port: "INFRA-TG-001",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.port = HealthCheckPort::Port(80)) },
        quiet |s| {
            edit!(s, TargetGroup, "web", |t| t.health_check.port = HealthCheckPort::Port(8081));
            edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(8081).from_group(&Ref::from_id("alb"))))
        };
    tg_001_alb_egress: "INFRA-TG-001",
        fires |s| {
            edit!(s, TargetGroup, "web", |t| t.health_check.port = HealthCheckPort::Port(8081));
            edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(8081).from_group(&Ref::from_id("alb"))));
            edit!(s, SecurityGroup, "alb", |g| g.egress = vec![Rule::tcp(3000).from_cidr("10.0.0.0/16")])
        },
        quiet |s| {
            edit!(s, TargetGroup, "web", |t| t.health_check.port = HealthCheckPort::Port(8081));
            edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(8081).from_group(&Ref::from_id("alb"))));
            edit!(s, SecurityGroup, "alb", |g| g.egress = vec![Rule::tcp_range(3000, 9000).from_cidr("10.0.0.0/16")])
        };
    tg_002_health_port_differs: "INFRA-TG-002",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check.port = HealthCheckPort::Port(8081)) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check.port = HealthCheckPort::Port(3000)) };
    tg_003_double_tls: "INFRA-TG-003",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.protocol = AppProtocol::Https) },
        quiet |s| {
            edit!(s, TargetGroup, "web", |t| t.protocol = AppProtocol::Https);
            edit!(s, Listener, "https", |l| l.default_action = ListenerAction::fixed_response(404, "no"));
            edit!(s, ListenerRule, "api", |r| r.action = ListenerAction::fixed_response(404, "no"))
        };
    tg_005_health_protocol: "INFRA-TG-005",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.protocol = AppProtocol::Https) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| { t.protocol = AppProtocol::Https; t.health_check = HealthCheck::https("/") }) };
    tg_005_health_protocol_other_port: "INFRA-TG-005",
        fires |s| { edit!(s, TargetGroup, "web", |t| t.health_check = HealthCheck::https("/")) },
        quiet |s| { edit!(s, TargetGroup, "web", |t| t.health_check = HealthCheck::https("/").port(3001)) };
    tg_004_target_port: "INFRA-TG-004",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress[0].from_port = 3001) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress[0] = Rule::tcp(3000).from_cidr("10.0.0.0/8")) };
    asg_001_elb_health: "INFRA-ASG-001",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.health_check_type = HealthCheckType::Ec2) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| { g.health_check_type = HealthCheckType::Ec2; g.target_groups.clear() }) };
    asg_003_public_exposed: "INFRA-ASG-003",
        fires |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_cidr("203.0.113.0/24"))) },
        quiet |s| { edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_cidr("10.0.0.0/16"))) };
    asg_003_public_ip_in_template: "INFRA-ASG-003",
        fires |s| {
            edit!(s, Subnet, "a", |n| n.map_public_ip_on_launch = false);
            edit!(s, Subnet, "c", |n| n.map_public_ip_on_launch = false);
            edit!(s, LaunchTemplate, "web", |t| t.public_ip = Some(true));
            edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_cidr("203.0.113.0/24")))
        },
        quiet |s| {
            edit!(s, LaunchTemplate, "web", |t| t.public_ip = Some(false));
            edit!(s, SecurityGroup, "web", |g| g.ingress.push(Rule::tcp(22).from_cidr("203.0.113.0/24")))
        };
    asg_004_no_way_out: "INFRA-ASG-004",
        fires |s| { edit!(s, LaunchTemplate, "web", |t| t.public_ip = Some(false)) },
        quiet |s| { edit!(s, LaunchTemplate, "web", |t| t.public_ip = Some(true)) };
    asg_002_grace_period: "INFRA-ASG-002",
        fires |s| { edit!(s, AutoScalingGroup, "web", |g| g.health_check_grace_period_seconds = 0) },
        quiet |s| { edit!(s, AutoScalingGroup, "web", |g| g.health_check_grace_period_seconds = 1) };
}

#[test]
fn every_lint_and_rule_is_documented() {
    let docs = include_str!("../../../docs/rules.md");
    for lint in LINTS {
        assert!(
            docs.contains(lint.id),
            "{} missing from docs/rules.md",
            lint.id
        );
        if let Some(mapping) = lint.mapping {
            assert!(
                docs.contains(mapping),
                "mapping of {} differs in docs/rules.md",
                lint.id
            );
        }
    }
    let mut ids: Vec<&str> = [
        include_str!("rules.rs"),
        include_str!("iam.rs"),
        include_str!("dns.rs"),
    ]
    .into_iter()
    .flat_map(|source| {
        source
            .match_indices("\"E0")
            .filter_map(|(i, _)| source.get(i + 1..i + 6))
    })
    .collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(ids.len() > 40);
    let tests = include_str!("tests.rs");
    for id in ids.iter().copied().chain(LINTS.iter().map(|l| l.id)) {
        assert!(
            docs.contains(&format!("`{id}`")),
            "{id} missing from docs/rules.md"
        );
        assert!(
            tests.contains(&format!(": \"{id}\",")),
            "{id} has no fires/quiet case"
        );
    }
}

#[test]
fn denied_lint_becomes_an_error_and_allowed_lint_disappears() {
    let mut s = base();
    edit!(s, Bucket, "uploads", |b| b.versioning = false);
    let warned = check(&s);
    assert!(!warned.has_errors());
    assert_eq!(warned.warnings().count(), 1);

    s.deny_lint("INFRA-S3-003");
    let denied = check(&s);
    let d = denied.errors().next().expect("an error");
    assert_eq!(d.id, "INFRA-S3-003");
    assert_eq!(denied.warnings().count(), 0);

    s.allow_lint("INFRA-S3-003", "uploads are write-once");
    assert!(check(&s).diagnostics.is_empty());
    assert!(validate(&s).diagnostics.is_empty());
}

#[test]
fn dangling_reference_names_the_field_and_the_right_kind() {
    let mut s = base();
    edit!(s, AutoScalingGroup, "web", |g| g
        .target_groups
        .push(Ref::from_id("alb")));
    let report = validate(&s);
    let d = report.errors().find(|d| d.id == "E0904").expect("E0904");
    assert_eq!(
        d.to_string(),
        "error[E0904]: autoscaling_group.web: field `target_groups[1]`: refers to `elbv2_target_group.alb`, which is not declared"
    );
    assert_eq!(
        d.help.as_deref(),
        Some("ec2_security_group.alb, elbv2_load_balancer.alb exists, but this field needs a elbv2_target_group")
    );
}

#[test]
fn cycle_lists_its_members_in_a_stable_order() {
    let mut s = base();
    edit!(s, SecurityGroup, "alb", |g| g
        .egress
        .push(Rule::tcp(3000).to_group(&Ref::from_id("web"))));
    let cycles: Vec<String> = validate(&s)
        .errors()
        .filter(|d| d.id == "E0905")
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        cycles,
        ["error[E0905]: ec2_security_group.alb: dependency cycle between ec2_security_group.alb, ec2_security_group.web"]
    );
}

#[test]
fn diagnostics_are_sorted_by_address_then_id() {
    let mut s = base();
    s.name = "Bad Name".into();
    edit!(s, Bucket, "uploads", |b| {
        b.versioning = false;
        b.name = "X".into()
    });
    edit!(s, Vpc, "main", |v| v.cidr = "10.0.0.0/8".into());
    let report = check(&s);
    let keys: Vec<(Option<String>, String)> = report
        .diagnostics
        .iter()
        .map(|d| (d.address.as_ref().map(|a| a.to_string()), d.id.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| {
        let parse = |x: &Option<String>| {
            x.as_ref()
                .map(|s| s.parse::<crate::refs::Address>().unwrap())
        };
        (parse(&a.0), &a.1).cmp(&(parse(&b.0), &b.1))
    });
    assert_eq!(keys, sorted);
    assert_eq!(keys.first().map(|k| k.1.as_str()), Some("E0901"));
}

#[test]
fn shadow_detection_understands_wildcards() {
    use super::lints::pattern_covers;
    assert!(pattern_covers("/api/*", "/api/v1/*"));
    assert!(pattern_covers("*", "/anything"));
    assert!(pattern_covers("*.example.com", "api.example.com"));
    assert!(!pattern_covers("/api/*", "/api"));
    assert!(!pattern_covers("/a?i/*", "/api/x"));
    assert!(!pattern_covers("/api/*/x", "/api/1/x"));
}

#[test]
fn secrets_are_reported_without_their_value() {
    use super::lints::find_secret;
    let (line, what) = find_secret("#!/bin/sh\n\nmysql --password=hunter22\n").expect("found");
    assert_eq!(line, 3);
    assert!(!what.contains("hunter22"));
    assert!(find_secret("-----BEGIN RSA PRIVATE KEY-----").is_some());
    assert!(find_secret("echo AKIAIOSFODNN7EXAMPL").is_none());
    assert!(find_secret("secret: \"{{ resolve }}\"").is_none());
}

/// A stack with a problem in almost every resource, rendered the way the CLI prints it.
fn broken() -> Stack {
    let mut s = base();
    s.name = "Shop Prod".into();
    s.region = "ap-northeast-2".into();
    edit!(s, Vpc, "main", |v| v.cidr = "10.0.0.0/12".into());
    edit!(s, Subnet, "a", |x| x.cidr = "10.16.1.0/24".into());
    edit!(s, Subnet, "c", |x| {
        x.cidr = "10.0.2.0/24".into();
        x.availability_zone = "ap-northeast-2a".into()
    });
    edit!(s, SecurityGroup, "web", |g| g.ingress = vec![
        Rule::tcp(22).from_anywhere(),
        Rule::tcp(8080).from_group(&Ref::from_id("alb"))
    ]);
    edit!(s, TargetGroup, "web", |t| {
        t.protocol = AppProtocol::Https;
        t.health_check.path = "health".into();
        t.health_check.interval_seconds = 5;
        t.health_check.timeout_seconds = 5;
        t.health_check.matcher = "ok".into();
        t.health_check.port = HealthCheckPort::Port(80)
    });
    edit!(s, Listener, "http", |l| l.default_action =
        ListenerAction::forward(&Ref::from_id("web")));
    edit!(s, Listener, "https", |l| l.ssl_policy =
        Some("ELBSecurityPolicy-2016-08".into()));
    s.add(
        "v1",
        ListenerRule::new(&Ref::from_id("https"), 10)
            .path("/api/v1/*")
            .forward(&Ref::from_id("web")),
    );
    edit!(s, LaunchTemplate, "web", |t| {
        t.user_data = Some("#!/bin/bash\nexport API_TOKEN=abc123\n".into());
        t.metadata_options = MetadataOptions {
            http_tokens: HttpTokens::Optional,
            http_put_response_hop_limit: 2,
        }
    });
    edit!(s, AutoScalingGroup, "web", |g| {
        g.min_size = 3;
        g.health_check_grace_period_seconds = 0
    });
    edit!(s, DbInstance, "db", |d| {
        d.publicly_accessible = true;
        d.backup_retention_days = 1;
        d.master_password = MasterPassword::Plain(Sensitive::new("pw"))
    });
    edit!(s, Bucket, "uploads", |b| b.name = "Shop.Uploads".into());
    s.add("main", Vpc::new("10.9.0.0/16"));
    s.output("missing", Ref::<Bucket>::from_id("archive").bucket_name());
    s.allow_lint("INFRA-SG-001", "");
    s
}

#[test]
fn broken_stack_report() {
    let report = check(&broken());
    insta::assert_snapshot!(report.render());
}

#[test]
fn report_json_shape() {
    let mut s = base();
    edit!(s, Subnet, "a", |x| x.cidr = "10.1.1.0/24".into());
    edit!(s, Bucket, "uploads", |b| b.versioning = false);
    insta::assert_json_snapshot!(check(&s));
}

#[test]
fn base_stack_covers_every_kind() {
    let s = base();
    let kinds: std::collections::BTreeSet<Kind> =
        s.resources.iter().map(|d| d.resource.kind()).collect();
    assert_eq!(kinds.len(), Kind::ALL.len());
    assert!(validate(&s).diagnostics.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_panics_on_arbitrary_strings(
        name in "\\PC{0,30}",
        region in "[a-z0-9-]{0,20}",
        cidr in "\\PC{0,24}",
        zone in "\\PC{0,20}",
        bucket in "\\PC{0,70}",
        matcher in "[0-9,-]{0,12}",
        user in "\\PC{0,20}",
        user_data in "\\PC{0,200}",
        id in "\\PC{0,10}",
    ) {
        let mut s = base();
        s.name = name;
        s.region = region;
        edit!(s, Subnet, "a", |x| { x.cidr = cidr.clone(); x.availability_zone = zone });
        edit!(s, Vpc, "main", |v| v.cidr = cidr);
        edit!(s, Bucket, "uploads", |b| b.name = bucket);
        edit!(s, TargetGroup, "web", |t| t.health_check.matcher = matcher);
        edit!(s, DbInstance, "db", |d| d.master_username = user);
        edit!(s, LaunchTemplate, "web", |t| t.user_data = Some(user_data));
        edit!(s, AutoScalingGroup, "web", |g| g.launch_template = Ref::from_id(id.clone()));
        s.add(id, Bucket::new("x"));
        let report = check(&s);
        prop_assert!(report.render().ends_with('\n'));
    }

    #[test]
    fn ids_are_checked_against_declarations(ids in proptest::collection::vec("[a-c]", 1..6)) {
        let mut s = base();
        for id in &ids {
            s.add(id.clone(), Bucket::new(format!("bucket-{id}")));
        }
        let report = validate(&s);
        let mut expected: Vec<&String> = ids.iter().collect();
        expected.sort();
        let distinct_duplicated = {
            let mut d: Vec<&String> = expected.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
            d.dedup();
            d.len()
        };
        prop_assert_eq!(report.errors().filter(|d| d.id == "E0903").count(), distinct_duplicated);
    }
}
