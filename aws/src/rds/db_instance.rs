//! RDS DB instances: discovery, create, update, delete, the wait for `available`, read, and the
//! instance in model form.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder;
use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
use aws_sdk_rds::types::DbInstance as AwsInstance;
use infra_core::model::{
    DbEngine, DbInstance, Declared, EnhancedMonitoring, FinalSnapshot, MasterPassword, Resource,
};
use infra_core::naming::physical_name;
use infra_core::provider::{Context, DeleteOptions};
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref, Sensitive, Stack};

use super::{tag_pairs, tags};
use crate::support::{
    api_error, create_once, error_code, is_not_found, owned_id, retry_not_found, retry_while,
    wait_for, Poll,
};
use crate::AwsProvider;

const MAX_IDENTIFIER: usize = 63;

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// The instance identifier: declared, or derived from the stack and logical id. RDS allows
/// lowercase letters, digits and single hyphens, starting with a letter (physical names are
/// already `[a-z0-9-]` without doubled or trailing hyphens; a stack name may start with a digit).
fn instance_identifier(stack: &str, desired: &Declared, db: &DbInstance) -> String {
    match &db.identifier {
        Some(identifier) => identifier.clone(),
        None => {
            let name = physical_name(stack, desired, MAX_IDENTIFIER);
            if name.starts_with(|c: char| c.is_ascii_lowercase()) {
                name
            } else {
                format!("d{}", physical_name(stack, desired, MAX_IDENTIFIER - 1))
            }
        }
    }
}

fn declared_instance<'a>(stack: &'a Stack, id: &str) -> Option<&'a DbInstance> {
    match stack
        .get(&Address::new(Kind::DbInstance, id))
        .map(|d| &d.resource)
    {
        Some(Resource::DbInstance(db)) => Some(db),
        _ => None,
    }
}

/// ONE paginated DescribeDBInstances; its output carries each instance's TagList.
pub(super) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let instances: Vec<AwsInstance> = p
        .rds
        .describe_db_instances()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("rds:DescribeDBInstances", e))?;
    instances
        .iter()
        .filter_map(|db| owned_id(&stack.name, tag_pairs(db.tag_list())).map(|id| (id, db)))
        .map(|(id, db)| observe_instance(&id, db, declared_instance(stack, &id)))
        .collect()
}

pub(super) async fn describe_instance(
    p: &AwsProvider,
    identifier: &str,
) -> Result<AwsInstance, ProviderError> {
    let out = p
        .rds
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
        .map_err(|e| api_error("rds:DescribeDBInstances", e))?;
    out.db_instances()
        .first()
        .cloned()
        .ok_or_else(|| ProviderError::Api {
            operation: "rds:DescribeDBInstances".into(),
            code: "DBInstanceNotFound".into(),
            message: format!("no DB instance {identifier}"),
        })
}

