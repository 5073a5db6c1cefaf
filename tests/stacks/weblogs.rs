//! A small stack for the log tests: a load balancer and an uploads bucket logging into a log
//! bucket that keeps logs 30 days.

use infra_core::prelude::*;

pub const LOGS: &str = "weblogs-logs-apne2";
pub const UPLOADS: &str = "weblogs-uploads-apne2";

pub fn stack() -> Stack {
    let mut s = Stack::new("weblogs", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.30.0.0/16"));
    let a = s.add("a", Subnet::public(&vpc, "10.30.1.0/24", "ap-northeast-2a"));
    let c = s.add("c", Subnet::public(&vpc, "10.30.2.0/24", "ap-northeast-2c"));
    let sg = s.add(
        "alb",
        SecurityGroup::new(&vpc, "HTTPS from anywhere").ingress(Rule::tcp(443).from_anywhere()),
    );
    let logs = s.add("logs", Bucket::logs(LOGS).expire_after_days(30));
    s.add(
        "web",
        LoadBalancer::internet_facing(&[&a, &c], &[&sg]).access_logs(&logs),
    );
    s.add("uploads", Bucket::new(UPLOADS).access_logging(&logs));
    s
}
