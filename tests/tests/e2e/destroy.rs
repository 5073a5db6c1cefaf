//! Issue #6, item 6: destroy refuses to lose data unless told `--allow-data-loss`; with it,
//! nothing tagged with the stack remains, by per-type describes and by the Resource Groups
//! Tagging API.

use aws_sdk_s3::primitives::ByteStream;
use infra_tests::proxy::CountingProxy;

use crate::apply::applied_closet;
use crate::aws::Aws;
use crate::support::{infra, stack_file, upstream};

const STACK: &str = "closet";
const BUCKET: &str = "closet-uploads-apne2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_refuses_to_lose_data_then_removes_everything_with_the_flag() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let stack = stack_file("closet.rs");
    aws.s3
        .put_object()
        .bucket(BUCKET)
        .key("avatars/1.png")
        .body(ByteStream::from_static(b"not really a png"))
        .send()
        .await
        .unwrap();
    let tagged = aws.tagged_arns(STACK).await;
    assert!(
        tagged.iter().any(|arn| arn.contains(":vpc/")),
        "the tagging API does not list the stack's VPC: {tagged:?}"
    );
    let db_identifier = aws.db_instances(STACK).await["db"]
        .db_instance_identifier()
        .unwrap()
        .to_string();

    // Refused: the database is protected and the bucket holds an object. Nothing is touched.
    let proxy = CountingProxy::start(upstream(&emulator));
    let refused = infra(&proxy.endpoint(), &["destroy", &stack, "--auto-approve"]);
    assert!(
        !refused.success(),
        "destroy went ahead:\n{}",
        refused.output()
    );
    let output = refused.output();
    assert!(output.contains("--allow-data-loss"), "{output}");
    assert!(output.contains("rds_db_instance.db"), "{output}");
    assert!(output.contains("s3_bucket.uploads"), "{output}");
    let writes = proxy.mutating();
    assert!(
        writes.is_empty(),
        "a refused destroy changes nothing: {writes:?}"
    );
    assert!(aws.db_instances(STACK).await.contains_key("db"));
    assert!(aws.vpcs(STACK).await.contains_key("main"));
    let objects = aws
        .s3
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(objects.key_count(), Some(1));

    // Allowed: everything goes; the database leaves a final snapshot behind, and says so.
    let destroyed = infra(
        &emulator.endpoint(),
        &["destroy", &stack, "--auto-approve", "--allow-data-loss"],
    );
    destroyed.assert_success();
    assert_eq!(
        aws.remaining(STACK, &[BUCKET]).await,
        Vec::<String>::new(),
        "resources tagged infra:stack={STACK} survived destroy"
    );
    assert_eq!(
        aws.tagged_arns(STACK).await,
        Vec::<String>::new(),
        "the tagging API still lists resources tagged infra:stack={STACK}"
    );
    let snapshots = aws
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(&db_identifier)
        .send()
        .await
        .unwrap();
    let snapshot = snapshots
        .db_snapshots()
        .first()
        .and_then(|s| s.db_snapshot_identifier())
        .unwrap_or_else(|| panic!("no final snapshot of {db_identifier}"));
    let output = destroyed.output();
    assert_eq!(
        output
            .matches(&format!("final snapshot `{snapshot}` is kept"))
            .count(),
        1,
        "{output}"
    );
    assert!(
        output.contains(&format!("--db-snapshot-identifier {snapshot}")),
        "{output}"
    );
}
