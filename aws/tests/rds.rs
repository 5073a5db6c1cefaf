//! RDS DB subnet groups and DB instances against the moto emulator.

use std::sync::OnceLock;

use infra_aws::{AwsOptions, AwsProvider};
use infra_core::model::{
    DbInstance, DbSubnetGroup, Declared, MasterPassword, SecurityGroup, Subnet,
};
use infra_core::provider::{Context, DeleteOptions, NoProgress, Resolved};
use infra_core::{Address, Kind, Observed, Provider, Ref, Resource, Sensitive, Stack};
use infra_tests::Emulator;

const REGION: &str = "ap-northeast-2";

fn emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(|| {
        let emu = Emulator::start();
        emu.set_process_env();
        emu
    })
}

async fn sdk_config() -> aws_types::SdkConfig {
    emulator();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await
}

async fn provider() -> AwsProvider {
    emulator();
    AwsProvider::connect(REGION, AwsOptions::default()).await
}

fn ctx<'a>(stack: &'a str, resolved: &'a Resolved) -> Context<'a> {
    Context {
        stack,
        region: REGION,
        resolved,
        progress: &NoProgress,
        no_wait: false,
    }
}

fn declared(stack: &Stack, kind: Kind, id: &str) -> Declared {
    stack
        .get(&Address::new(kind, id))
        .cloned()
        .expect("declared")
}

async fn discovered(p: &AwsProvider, stack: &Stack, kind: Kind, id: &str) -> Option<Observed> {
    let all = p.discover(stack).await.expect("discover");
    all.into_iter()
        .find(|o| o.address == Address::new(kind, id))
}

