//! Broken on purpose: the subnet's CIDR is not inside the VPC's.

use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("broken-subnet", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    s.add(
        "public_a",
        Subnet::public(&vpc, "10.1.1.0/24", "ap-northeast-2a"),
    );
    s
}
