//! Issue 14: one resource's values inside another's settings. The api tier's user data carries
//! the database endpoint, its secret's ARN and the bucket name from one apply from nothing; a
//! replaced database rolls out a new template version; each checked through the AWS API.

use infra_tests::refresh_double::{RefreshDouble, RefreshScript};

use crate::apply::applied_closet;
use crate::aws::{user_data, Aws};
use crate::support::{assert_no_changes, edited_stack, infra, stack_file, upstream, TempDir};

const STACK: &str = "closet";
const BUCKET: &str = "closet-uploads-apne2";

/// The user data of a launch template's `$Latest` version, decoded.
async fn latest_user_data(aws: &Aws, template: &str) -> String {
    let templates = aws.launch_templates(STACK).await;
    let id = templates[template].launch_template_id().unwrap();
    user_data(&aws.latest_template_data(id).await)
}

/// The database's endpoint address and managed secret's ARN, as RDS reports them.
async fn database(aws: &Aws) -> (String, String) {
    let dbs = aws.db_instances(STACK).await;
    let db = &dbs["db"];
    let host = db.endpoint().and_then(|e| e.address()).unwrap().to_string();
    let secret = db
        .master_user_secret()
        .and_then(|s| s.secret_arn())
        .expect("the master password is managed")
        .to_string();
    (host, secret)
}

fn api_env(host: &str, secret: &str) -> String {
    format!("-e DB_HOST={host} -e DB_SECRET_ARN={secret} -e UPLOADS_BUCKET={BUCKET} -p 8080:8080")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apply_from_nothing_fills_the_api_template_from_the_database_and_bucket() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;

    let (host, secret) = database(&aws).await;
    assert!(
        !host.is_empty() && secret.starts_with("arn:"),
        "{host} {secret}"
    );
    let api = latest_user_data(&aws, "api").await;
    assert!(api.contains(&api_env(&host, &secret)), "{api}");
    assert!(
        !api.contains("${"),
        "a placeholder was left unfilled:\n{api}"
    );
    let web = latest_user_data(&aws, "web").await;
    assert!(
        web.contains("-e API_URL=https://closet.example.com/api -p 3000:3000"),
        "{web}"
    );
    assert_no_changes(
        &emulator.endpoint(),
        &stack_file("closet.rs"),
        "after apply",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_database_rolls_out_a_template_version_with_its_new_values() {
    let emulator = applied_closet();
    let aws = Aws::connect(&emulator.endpoint()).await;
    let (old_host, old_secret) = database(&aws).await;
    let templates = aws.launch_templates(STACK).await;
    let api_template = templates["api"].launch_template_id().unwrap().to_string();
    let version_before = templates["api"].latest_version_number();

    // A new database name replaces the instance (create before destroy, a new identifier).
    let dir = TempDir::new("wiring");
    let renamed = edited_stack(
        &dir,
        "closet.rs",
        &[(".db_name(\"closet\")", ".db_name(\"closet2\")")],
    );
    let double = RefreshDouble::start(upstream(&emulator), RefreshScript::succeed_after(1));
    let plan = infra(&double.endpoint(), &["plan", &renamed, "--allow-data-loss"]);
    assert!(
        plan.stdout
            .contains("(known after apply: rds_db_instance.db.endpoint)"),
        "{}",
        plan.output()
    );
    infra(
        &double.endpoint(),
        &["apply", &renamed, "--auto-approve", "--allow-data-loss"],
    )
    .assert_success();

    let (host, secret) = database(&aws).await;
    assert_ne!((&host, &secret), (&old_host, &old_secret));
    let api = latest_user_data(&aws, "api").await;
    assert!(api.contains(&api_env(&host, &secret)), "{api}");
    let templates = aws.launch_templates(STACK).await;
    assert!(templates["api"].latest_version_number() > version_before);
    let starts = double.starts();
    let api_start = starts
        .iter()
        .find(|s| s.group.contains("api"))
        .unwrap_or_else(|| panic!("no refresh of the api group: {starts:?}"));
    let desired = api_start
        .desired_template
        .as_ref()
        .expect("a desired template");
    assert_eq!(desired.id.as_deref(), Some(api_template.as_str()));
    assert!(
        starts.iter().all(|s| !s.group.contains("web")),
        "the web tier does not use the database: {starts:?}"
    );

    assert_no_changes(&double.endpoint(), &renamed, "after the replacement");
}
