//! Issue #16, part 2: closet's Route53 zone, the alias to its load balancer and the
//! certificate's validation records, read back through Route53's API; a record infra did not
//! write survives apply and destroy, and the zone holding it is not deleted. Then the zone's
//! validation records as drift, and Route53's answers the emulator does not give (PENDING
//! changes, a CallerReference seen before), from a wire double.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, RrType};
use infra_tests::proxy::{CountingProxy, Fault, FaultHook, Operation, ProxyOptions};
use infra_tests::Emulator;

use crate::aws::Aws;
use crate::support::{
    assert_no_changes, changed_fields, edited_stack, infra, stack_file, upstream, TempDir,
};

const STACK: &str = "closet";

/// A zone made outside infra (as a registrar or another tool would): its id.
async fn registrar_zone(aws: &Aws, name: &str) -> String {
    let created = aws
        .route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("registrar-{name}"))
        .send()
        .await
        .unwrap();
    let zone = created.hosted_zone().expect("the zone is in the answer");
    zone.id().trim_start_matches("/hostedzone/").to_string()
}

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
    let zone = registrar_zone(&aws, "example.com").await;
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

/// A zone, a TXT record and a certificate for `www.example.org`; `validated` says whether the
/// certificate's validation records go into the zone.
fn small_stack(dir: &TempDir, validated: bool) -> String {
    let validate = if validated { ".validate_in(&zone)" } else { "" };
    let name = if validated {
        "validated.rs"
    } else {
        "plain.rs"
    };
    names_stack(dir, name, "HostedZone::new", validate)
}

/// The `names` stack: the zone (`HostedZone::new` or `::existing`), a TXT record `hello` and
/// a certificate with `certificate_tail` appended to its declaration.
fn names_stack(dir: &TempDir, file: &str, zone: &str, certificate_tail: &str) -> String {
    let text = format!(
        r#"use infra_core::prelude::*;

pub fn stack() -> Stack {{
    let mut s = Stack::new("names", "ap-northeast-2");
    let zone = s.add("site", {zone}("example.org"));
    s.add("site", Certificate::request("www.example.org"){certificate_tail});
    s.add("hello", Record::txt(&zone, "hello", ["world"]));
    s
}}
"#
    );
    let path = dir.path().join(file);
    std::fs::write(&path, text).expect("the stack file writes");
    path.to_string_lossy().into_owned()
}

/// The zone named `example.org.`: (id, CallerReference) of each.
async fn org_zones(aws: &Aws) -> Vec<(String, String)> {
    let out = aws.route53.list_hosted_zones().send().await.unwrap();
    out.hosted_zones()
        .iter()
        .filter(|z| z.name() == "example.org.")
        .map(|z| {
            (
                z.id().trim_start_matches("/hostedzone/").to_string(),
                z.caller_reference().to_string(),
            )
        })
        .collect()
}

