//! Broken on purpose: the VPC's CIDR has a /33 prefix.

use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("broken-cidr", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/33"));
    s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    s
}