/// The instance in model form. `declared` (the stack's version, if any) lets the values AWS
/// cannot report back be given as declared: the derived identifier, the short engine version.
fn observe_instance(
    id: &str,
    db: &AwsInstance,
    declared: Option<&DbInstance>,
) -> Result<Observed, ProviderError> {
    let identifier = db.db_instance_identifier().unwrap_or_default();
    let address = Address::new(Kind::DbInstance, id);
    let engine = observed_engine(&address, db)?;
    let engine_version = observed_engine_version(db, declared);
    let derived = declared.is_some_and(|d| d.identifier.is_none());
    let mut security_groups: Vec<Ref<_>> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .map(Ref::from_id)
        .collect();
    security_groups.sort();
    let secret_arn = db.master_user_secret().and_then(|s| s.secret_arn());
    let resource = DbInstance {
        // A derived identifier is reported as not declared; its value is the physical id.
        identifier: (!derived).then(|| identifier.to_string()),
        engine,
        engine_version,
        instance_class: db.db_instance_class().unwrap_or_default().to_string(),
        allocated_storage_gib: to_u32(db.allocated_storage()),
        storage_encrypted: db.storage_encrypted().unwrap_or(false),
        db_name: db.db_name().map(str::to_string),
        master_username: db.master_username().unwrap_or_default().to_string(),
        // The engine never compares secret values, only managed or not.
        master_password: match secret_arn {
            Some(_) => MasterPassword::Managed,
            None => MasterPassword::Plain(Sensitive::redacted()),
        },
        subnet_group: Ref::from_id(
            db.db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .unwrap_or_default(),
        ),
        security_groups,
        publicly_accessible: db.publicly_accessible().unwrap_or(false),
        multi_az: db.multi_az().unwrap_or(false),
        backup_retention_days: to_u32(db.backup_retention_period()),
        deletion_protection: db.deletion_protection().unwrap_or(false),
        // Not readable from AWS; a delete-time choice the engine passes in DeleteOptions.
        final_snapshot: FinalSnapshot::Take,
        iam_database_authentication: db.iam_database_authentication_enabled().unwrap_or(false),
        performance_insights_retention_days: (db.performance_insights_enabled() == Some(true))
            .then(|| to_u32(db.performance_insights_retention_period())),
        enhanced_monitoring: observed_monitoring(db),
    };
    let mut observed = Observed::new(address, identifier, resource.into());
    observed.holds_data = true;
    Ok(with_endpoint_and_arns(observed, db, secret_arn))
}

/// Enhanced monitoring when it is on (an interval above 0), its role by name: the last part of
/// its ARN, which discovery turns into the role's logical id.
fn observed_monitoring(db: &AwsInstance) -> Option<EnhancedMonitoring> {
    let interval_seconds = to_u32(db.monitoring_interval());
    let arn = db.monitoring_role_arn()?;
    let name = arn.rsplit('/').next().unwrap_or(arn);
    (interval_seconds > 0).then(|| EnhancedMonitoring {
        interval_seconds,
        role: Ref::from_id(name),
    })
}

/// The engine the instance runs, if infra manages it.
fn observed_engine(address: &Address, db: &AwsInstance) -> Result<DbEngine, ProviderError> {
    match db.engine().unwrap_or_default() {
        "mysql" => Ok(DbEngine::Mysql),
        "mariadb" => Ok(DbEngine::Mariadb),
        "postgres" => Ok(DbEngine::Postgres),
        other => Err(ProviderError::Other(format!(
            "{address} runs engine `{other}`; infra manages mysql, mariadb and postgres"
        ))),
    }
}

/// The engine version as declared when RDS reports that version or a patch of it.
fn observed_engine_version(db: &AwsInstance, declared: Option<&DbInstance>) -> String {
    let reported_version = db.engine_version().unwrap_or_default();
    // RDS reports the full version (8.0.35) for a declared "8.0".
    match declared {
        Some(d)
            if reported_version == d.engine_version
                || reported_version.starts_with(&format!("{}.", d.engine_version)) =>
        {
            d.engine_version.clone()
        }
        _ => reported_version.to_string(),
    }
}

/// The instance's endpoint, ARNs (its own, its master-user secret's, its database users') and
/// resource id as attributes.
fn with_endpoint_and_arns(
    mut observed: Observed,
    db: &AwsInstance,
    secret_arn: Option<&str>,
) -> Observed {
    if let Some(endpoint) = db.endpoint() {
        if let Some(host) = endpoint.address() {
            observed = observed.with_attribute(attributes::ENDPOINT, host);
        }
        if let Some(port) = endpoint.port() {
            observed = observed.with_attribute(attributes::PORT, port.to_string());
        }
    }
    if let Some(arn) = db.db_instance_arn() {
        observed = observed.with_attribute(attributes::ARN, arn);
    }
    if let Some(arn) = secret_arn {
        observed = observed.with_attribute(attributes::MASTER_USER_SECRET_ARN, arn);
    }
    if let Some(id) = db.dbi_resource_id() {
        observed = observed.with_attribute(attributes::RESOURCE_ID, id);
        if let Some(prefix) = db
            .db_instance_arn()
            .and_then(|arn| dbuser_arn_prefix(arn, id))
        {
            observed = observed.with_attribute(attributes::DBUSER_ARN_PREFIX, prefix);
        }
    }
    observed
}