/// A VPC with three subnets in three zones and a security group, made with the raw SDK (not
/// owned by any stack) and entered in `resolved` under their physical ids.
async fn network(resolved: &mut Resolved) -> (Vec<String>, String) {
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config().await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .expect("vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let mut subnets = Vec::new();
    for (i, zone) in ["a", "b", "c"].iter().enumerate() {
        let cidr = format!("10.1.{}.0/24", i + 1);
        let zone = format!("{REGION}{zone}");
        let out = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(&cidr)
            .availability_zone(&zone)
            .send()
            .await
            .expect("subnet");
        let id = out
            .subnet()
            .and_then(|s| s.subnet_id())
            .expect("subnet id")
            .to_string();
        resolved.insert(Observed::new(
            Address::new(Kind::Subnet, id.clone()),
            id.clone(),
            Subnet::private(&Ref::from_id(vpc_id.clone()), cidr, zone).into(),
        ));
        subnets.push(id);
    }
    let sg = ec2
        .create_security_group()
        .group_name(format!("db-{vpc_id}"))
        .description("db")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("sg");
    let sg_id = sg.group_id().expect("sg id").to_string();
    resolved.insert(Observed::new(
        Address::new(Kind::SecurityGroup, sg_id.clone()),
        sg_id.clone(),
        SecurityGroup::new(&Ref::from_id(vpc_id), "db").into(),
    ));
    (subnets, sg_id)
}

/// A declared subnet group with its subnets in the order discovery reports them (sorted; the
/// engine compares them as a set).
fn sorted(declared: &Declared) -> Resource {
    let mut resource = declared.resource.clone();
    if let Resource::DbSubnetGroup(g) = &mut resource {
        g.subnets.sort();
    }
    resource
}

fn db(observed: &Observed) -> &DbInstance {
    match &observed.resource {
        Resource::DbInstance(db) => db,
        other => panic!("DB instance expected, got {other:?}"),
    }
}

#[tokio::test]
async fn private_encrypted_protected_database_lifecycle() {
    let p = provider().await;
    let rds = aws_sdk_rds::Client::new(&sdk_config().await);
    let mut resolved = Resolved::default();
    let (subnets, sg) = network(&mut resolved).await;

    let mut stack = Stack::new("rds-main", REGION);
    let group = stack.add(
        "db",
        DbSubnetGroup::new(
            "main database subnets",
            &[
                &Ref::from_id(subnets[0].clone()),
                &Ref::from_id(subnets[2].clone()),
            ],
        ),
    );
    stack.add(
        "db",
        DbInstance::mysql("8.0", "db.t3.micro", &group)
            .db_name("closet")
            .security_group(&Ref::from_id(sg.clone())),
    );

    let created_group = p
        .create(
            &ctx(&stack.name, &resolved),
            &declared(&stack, Kind::DbSubnetGroup, "db"),
        )
        .await
        .expect("create subnet group");
    assert!(
        created_group.physical_id.starts_with("rds-main-db-"),
        "{}",
        created_group.physical_id
    );
    resolved.insert(created_group.clone());

    let created = p
        .create(
            &ctx(&stack.name, &resolved),
            &declared(&stack, Kind::DbInstance, "db"),
        )
        .await
        .expect("create instance");
    let ready = p
        .wait_ready(&ctx(&stack.name, &resolved), &created)
        .await
        .expect("available");
    assert!(ready.holds_data);
    assert!(ready.attributes["master_user_secret_arn"].starts_with("arn:aws:secretsmanager:"));
    assert!(!ready.attributes["endpoint"].is_empty());
    assert_eq!(ready.attributes["port"], "3306");
    assert!(ready.attributes["arn"].starts_with("arn:aws:rds:"));
    resolved.insert(ready.clone());

    // Discovery gives back exactly what was declared (the subnet group reference relinked).
    let found_group = discovered(&p, &stack, Kind::DbSubnetGroup, "db")
        .await
        .expect("group");
    assert_eq!(
        found_group.resource,
        sorted(&declared(&stack, Kind::DbSubnetGroup, "db"))
    );
    let found = discovered(&p, &stack, Kind::DbInstance, "db")
        .await
        .expect("instance");
    assert_eq!(
        found.resource,
        declared(&stack, Kind::DbInstance, "db").resource
    );
    assert_eq!(db(&found).master_password, MasterPassword::Managed);
    assert!(
        !db(&found).publicly_accessible
            && db(&found).storage_encrypted
            && db(&found).deletion_protection
    );
    assert!(found.attributes.contains_key("master_user_secret_arn"));
    // The secret's value never appears.
    assert!(!serde_json::to_string(&found)
        .expect("json")
        .contains("SecretString"));

    // In place: instance class, storage, backups.
    stack.resources[1].resource = DbInstance::mysql("8.0", "db.t3.small", &group)
        .db_name("closet")
        .security_group(&Ref::from_id(sg.clone()))
        .storage_gib(30)
        .backup_retention_days(3)
        .into();
    let changed = [
        "instance_class",
        "allocated_storage_gib",
        "backup_retention_days",
    ]
    .map(String::from);
    p.update(
        &ctx(&stack.name, &resolved),
        &declared(&stack, Kind::DbInstance, "db"),
        &found,
        &changed,
    )
    .await
    .expect("update instance");
    let found = discovered(&p, &stack, Kind::DbInstance, "db")
        .await
        .expect("instance");
    assert_eq!(
        found.resource,
        declared(&stack, Kind::DbInstance, "db").resource
    );

    // Out of band: someone makes it public.
    rds.modify_db_instance()
        .db_instance_identifier(&found.physical_id)
        .publicly_accessible(true)
        .apply_immediately(true)
        .send()
        .await
        .expect("raw modify");
    let drifted = discovered(&p, &stack, Kind::DbInstance, "db")
        .await
        .expect("instance");
    assert!(db(&drifted).publicly_accessible);
    assert_ne!(
        drifted.resource,
        declared(&stack, Kind::DbInstance, "db").resource
    );

    // Deleting the protected instance turns protection off, then deletes with a final snapshot.
    p.delete(
        &ctx(&stack.name, &resolved),
        &drifted,
        DeleteOptions::default(),
    )
    .await
    .expect("delete instance");
    assert!(discovered(&p, &stack, Kind::DbInstance, "db")
        .await
        .is_none());
    let snapshots = rds
        .describe_db_snapshots()
        .db_instance_identifier(&drifted.physical_id)
        .send()
        .await
        .expect("snapshots");
    let prefix = format!("{}-final-", drifted.physical_id);
    assert!(
        snapshots.db_snapshots().iter().any(|s| s
            .db_snapshot_identifier()
            .is_some_and(|id| id.starts_with(&prefix))),
        "no final snapshot named {prefix}*"
    );

    // In place: the subnet group's description and subnets.
    stack.resources[0].resource = DbSubnetGroup::new(
        "moved database subnets",
        &[
            &Ref::from_id(subnets[1].clone()),
            &Ref::from_id(subnets[2].clone()),
        ],
    )
    .into();
    let changed = ["description", "subnets"].map(String::from);
    let updated_group = p
        .update(
            &ctx(&stack.name, &resolved),
            &declared(&stack, Kind::DbSubnetGroup, "db"),
            &found_group,
            &changed,
        )
        .await
        .expect("update group");
    // moto 5.2.1's ModifyDBSubnetGroup drops the group from its store after answering, so
    // the answer is checked here rather than a second discovery.
    assert_eq!(
        updated_group.resource,
        sorted(&declared(&stack, Kind::DbSubnetGroup, "db"))
    );

    p.delete(
        &ctx(&stack.name, &resolved),
        &found_group,
        DeleteOptions::default(),
    )
    .await
    .expect("delete group");
    assert!(discovered(&p, &stack, Kind::DbSubnetGroup, "db")
        .await
        .is_none());
}

/// A stack `name` with a DB subnet group `db` over two zones, the group created; the stack, the
/// group and what is resolved.
async fn with_subnet_group(p: &AwsProvider, name: &str) -> (Stack, Ref<DbSubnetGroup>, Resolved) {
    let mut resolved = Resolved::default();
    let (subnets, _) = network(&mut resolved).await;
    let mut stack = Stack::new(name, REGION);
    let group = stack.add(
        "db",
        DbSubnetGroup::new(
            format!("{name} subnets"),
            &[
                &Ref::from_id(subnets[0].clone()),
                &Ref::from_id(subnets[1].clone()),
            ],
        ),
    );
    let created = p
        .create(
            &ctx(&stack.name, &resolved),
            &declared(&stack, Kind::DbSubnetGroup, "db"),
        )
        .await
        .expect("group");
    resolved.insert(created);
    (stack, group, resolved)
}

#[tokio::test]
async fn passwords_from_the_environment() {
    let p = provider().await;
    let (mut stack, group, resolved) = with_subnet_group(&p, "rds-env").await;
    stack.add(
        "unset",
        DbInstance::postgres("16.3", "db.t3.micro", &group).master_password(
            MasterPassword::FromEnv("INFRA_TEST_RDS_UNSET_PASSWORD".into()),
        ),
    );
    stack.add(
        "set",
        DbInstance::postgres("16.3", "db.t3.micro", &group)
            .identifier("rds-env-set")
            .deletion_protection(false)
            .master_password(MasterPassword::FromEnv("INFRA_TEST_RDS_PASSWORD".into())),
    );
    std::env::set_var("INFRA_TEST_RDS_PASSWORD", "correct-horse-battery");

    let err = p
        .create(
            &ctx(&stack.name, &resolved),
            &declared(&stack, Kind::DbInstance, "unset"),
        )
        .await
        .expect_err("unset variable");
    let message = err.to_string();
    assert!(
        message.contains("INFRA_TEST_RDS_UNSET_PASSWORD"),
        "{message}"
    );
    assert!(message.contains("rds_db_instance.unset"), "{message}");

    let created = p
        .create(
            &ctx(&stack.name, &resolved),
            &declared(&stack, Kind::DbInstance, "set"),
        )
        .await
        .expect("create");
    assert_eq!(created.physical_id, "rds-env-set");
    assert!(!serde_json::to_string(&created)
        .expect("json")
        .contains("correct-horse"));
    let found = discovered(&p, &stack, Kind::DbInstance, "set")
        .await
        .expect("found");
    assert_eq!(db(&found).identifier.as_deref(), Some("rds-env-set"));
    assert_eq!(
        db(&found).master_password,
        MasterPassword::Plain(Sensitive::redacted())
    );
    assert!(!found.attributes.contains_key("master_user_secret_arn"));

    // Unprotected, no final snapshot asked for: deleted straight away.
    let options = DeleteOptions {
        final_snapshot: infra_core::model::FinalSnapshot::Skip,
        ..DeleteOptions::default()
    };
    p.delete(&ctx(&stack.name, &resolved), &found, options)
        .await
        .expect("delete");
    assert!(discovered(&p, &stack, Kind::DbInstance, "set")
        .await
        .is_none());
}

#[tokio::test]
async fn a_mariadb_instance_is_created_and_read_back_as_mariadb() {
    let p = provider().await;
    let (mut stack, group, resolved) = with_subnet_group(&p, "rds-maria").await;
    stack.add(
        "db",
        DbInstance::mariadb("11.4", "db.t4g.micro", &group).deletion_protection(false),
    );
    p.create(
        &ctx(&stack.name, &resolved),
        &declared(&stack, Kind::DbInstance, "db"),
    )
    .await
    .expect("create");

    let rds = aws_sdk_rds::Client::new(&sdk_config().await);
    let found = discovered(&p, &stack, Kind::DbInstance, "db")
        .await
        .expect("found");
    let described = rds
        .describe_db_instances()
        .db_instance_identifier(&found.physical_id)
        .send()
        .await
        .expect("describe");
    let instance = &described.db_instances()[0];
    assert_eq!(instance.engine(), Some("mariadb"));
    assert_eq!(instance.master_username(), Some("admin"));
    assert_eq!(instance.endpoint().and_then(|e| e.port()), Some(3306));
    assert_eq!(db(&found).engine, infra_core::model::DbEngine::Mariadb);
    assert_eq!(found.attributes["port"], "3306");

    let options = DeleteOptions {
        final_snapshot: infra_core::model::FinalSnapshot::Skip,
        ..DeleteOptions::default()
    };
    p.delete(&ctx(&stack.name, &resolved), &found, options)
        .await
        .expect("delete");
}
