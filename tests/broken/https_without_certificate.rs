//! Broken on purpose: an HTTPS listener with no certificate.

use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("broken-https", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    let c = s.add(
        "public_c",
        Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"),
    );
    let igw = s.add("gateway", InternetGateway::new(&vpc));
    s.add(
        "public",
        RouteTable::new(&vpc)
            .route("0.0.0.0/0", &igw)
            .associate(&a)
            .associate(&c),
    );
    let sg = s.add(
        "alb",
        SecurityGroup::new(&vpc, "HTTPS from anywhere").ingress(Rule::tcp(443).from_anywhere()),
    );
    let alb = s.add("alb", LoadBalancer::internet_facing(&[&a, &c], &[&sg]));
    let cert = s.add("site", Certificate::request("broken.example.com"));
    let mut https = Listener::https(&alb, &cert);
    https.certificate = None;
    s.add("https", https);
    s
}