/// `arn:P:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID`, from the instance's
/// `arn:P:rds:REGION:ACCOUNT:db:NAME`.
fn dbuser_arn_prefix(instance_arn: &str, resource_id: &str) -> Option<String> {
    match instance_arn.splitn(7, ':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, "rds", region, account, "db", _] => Some(format!(
            "arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}"
        )),
        _ => None,
    }
}

/// How long RDS may refuse a monitoring role IAM has just made: terraform-provider-aws retries
/// CreateDBInstance and ModifyDBInstance for its IAM propagation timeout, 2 minutes.
const ROLE_PROPAGATION: Duration = Duration::from_secs(120);

/// RDS's `InvalidParameterValue: IAM role ARN value is invalid or does not include the required
/// permissions for: ENHANCED_MONITORING`: a new monitoring role not visible to RDS yet.
fn is_new_role_error(err: &ProviderError) -> bool {
    matches!(err, ProviderError::Api { code, message, .. }
        if matches!(code.as_str(), "InvalidParameterValue" | "InvalidParameterCombination")
            && message.contains("IAM role ARN value is invalid"))
}

/// Retries `call` while RDS refuses a new monitoring role, for at most [`ROLE_PROPAGATION`].
async fn retry_new_role<T, F, Fut>(call: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let backoff = (Duration::from_secs(1), Duration::from_secs(10));
    let what = "the monitoring role is not visible to RDS yet";
    retry_while(ROLE_PROPAGATION, backoff, is_new_role_error, what, call).await
}

/// MonitoringInterval and MonitoringRoleArn: 0 and none when monitoring is off.
fn monitoring(ctx: &Context<'_>, db: &DbInstance) -> Result<(i32, Option<String>), ProviderError> {
    match &db.enhanced_monitoring {
        None => Ok((0, None)),
        Some(m) => {
            let arn = ctx.resolved.attribute(&m.role.address(), attributes::ARN)?;
            Ok((to_i32(m.interval_seconds), Some(arn.to_string())))
        }
    }
}

/// The master password to send, if not managed by AWS. Never logged.
fn master_password(
    address: &Address,
    password: &MasterPassword,
) -> Result<Option<String>, ProviderError> {
    match password {
        MasterPassword::Managed => Ok(None),
        MasterPassword::FromEnv(var) => std::env::var(var).map(Some).map_err(|_| {
            ProviderError::Other(format!(
                "{address}: field `master_password` reads environment variable `{var}`, which is not set \
                 (set it, or use MasterPassword::Managed)"
            ))
        }),
        MasterPassword::Plain(value) if value.is_redacted() => Err(ProviderError::Other(format!(
            "{address}: field `master_password` holds the redaction placeholder, not a password \
             (give the value, an environment variable, or MasterPassword::Managed)"
        ))),
        MasterPassword::Plain(value) => Ok(Some(value.expose().to_string())),
    }
}

fn security_group_ids(ctx: &Context<'_>, db: &DbInstance) -> Result<Vec<String>, ProviderError> {
    db.security_groups
        .iter()
        .map(|g| ctx.resolved.physical_id(g).map(str::to_string))
        .collect()
}

