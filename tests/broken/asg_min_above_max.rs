//! Broken on purpose: an Auto Scaling Group whose minimum is above its maximum.

use infra_core::prelude::*;

pub fn stack() -> Stack {
    let mut s = Stack::new("broken-asg", "ap-northeast-2");
    let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    let a = s.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    let sg = s.add("web", SecurityGroup::new(&vpc, "Web tier"));
    let template = s.add(
        "web",
        LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro").security_group(&sg),
    );
    s.add("web", AutoScalingGroup::new(&template, &[&a], 3, 1));
    s
}
