//! ACM against the moto emulator: requested certificates with DNS validation records, imported
//! PEM files (generated with `openssl`), and existing certificates that are never touched.

use std::path::PathBuf;
use std::sync::OnceLock;

use infra_aws::{AwsOptions, AwsProvider};
use infra_core::prelude::*;
use infra_core::provider::{Context, DeleteOptions, NoProgress, Resolved};
use infra_core::{Kind, Observed, Provider};
use infra_tests::{self_signed, Emulator};

const REGION: &str = "ap-northeast-2";

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let emu = Emulator::start();
        emu.set_process_env();
        emu
    })
}

async fn provider() -> AwsProvider {
    emulator();
    AwsProvider::connect(REGION, AwsOptions::default()).await
}

async fn raw() -> aws_sdk_acm::Client {
    emulator();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await;
    aws_sdk_acm::Client::new(&config)
}

fn ctx<'a>(stack: &'a Stack, resolved: &'a Resolved) -> Context<'a> {
    Context {
        stack: &stack.name,
        region: REGION,
        resolved,
        progress: &NoProgress,
        no_wait: false,
    }
}

fn find<'a>(observed: &'a [Observed], id: &str) -> Option<&'a Observed> {
    observed
        .iter()
        .find(|o| o.address == Address::new(Kind::Certificate, id))
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("infra-acm-test-{}-{name}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread")]
async fn requested_certificate_has_validation_records_and_turns_issued() {
    let p = provider().await;
    let mut stack = Stack::new("acm-request", REGION);
    stack.add(
        "site",
        Certificate::request("closet.example.com")
            .alternative_name("www.closet.example.com")
            .wait_for_issued(),
    );
    let d = stack.resources[0].clone();
    let resolved = Resolved::default();
    let created = p
        .create(&ctx(&stack, &resolved), &d)
        .await
        .expect("request");
    assert!(created.physical_id.starts_with("arn:aws:acm:"));
    let records = &created.attributes["validation_records"];
    assert!(!records.is_empty(), "no validation records");
    for line in records.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[1], "CNAME", "{line}");
    }

    // moto issues requested certificates after MOTO_ACM_VALIDATION_WAIT (0 in the harness).
    let ready = p
        .wait_ready(&ctx(&stack, &resolved), &created)
        .await
        .expect("ISSUED");
    assert_eq!(ready.attributes["status"], "ISSUED");

    let observed = p.discover(&stack).await.expect("discover");
    let site = find(&observed, "site").expect("discovered");
    assert_eq!(site.resource, d.resource);
    assert_eq!(site.physical_id, created.physical_id);

    // A retried request (same token) does not make a second certificate.
    let again = p
        .create(&ctx(&stack, &resolved), &d)
        .await
        .expect("request again");
    assert_eq!(again.physical_id, created.physical_id);

    p.delete(&ctx(&stack, &resolved), site, DeleteOptions::default())
        .await
        .expect("delete");
    assert!(find(&p.discover(&stack).await.unwrap(), "site").is_none());
    // Deleting what is already gone is fine.
    p.delete(&ctx(&stack, &resolved), site, DeleteOptions::default())
        .await
        .expect("delete again");

    // Requested again within the token's hour (apply, destroy, apply): ACM answers the token
    // with the deleted certificate; infra goes on to the next token and gets a new one.
    let renewed = p
        .create(&ctx(&stack, &resolved), &d)
        .await
        .expect("request after the delete");
    assert_ne!(renewed.physical_id, created.physical_id);
    let acm = raw().await;
    let detail = acm
        .describe_certificate()
        .certificate_arn(&renewed.physical_id)
        .send()
        .await
        .expect("the new certificate exists");
    assert_eq!(
        detail.certificate().and_then(|c| c.domain_name()),
        Some("closet.example.com")
    );
    let stale = acm
        .describe_certificate()
        .certificate_arn(&created.physical_id)
        .send()
        .await;
    assert!(stale.is_err(), "the first certificate stays deleted");
    p.delete(&ctx(&stack, &resolved), &renewed, DeleteOptions::default())
        .await
        .expect("delete the new one");
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_certificate_round_trip_and_out_of_band_reimport() {
    let p = provider().await;
    let dir = scratch("import");
    let (cert, key) = self_signed(&dir, "import.example.com");
    let mut stack = Stack::new("acm-import", REGION);
    stack.add("site", Certificate::import(&cert, &key));
    let d = stack.resources[0].clone();
    let resolved = Resolved::default();
    let created = p.create(&ctx(&stack, &resolved), &d).await.expect("import");
    assert_eq!(created.resource, d.resource);
    assert_eq!(created.attributes["status"], "ISSUED");

    let observed = p.discover(&stack).await.expect("discover");
    let site = find(&observed, "site").expect("discovered").clone();
    assert_eq!(site.resource, d.resource);

    // Out of band: another certificate is imported into the same ARN by hand.
    let (other_cert, other_key) = self_signed(&dir, "other.example.com");
    raw()
        .await
        .import_certificate()
        .certificate_arn(&site.physical_id)
        .certificate(aws_sdk_acm::primitives::Blob::new(
            std::fs::read(&other_cert).unwrap(),
        ))
        .private_key(aws_sdk_acm::primitives::Blob::new(
            std::fs::read(&other_key).unwrap(),
        ))
        .send()
        .await
        .expect("raw re-import");
    // AWS keeps tags across a re-import; moto drops them, so put them back as AWS would have.
    raw()
        .await
        .add_tags_to_certificate()
        .certificate_arn(&site.physical_id)
        .tags(
            aws_sdk_acm::types::Tag::builder()
                .key("infra:stack")
                .value("acm-import")
                .build()
                .unwrap(),
        )
        .tags(
            aws_sdk_acm::types::Tag::builder()
                .key("infra:id")
                .value("site")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("raw tags");
    let observed = p.discover(&stack).await.expect("discover");
    let drifted = find(&observed, "site").expect("discovered").clone();
    assert_ne!(drifted.resource, d.resource, "re-import not detected");
    let Resource::Certificate(Certificate::Import {
        certificate_pem, ..
    }) = &drifted.resource
    else {
        panic!("imported certificate expected");
    };
    assert!(
        certificate_pem.starts_with("(imported certificate, serial"),
        "{certificate_pem}"
    );

    // Update re-imports the declared files into the same ARN.
    let updated = p
        .update(
            &ctx(&stack, &resolved),
            &d,
            &drifted,
            &["certificate_pem".to_string()],
        )
        .await
        .expect("re-import");
    assert_eq!(updated.physical_id, site.physical_id);
    let observed = p.discover(&stack).await.expect("discover");
    assert_eq!(find(&observed, "site").unwrap().resource, d.resource);

    p.delete(&ctx(&stack, &resolved), &updated, DeleteOptions::default())
        .await
        .expect("delete");
    assert!(find(&p.discover(&stack).await.unwrap(), "site").is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_pem_fails_naming_the_file_without_contents() {
    let p = provider().await;
    let mut stack = Stack::new("acm-missing-file", REGION);
    stack.add(
        "site",
        Certificate::import("does/not/exist.pem", "does/not/exist.key"),
    );
    let resolved = Resolved::default();
    let err = p
        .create(&ctx(&stack, &resolved), &stack.resources[0])
        .await
        .expect_err("missing file");
    let text = err.to_string();
    assert!(text.contains("acm_certificate.site"), "{text}");
    assert!(
        text.contains("`certificate_pem` file `does/not/exist.pem`"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_certificate_is_verified_reported_and_never_tagged_or_deleted() {
    let p = provider().await;
    let acm = raw().await;
    let dir = scratch("existing");
    let (cert, key) = self_signed(&dir, "existing.example.com");
    let arn = acm
        .import_certificate()
        .certificate(aws_sdk_acm::primitives::Blob::new(
            std::fs::read(&cert).unwrap(),
        ))
        .private_key(aws_sdk_acm::primitives::Blob::new(
            std::fs::read(&key).unwrap(),
        ))
        .send()
        .await
        .expect("raw import")
        .certificate_arn
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let mut stack = Stack::new("acm-existing", REGION);
    stack.add("site", Certificate::existing(&arn));
    let d = stack.resources[0].clone();
    let resolved = Resolved::default();
    let created = p
        .create(&ctx(&stack, &resolved), &d)
        .await
        .expect("verify existing");
    assert_eq!(created.physical_id, arn);
    assert_eq!(created.resource, d.resource);
    p.adopt(&ctx(&stack, &resolved), &created)
        .await
        .expect("adopt");

    let observed = p.discover(&stack).await.expect("discover");
    assert_eq!(
        find(&observed, "site").expect("reported").resource,
        d.resource
    );

    p.delete(&ctx(&stack, &resolved), &created, DeleteOptions::default())
        .await
        .expect("delete leaves it");
    acm.describe_certificate()
        .certificate_arn(&arn)
        .send()
        .await
        .expect("the existing certificate still exists");
    let tags = acm
        .list_tags_for_certificate()
        .certificate_arn(&arn)
        .send()
        .await
        .expect("tags");
    assert!(tags.tags().is_empty(), "tagged: {:?}", tags.tags());

    // A wrong ARN is refused at create with the field to fix.
    let mut wrong = Stack::new("acm-existing-wrong", REGION);
    let missing =
        arn.rsplit_once('/').unwrap().0.to_string() + "/00000000-0000-0000-0000-000000000000";
    wrong.add("site", Certificate::existing(&missing));
    let err = p
        .create(&ctx(&wrong, &resolved), &wrong.resources[0])
        .await
        .expect_err("missing certificate");
    assert!(err.to_string().contains("set `arn`"), "{err}");
    assert!(find(&p.discover(&wrong).await.unwrap(), "site").is_none());
}