/// The instance named `identifier`, if it is this stack's `id`.
async fn find_ours(
    p: &AwsProvider,
    stack: &str,
    identifier: &str,
    id: &str,
) -> Result<Option<AwsInstance>, ProviderError> {
    match describe_instance(p, identifier).await {
        Ok(found) => {
            let ours = owned_id(stack, tag_pairs(found.tag_list())).as_deref() == Some(id);
            Ok(ours.then_some(found))
        }
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    db: &DbInstance,
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let identifier = instance_identifier(ctx.stack, desired, db);
    let password = master_password(&address, &db.master_password)?;
    let subnet_group = ctx.resolved.physical_id(&db.subnet_group)?.to_string();
    let security_groups = security_group_ids(ctx, db)?;
    let (interval, role_arn) = monitoring(ctx, db)?;
    tracing::debug!(instance = %identifier, "creating DB instance");
    // RDS has no client token: before each attempt, look for the instance by identifier and tags.
    let found = retry_new_role(|| {
        create_once(
            p.options.max_attempts,
            || find_ours(p, ctx.stack, &identifier, &desired.id),
            || async {
                let out = p
                    .rds
                    .create_db_instance()
                    .db_instance_identifier(&identifier)
                    .engine(db.engine.as_str())
                    .engine_version(&db.engine_version)
                    .db_instance_class(&db.instance_class)
                    .allocated_storage(to_i32(db.allocated_storage_gib))
                    .storage_encrypted(db.storage_encrypted)
                    .set_db_name(db.db_name.clone())
                    .master_username(&db.master_username)
                    .set_master_user_password(password.clone())
                    .set_manage_master_user_password(password.is_none().then_some(true))
                    .db_subnet_group_name(&subnet_group)
                    .set_vpc_security_group_ids(Some(security_groups.clone()))
                    .publicly_accessible(db.publicly_accessible)
                    .multi_az(db.multi_az)
                    .backup_retention_period(to_i32(db.backup_retention_days))
                    .deletion_protection(db.deletion_protection)
                    .enable_iam_database_authentication(db.iam_database_authentication)
                    .enable_performance_insights(db.performance_insights_retention_days.is_some())
                    .set_performance_insights_retention_period(
                        db.performance_insights_retention_days.map(to_i32),
                    )
                    .monitoring_interval(interval)
                    .set_monitoring_role_arn(role_arn.clone())
                    .set_tags(Some(tags(ctx.stack, &desired.id)))
                    .customize()
                    .config_override(
                        aws_sdk_rds::config::Builder::default()
                            .retry_config(RetryConfig::disabled()),
                    )
                    .send()
                    .await
                    .map_err(|e| api_error("rds:CreateDBInstance", e))?;
                out.db_instance().cloned().ok_or_else(|| {
                    ProviderError::Other(format!(
                        "rds:CreateDBInstance returned no instance for {address}"
                    ))
                })
            },
        )
    })
    .await?;
    observe_instance(&desired.id, &found, Some(db))
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    db: &DbInstance,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let is_changed = |field: &str| changed.iter().any(|c| c == field);
    let identifier = prior.physical_id.as_str();
    let mut modify = p
        .rds
        .modify_db_instance()
        .db_instance_identifier(identifier)
        .apply_immediately(true);
    if is_changed("instance_class") {
        modify = modify.db_instance_class(&db.instance_class);
    }
    if is_changed("allocated_storage_gib") {
        modify = modify.allocated_storage(to_i32(db.allocated_storage_gib));
    }
    if is_changed("backup_retention_days") {
        modify = modify.backup_retention_period(to_i32(db.backup_retention_days));
    }
    if is_changed("security_groups") {
        modify = modify.set_vpc_security_group_ids(Some(security_group_ids(ctx, db)?));
    }
    if is_changed("subnet_group") {
        modify = modify.db_subnet_group_name(ctx.resolved.physical_id(&db.subnet_group)?);
    }
    if is_changed("multi_az") {
        modify = modify.multi_az(db.multi_az);
    }
    if is_changed("deletion_protection") {
        modify = modify.deletion_protection(db.deletion_protection);
    }
    if is_changed("publicly_accessible") {
        modify = modify.publicly_accessible(db.publicly_accessible);
    }
    if is_changed("engine_version") {
        // Only minor versions change in place; a major version forces a replacement.
        modify = modify.engine_version(&db.engine_version);
    }
    if is_changed("master_password") {
        modify = match master_password(&desired.address(), &db.master_password)? {
            None => modify.manage_master_user_password(true),
            Some(password) => modify
                .manage_master_user_password(false)
                .master_user_password(password),
        };
    }
    let modify = modified_options(ctx, db, modify, &is_changed)?;
    tracing::debug!(instance = %identifier, ?changed, "modifying DB instance");
    let out = modify_when_available(p, ctx, &prior.address, modify).await?;
    let found = match out.db_instance() {
        Some(found) => found.clone(),
        None => describe_instance(p, identifier).await?,
    };
    observe_instance(&desired.id, &found, Some(db))
}

/// The changed authentication and monitoring options added to a ModifyDBInstance request.
fn modified_options(
    ctx: &Context<'_>,
    db: &DbInstance,
    mut modify: ModifyDBInstanceFluentBuilder,
    is_changed: &dyn Fn(&str) -> bool,
) -> Result<ModifyDBInstanceFluentBuilder, ProviderError> {
    if is_changed("iam_database_authentication") {
        modify = modify.enable_iam_database_authentication(db.iam_database_authentication);
    }
    if is_changed("performance_insights_retention_days") {
        let days = db.performance_insights_retention_days;
        modify = modify
            .enable_performance_insights(days.is_some())
            .set_performance_insights_retention_period(days.map(to_i32));
    }
    if is_changed("enhanced_monitoring") {
        let (interval, role_arn) = monitoring(ctx, db)?;
        modify = modify
            .monitoring_interval(interval)
            .set_monitoring_role_arn(role_arn);
    }
    Ok(modify)
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
    options: DeleteOptions,
) -> Result<(), ProviderError> {
    let identifier = prior.physical_id.as_str();
    let current = match describe_instance(p, identifier).await {
        Ok(db) => db,
        Err(err) if is_not_found(&err) => return Ok(()),
        Err(err) => return Err(err),
    };
    // The engine only deletes a protected database after the user allowed data loss.
    if current.deletion_protection() == Some(true) {
        tracing::debug!(instance = %identifier, "turning deletion protection off");
        let modify = p
            .rds
            .modify_db_instance()
            .db_instance_identifier(identifier)
            .deletion_protection(false)
            .apply_immediately(true);
        modify_when_available(p, ctx, &prior.address, modify).await?;
    }
    let snapshot = (options.final_snapshot == FinalSnapshot::Take).then(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        format!("{identifier}-final-{now}")
    });
    tracing::debug!(instance = %identifier, ?snapshot, "deleting DB instance");
    match p
        .rds
        .delete_db_instance()
        .db_instance_identifier(identifier)
        .set_final_db_snapshot_identifier(snapshot.clone())
        .skip_final_snapshot(snapshot.is_none())
        .send()
        .await
        .map_err(|e| api_error("rds:DeleteDBInstance", e))
    {
        Ok(_) => {}
        Err(err) if is_not_found(&err) => return Ok(()),
        Err(err) => return Err(err),
    }
    if let Some(snapshot) = &snapshot {
        ctx.progress.notice(
            &prior.address,
            &format!(
                "final snapshot `{snapshot}` is kept (it is billed for its storage until deleted)\n\
                 aws rds delete-db-snapshot --region {} --db-snapshot-identifier {snapshot}",
                ctx.region
            ),
        );
    }
    wait_for(
        ctx.progress,
        &prior.address,
        "deleted",
        p.options.wait_timeout,
        || async {
            match describe_instance(p, identifier).await {
                Ok(db) => Ok(Poll::Pending(
                    db.db_instance_status().unwrap_or("deleting").to_string(),
                )),
                Err(err) if is_not_found(&err) => Ok(Poll::Ready(())),
                Err(err) => Err(err),
            }
        },
    )
    .await
}

