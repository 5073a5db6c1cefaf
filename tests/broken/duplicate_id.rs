//! Broken on purpose: two subnets share the logical id `public_a`.

use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("broken-duplicate", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"),
    );
    s
}