/// ACM's validation records of the stack's certificate: (ARN, `NAME VALUE` pairs).
async fn validation(aws: &Aws) -> (String, Vec<(String, String)>) {
    let (arn, _) = aws.certificates("names").await["site"].clone();
    let detail = aws.certificate_detail(&arn).await;
    let records = detail
        .domain_validation_options()
        .iter()
        .filter_map(|o| o.resource_record())
        .map(|r| (r.name().to_string(), r.value().to_string()))
        .collect();
    (arn, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_given_to_an_existing_certificate_gets_its_records_and_destroy_takes_orphans_too() {
    let emulator = Emulator::start();
    let dir = TempDir::new("dns-validate-later");
    let plain = small_stack(&dir, false);
    let validated = small_stack(&dir, true);
    infra(&emulator.endpoint(), &["apply", &plain, "--auto-approve"]).assert_success();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let (zone, _) = org_zones(&aws).await.pop().expect("the zone exists");
    let (arn, wanted) = validation(&aws).await;
    assert!(!wanted.is_empty(), "ACM published validation records");
    let cname = |name: &str| format!("{name} CNAME");
    assert!(!aws.records(&zone).await.contains_key(&cname(&wanted[0].0)));

    // Declaring the zone later is a change of the certificate that writes its records.
    let plan = infra(&emulator.endpoint(), &["plan", &validated, "--json"]);
    assert_eq!(
        changed_fields(&plan.json(), "acm_certificate.site"),
        ["validate_in"],
        "{}",
        plan.output()
    );
    infra(
        &emulator.endpoint(),
        &["apply", &validated, "--auto-approve"],
    )
    .assert_success();
    let sets = aws.records(&zone).await;
    for (name, value) in &wanted {
        assert_eq!(sets[&cname(name)].resource_records()[0].value(), value);
    }
    assert_no_changes(
        &emulator.endpoint(),
        &validated,
        "after writing the records",
    );

    // A validation record deleted by hand is drift, mended by the next apply.
    let name = &wanted[0].0;
    let set = aws.records(&zone).await[&cname(name)].clone();
    let delete = Change::builder()
        .action(ChangeAction::Delete)
        .resource_record_set(set)
        .build()
        .unwrap();
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(ChangeBatch::builder().changes(delete).build().unwrap())
        .send()
        .await
        .unwrap();
    let plan = infra(&emulator.endpoint(), &["plan", &validated, "--json"]);
    assert_eq!(
        changed_fields(&plan.json(), "acm_certificate.site"),
        ["validate_in"]
    );
    infra(
        &emulator.endpoint(),
        &["apply", &validated, "--auto-approve"],
    )
    .assert_success();
    assert!(aws.records(&zone).await.contains_key(&cname(name)));

    // The certificate deleted by hand leaves its records behind: they are this stack's (their
    // companions say so), so destroy takes them with the zone instead of calling them foreign.
    aws.acm
        .delete_certificate()
        .certificate_arn(&arn)
        .send()
        .await
        .unwrap();
    infra(
        &emulator.endpoint(),
        &["destroy", &validated, "--auto-approve", "--allow-data-loss"],
    )
    .assert_success();
    assert_eq!(org_zones(&aws).await, []);
}

/// Answers GetChange PENDING `times` times, as Route53 does until a change reaches every name
/// server; answers the first CreateHostedZone `HostedZoneAlreadyExists` (AWS's answer to a
/// CallerReference it has seen, also of a deleted zone), loses the answer to the second, and
/// answers any later one `HostedZoneAlreadyExists` (where moto 5.2 would make another zone).
fn route53_like(pending: usize) -> FaultHook {
    let seen = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    Arc::new(move |operation: &Operation, _| {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(operation.name.clone()).or_default();
        *n += 1;
        match (operation.name.as_str(), *n) {
            ("GetChange", n) if n <= pending => Fault::Respond {
                status: 200,
                content_type: "text/xml",
                body: format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetChangeResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo><Id>/change/C{n}</Id><Status>PENDING</Status><SubmittedAt>2026-12-02T00:00:00.000Z</SubmittedAt></ChangeInfo></GetChangeResponse>"
                ),
            },
            ("CreateHostedZone", 2) => Fault::LoseResponse,
            ("CreateHostedZone", _) => Fault::error(
                operation,
                409,
                "HostedZoneAlreadyExists",
                "A hosted zone has already been created with the specified caller reference.",
            ),
            _ => Fault::Forward,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_wait_for_insync_and_a_seen_or_lost_caller_reference_makes_one_zone() {
    let emulator = Emulator::start();
    let dir = TempDir::new("dns-route53-faults");
    let stack = small_stack(&dir, true);
    const PENDING: usize = 3;
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(route53_like(PENDING)),
            ..ProxyOptions::default()
        },
    );
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();

    // The first reference was refused, the second's answer lost: one zone, made with `#1`.
    let aws = Aws::connect(&emulator.endpoint()).await;
    let zones = org_zones(&aws).await;
    assert_eq!(zones.len(), 1, "{zones:?}");
    assert!(
        zones[0].1.ends_with("/names/site#1"),
        "CallerReference {}",
        zones[0].1
    );
    // Each change (the zone's creation lost its answer, so its change id too; every record
    // batch) was polled until INSYNC: the PENDING answers plus one INSYNC each.
    let batches = proxy.count("ChangeResourceRecordSets");
    assert_eq!(batches, 2, "the TXT record and the validation records");
    assert_eq!(proxy.count("GetChange"), batches + PENDING);
    drop(proxy);
    assert_no_changes(&emulator.endpoint(), &stack, "after the faults");
}

/// Loses the answer to the first sending of each ChangeResourceRecordSets batch: the change
/// lands and the SDK sends the same batch again. Applying, moto answers the resent CREATE
/// `InvalidChangeBatch` ("already exists"), as Route53 does; destroying, the resent DELETE gets
/// Route53's "not found" from here (moto 5.2 accepts a DELETE of a record it no longer has).
fn lose_each_first_batch_answer(destroying: bool) -> FaultHook {
    let seen = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    Arc::new(move |operation: &Operation, _| {
        if operation.name != "ChangeResourceRecordSets" {
            return Fault::Forward;
        }
        let first = seen.lock().unwrap().insert(operation.params.clone());
        match (first, destroying) {
            (true, _) => Fault::LoseResponse,
            (false, true) => Fault::error(
                operation,
                400,
                "InvalidChangeBatch",
                "[Tried to delete resource record set [name='hello.example.org.', type='TXT'] but it was not found]",
            ),
            (false, false) => Fault::Forward,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_batch_whose_answer_was_lost_is_not_an_error_when_it_landed() {
    let emulator = Emulator::start();
    let dir = TempDir::new("dns-lost-batch");
    let stack = small_stack(&dir, true);
    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(lose_each_first_batch_answer(false)),
            ..ProxyOptions::default()
        },
    );
    infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    // Per batch (the TXT record, the validation records): the CREATE lost, its resend refused,
    // an UPSERT of the same sets lost, its resend answered with a change to wait for.
    assert_eq!(proxy.count("ChangeResourceRecordSets"), 2 * 4);
    drop(proxy);

    let aws = Aws::connect(&emulator.endpoint()).await;
    let zones = org_zones(&aws).await;
    assert_eq!(zones.len(), 1, "{zones:?}");
    let records = aws.records(&zones[0].0).await;
    assert_eq!(
        records["hello.example.org. TXT"].resource_records()[0].value(),
        "\"world\""
    );
    assert_eq!(
        records.keys().filter(|k| k.ends_with(" CNAME")).count(),
        1,
        "one validation record: {:?}",
        records.keys()
    );
    assert_no_changes(&emulator.endpoint(), &stack, "after lost answers");

    let proxy = CountingProxy::with_options(
        upstream(&emulator),
        ProxyOptions {
            faults: Some(lose_each_first_batch_answer(true)),
            ..ProxyOptions::default()
        },
    );
    let destroy = ["destroy", &stack, "--auto-approve", "--allow-data-loss"];
    infra(&proxy.endpoint(), &destroy).assert_success();
    // Per batch (the TXT record, the validation records): the DELETE lost, its resend refused.
    assert_eq!(proxy.count("ChangeResourceRecordSets"), 2 * 2);
    drop(proxy);
    // The zone could only be deleted once every record infra wrote was gone.
    assert_eq!(org_zones(&aws).await, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_written_by_hand_is_imported_then_managed_and_the_existing_zone_stays() {
    let emulator = Emulator::start();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let zone = &registrar_zone(&aws, "example.org").await;
    aws.change_record(
        zone,
        ChangeAction::Create,
        "hello.example.org",
        RrType::Txt,
        "\"world\"",
    )
    .await;
    let dir = TempDir::new("dns-import");
    let stack = names_stack(&dir, "existing.rs", "HostedZone::existing", "");

    // Before the import, the name is someone else's: apply refuses it.
    let refused = infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]);
    assert_eq!(refused.code, Some(1), "{}", refused.output());
    assert!(
        refused.output().contains("that infra did not create"),
        "{}",
        refused.output()
    );

    let id = format!("{zone}/hello.example.org/TXT");
    let import = [
        "import",
        stack.as_str(),
        "route53_record.hello",
        id.as_str(),
        "--auto-approve",
    ];
    infra(&emulator.endpoint(), &import).assert_success();
    let sets = aws.records(zone).await;
    let companion = &sets["_infra-txt.hello.example.org. TXT"];
    assert_eq!(
        companion.resource_records()[0].value(),
        "\"infra stack=names region=ap-northeast-2 owner=route53_record.hello\""
    );
    // The hand-made record's TTL (60) is not the declared one: apply brings it in line.
    infra(&emulator.endpoint(), &["apply", &stack, "--auto-approve"]).assert_success();
    assert_eq!(
        aws.records(zone).await["hello.example.org. TXT"].ttl(),
        Some(300)
    );
    assert_no_changes(&emulator.endpoint(), &stack, "after the import");

    infra(
        &emulator.endpoint(),
        &["destroy", &stack, "--auto-approve", "--allow-data-loss"],
    )
    .assert_success();
    let left: Vec<String> = aws.records(zone).await.into_keys().collect();
    assert_eq!(left, ["example.org. NS", "example.org. SOA"]);
}