/// RDS refuses a modify while the instance is busy (creating, backing up after a create or on
/// its schedule, modifying, ...): `InvalidDBInstanceState` "Database instance is not in
/// available state."
fn is_busy(err: &ProviderError) -> bool {
    error_code(err) == Some("InvalidDBInstanceState")
}

/// Rounds of "refused as busy, wait for `available`, send again" before the refusal stands (the
/// instance can flip back to `backing-up` right after it was `available`).
const BUSY_ROUNDS: usize = 5;

/// Sends `modify` (waiting out a new monitoring role); while RDS refuses it because the instance
/// is busy, waits until the instance is `available` and sends it again. terraform-provider-aws
/// waits for `available` before its modifies instead; a refusal then costs one call, not a
/// describe before every modify.
async fn modify_when_available(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    modify: ModifyDBInstanceFluentBuilder,
) -> Result<ModifyDbInstanceOutput, ProviderError> {
    let identifier = modify
        .get_db_instance_identifier()
        .clone()
        .unwrap_or_default();
    let send = || {
        retry_new_role(|| async {
            modify
                .clone()
                .send()
                .await
                .map_err(|e| api_error("rds:ModifyDBInstance", e))
        })
    };
    let mut rounds = 0;
    loop {
        match send().await {
            Err(err) if is_busy(&err) && rounds < BUSY_ROUNDS => {
                rounds += 1;
                tracing::debug!(instance = %identifier, error = %err, "instance busy; waiting");
                wait_available(p, ctx, address, &identifier).await?;
            }
            other => return other,
        }
    }
}

