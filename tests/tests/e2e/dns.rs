//! Issue #16, part 2: closet's Route53 zone, the alias to its load balancer and the
//! certificate's validation records, read back through Route53's API; a record infra did not
//! write survives apply and destroy, and the zone holding it is not deleted.

use aws_sdk_route53::types::{ChangeAction, RrType};
use infra_tests::Emulator;

use crate::aws::Aws;
use crate::support::{edited_stack, infra, stack_file, TempDir};

const STACK: &str = "closet";

/// Someone else's TXT record in the zone.
async fn add_foreign(aws: &Aws, zone: &str, action: ChangeAction) {
    aws.change_record(zone, action, "keep.example.com", RrType::Txt, "\"mine\"")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closet_gets_its_zone_alias_and_validation_records_and_leaves_foreign_records_alone() {
    let emulator = Emulator::with_acm_validation_wait(6);
    let run = infra(
        &emulator.endpoint(),
        &["apply", &stack_file("closet.rs"), "--auto-approve"],
    );
    run.assert_success();
    assert!(
        run.output().contains("https://closet.example.com"),
        "{}",
        run.output()
    );

    let aws = Aws::connect(&emulator.endpoint()).await;
    let zone = aws.zone_id("example.com.").await.expect("the zone exists");
    let sets = aws.records(&zone).await;

    // The alias: the load balancer's DNS name and canonical zone id.
    let load_balancers = aws.load_balancers(STACK).await;
    let alb = &load_balancers["alb"];
    let alias = sets["closet.example.com. A"]
        .alias_target()
        .expect("an alias");
    assert_eq!(
        alias.dns_name().trim_end_matches('.'),
        alb.dns_name().unwrap()
    );
    assert_eq!(
        alias.hosted_zone_id(),
        alb.canonical_hosted_zone_id().unwrap()
    );
    assert!(sets.contains_key("_infra-a.closet.example.com. TXT"));

    // The validation CNAMEs: ACM's exact names and values, and the certificate is ISSUED.
    let certificates = aws.certificates(STACK).await;
    let (arn, _) = &certificates["site"];
    aws.assert_issued_and_validated_in(arn, &sets).await;
    let https = aws.listeners(alb.load_balancer_arn().unwrap()).await;
    assert!(https.contains_key(&443));

    // Someone else's record survives a second apply and the destroy; the zone holding it stays.
    add_foreign(&aws, &zone, ChangeAction::Create).await;
    infra(
        &emulator.endpoint(),
        &["apply", &stack_file("closet.rs"), "--auto-approve"],
    )
    .assert_success();
    let destroy = infra(
        &emulator.endpoint(),
        &[
            "destroy",
            &stack_file("closet.rs"),
            "--auto-approve",
            "--allow-data-loss",
        ],
    );
    assert_eq!(destroy.code, Some(1), "{}", destroy.output());
    assert!(
        destroy
            .output()
            .contains("still holds records infra did not create"),
        "{}",
        destroy.output()
    );
    assert!(destroy.output().contains("keep.example.com TXT"));
    let left: Vec<String> = aws.records(&zone).await.into_keys().collect();
    assert_eq!(
        left,
        [
            "example.com. NS",
            "example.com. SOA",
            "keep.example.com. TXT"
        ],
        "exactly infra's records are gone"
    );

    add_foreign(&aws, &zone, ChangeAction::Delete).await;
    infra(
        &emulator.endpoint(),
        &[
            "destroy",
            &stack_file("closet.rs"),
            "--auto-approve",
            "--allow-data-loss",
        ],
    )
    .assert_success();
    assert_eq!(aws.zone_id("example.com.").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_an_existing_zone_a_name_taken_by_someone_else_is_refused_and_the_zone_outlives_destroy()
{
    let emulator = Emulator::with_acm_validation_wait(2);
    let aws = Aws::connect(&emulator.endpoint()).await;
    let created = aws
        .route53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("registrar")
        .send()
        .await
        .unwrap();
    let zone = created
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    add_foreign(&aws, &zone, ChangeAction::Create).await;
    aws.change_record(
        &zone,
        ChangeAction::Create,
        "closet.example.com",
        RrType::A,
        "192.0.2.10",
    )
    .await;
    let dir = TempDir::new("dns-existing");
    let stack = edited_stack(
        &dir,
        "closet.rs",
        &[("HostedZone::new(ZONE)", "HostedZone::existing(ZONE)")],
    );

    let refused = infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]);
    assert_eq!(refused.code, Some(1), "{}", refused.output());
    for expected in [
        "failed to create route53_record.closet",
        "`closet.example.com` already has a A record in zone `example.com` that infra did not create",
    ] {
        assert!(refused.output().contains(expected), "`{expected}` missing:\n{}", refused.output());
    }
    let a = &aws.records(&zone).await["closet.example.com. A"];
    assert_eq!(
        a.resource_records()[0].value(),
        "192.0.2.10",
        "the foreign record is untouched"
    );

    aws.change_record(
        &zone,
        ChangeAction::Delete,
        "closet.example.com",
        RrType::A,
        "192.0.2.10",
    )
    .await;
    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    infra(
        &emulator.endpoint(),
        &["destroy", &stack, "--auto-approve", "--allow-data-loss"],
    )
    .assert_success();
    assert_eq!(
        aws.zone_id("example.com.").await.as_deref(),
        Some(zone.as_str()),
        "the existing zone stays"
    );
    let left: Vec<String> = aws.records(&zone).await.into_keys().collect();
    assert_eq!(
        left,
        [
            "example.com. NS",
            "example.com. SOA",
            "keep.example.com. TXT"
        ]
    );
}
