//! Broken on purpose: refers to a subnet that was never declared (rustc error E0425).

use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("broken-compile", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let public_a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    s.add(
        "db",
        DbSubnetGroup::new("database subnets", &[&public_a, &public_b]),
    );
    s
}