pub(super) async fn wait_ready(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<Observed, ProviderError> {
    let ready = wait_available(p, ctx, &observed.address, &observed.physical_id).await?;
    let declared = match &observed.resource {
        Resource::DbInstance(db) => Some(db),
        _ => None,
    };
    observe_instance(&observed.address.id, &ready, declared)
}

/// Waits until the instance is `available`, showing its status meanwhile.
async fn wait_available(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    identifier: &str,
) -> Result<AwsInstance, ProviderError> {
    wait_for(
        ctx.progress,
        address,
        "available",
        p.options.wait_timeout,
        || async {
            let db = retry_not_found(Duration::from_secs(60), || describe_instance(p, identifier))
                .await?;
            Ok(match db.db_instance_status() {
                Some("available") => Poll::Ready(db),
                Some(
                    status @ ("failed"
                    | "incompatible-parameters"
                    | "incompatible-network"
                    | "storage-full"),
                ) => {
                    return Err(ProviderError::Other(format!(
                        "{address} reached status `{status}` instead of `available`"
                    )))
                }
                status => Poll::Pending(status.unwrap_or("unknown").to_string()),
            })
        },
    )
    .await
}

pub(super) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    match describe_instance(p, physical_id).await {
        Ok(db) => {
            observe_instance(&address.id, &db, declared_instance(stack, &address.id)).map(Some)
        }
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_users_are_named_after_the_instance_arn_and_resource_id() {
        assert_eq!(
            dbuser_arn_prefix(
                "arn:aws:rds:ap-northeast-2:123456789012:db:closet-db",
                "db-ABC"
            )
            .as_deref(),
            Some("arn:aws:rds-db:ap-northeast-2:123456789012:dbuser:db-ABC")
        );
        assert_eq!(
            dbuser_arn_prefix("arn:aws:rds:x:1:cluster:c", "db-ABC"),
            None
        );
    }

    #[test]
    fn only_a_refused_iam_role_is_waited_out() {
        let api = |code: &str, message: &str| ProviderError::Api {
            operation: "rds:CreateDBInstance".into(),
            code: code.into(),
            message: message.into(),
        };
        assert!(is_new_role_error(&api(
            "InvalidParameterValue",
            "IAM role ARN value is invalid or does not include the required permissions for: ENHANCED_MONITORING"
        )));
        assert!(!is_new_role_error(&api(
            "InvalidParameterCombination",
            "injected"
        )));
    }
}
