//! `stacks/single.rs`: one instance from a launch template with swap in its user data, kept
//! by an Auto Scaling Group of exactly one, no load balancer, and a bucket logging into a log
//! bucket; then destroyed, with `--allow-data-loss` for the access logs the emulator (like S3)
//! may have delivered by then.

use infra_tests::Emulator;

use crate::aws::{user_data, Aws};
use crate::support::{assert_no_changes, infra, stack_file};

const STACK: &str = "honeyflow";
const BUCKET: &str = "honeyflow-assets-apne2";
const LOGS: &str = "honeyflow-logs-apne2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_instance_stack_applies_and_destroys() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("single.rs");
    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();

    let subnets = aws.subnets(STACK).await;
    assert_eq!(subnets.keys().collect::<Vec<_>>(), ["public"]);
    let subnet_id = subnets["public"].subnet_id().unwrap();
    let groups = aws.auto_scaling_groups(STACK).await;
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["app"]);
    let group = &groups["app"];
    assert_eq!((group.min_size(), group.max_size()), (Some(1), Some(1)));
    assert_eq!(group.vpc_zone_identifier(), Some(subnet_id));
    assert_eq!(group.health_check_type(), Some("EC2"));
    assert!(group.target_group_arns().is_empty());
    assert!(aws.load_balancers(STACK).await.is_empty());

    let templates = aws.launch_templates(STACK).await;
    let data = aws
        .latest_template_data(templates["app"].launch_template_id().unwrap())
        .await;
    let script = user_data(&data);
    assert!(
        script.contains("dd if=/dev/zero of=/swapfile bs=1M count=2048"),
        "{script}"
    );
    assert!(script.contains("docker run"), "{script}");
    let root_volume = data
        .block_device_mappings()
        .iter()
        .find_map(|m| m.ebs().and_then(|e| e.volume_size()));
    assert_eq!(root_volume, Some(30));
    // The public-IP choice needs a network interface, which then carries the groups.
    let app_sg = aws.security_groups(STACK).await["app"]
        .group_id()
        .map(str::to_string);
    let interfaces: Vec<_> = data
        .network_interfaces()
        .iter()
        .map(|i| {
            (
                i.device_index(),
                i.associate_public_ip_address(),
                i.groups().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        interfaces,
        [(Some(0), Some(true), app_sg.into_iter().collect::<Vec<_>>())]
    );
    assert!(data.security_group_ids().is_empty(), "{data:?}");
    assert_no_changes(&emulator.endpoint(), &stack, "after the apply");

    assert_eq!(aws.bucket_versioning(BUCKET).as_deref(), Some("Enabled"));

    infra(
        &emulator.endpoint(),
        &["destroy", &stack, "--auto-approve", "--allow-data-loss"],
    )
    .assert_success();
    assert_eq!(
        aws.remaining(STACK, &[BUCKET, LOGS]).await,
        Vec::<String>::new()
    );
}
