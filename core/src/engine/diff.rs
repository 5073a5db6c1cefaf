//! Field-level comparison of a declared resource with what exists: normalization (so that the
//! plan right after an apply is empty), which fields force a replacement, and which hold secrets.
//! docs/replacement.md is the table in prose; keep both in step.

use serde_json::{Map, Value};

use super::plan::{FieldChange, ReplaceMode};
use crate::model::{
    Certificate, DbInstance, Declared, ListenerRule, MasterPassword, Resource, Role, Statement,
};
use crate::refs::{Address, Kind};
use crate::secret::Sensitive;

/// Top-level fields whose change forces a replacement, per kind. `engine_version` of an RDS
/// instance is special: only a major-version change forces one (see [`forces_replacement`]).
pub fn replacement_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Vpc => &["cidr"],
        Kind::Subnet => &["vpc", "cidr", "availability_zone"],
        Kind::InternetGateway => &["vpc"],
        Kind::RouteTable => &["vpc"],
        Kind::SecurityGroup => &["vpc", "description"],
        Kind::Certificate => &["source", "domain_name", "alternative_names", "arn"],
        Kind::TargetGroup => &["vpc", "protocol", "port", "target_type"],
        Kind::LoadBalancer => &["scheme"],
        Kind::Listener => &["load_balancer"],
        Kind::ListenerRule => &["listener"],
        Kind::LaunchTemplate | Kind::AutoScalingGroup | Kind::DbSubnetGroup => &[],
        Kind::DbInstance => &[
            "identifier",
            "engine",
            "engine_version",
            "storage_encrypted",
            "db_name",
            "master_username",
        ],
        Kind::Bucket => &["name"],
        Kind::Role => &[],
        Kind::HostedZone => &["source", "name"],
        Kind::Record => &["zone", "name"],
    }
}

/// Whether a change of `field` from `before` to `after` forces replacing a resource of `kind`.
pub fn forces_replacement(kind: Kind, field: &str, before: &Value, after: &Value) -> bool {
    if kind == Kind::DbInstance && field == "engine_version" {
        let engine = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
        return major_version(&engine(before)) != major_version(&engine(after));
    }
    // A record's data changes in place (an UPSERT) unless its type does: A, AAAA, CNAME and TXT
    // are separate record sets.
    if kind == Kind::Record && field == "data" {
        return before["type"] != after["type"] || before["ipv6"] != after["ipv6"];
    }
    replacement_fields(kind).contains(&field)
}

/// The major part of an RDS engine version: `8.0` of `8.0.35`, `16` of `16.3`, `9.6` of `9.6.24`
/// (PostgreSQL before 10 had two-part majors; MySQL and MariaDB always do).
pub fn major_version(version: &str) -> String {
    let mut parts = version.split('.');
    let first = parts.next().unwrap_or_default();
    match first.parse::<u32>() {
        Ok(n) if n >= 10 => first.to_string(),
        _ => match parts.next() {
            Some(second) => format!("{first}.{second}"),
            None => first.to_string(),
        },
    }
}

/// How a resource of this kind is replaced. Create-before-destroy wherever the provider can give
/// the new resource its own name (see [`crate::naming::physical_name`]) or it has none;
/// delete-before-create where the old and new cannot coexist.
pub fn replace_mode(declared: &Declared) -> ReplaceMode {
    match &declared.resource {
        // Same CIDR cannot exist twice in a VPC; one gateway per VPC; a subnet belongs to one
        // route table; bucket names are global.
        Resource::Subnet(_)
        | Resource::InternetGateway(_)
        | Resource::RouteTable(_)
        | Resource::Bucket(_)
        // One record set per name and type; a zone keeps its CallerReference.
        | Resource::HostedZone(_)
        | Resource::Record(_) => ReplaceMode::DeleteBeforeCreate,
        Resource::DbInstance(db) if db.identifier.is_some() => ReplaceMode::DeleteBeforeCreate,
        _ => ReplaceMode::CreateBeforeDestroy,
    }
}

/// Fields whose values are secrets: shown as `(sensitive)`.
pub fn is_sensitive(kind: Kind, field: &str) -> bool {
    kind == Kind::DbInstance && field == "master_password"
}

/// The declared resource with secret values replaced by [`Sensitive::redacted`].
pub fn redact(declared: &Declared) -> Declared {
    let mut out = declared.clone();
    redact_resource(&mut out.resource);
    out
}

pub(crate) fn redact_resource(resource: &mut Resource) {
    if let Resource::DbInstance(db) = resource {
        if let MasterPassword::Plain(_) = db.master_password {
            db.master_password = MasterPassword::Plain(Sensitive::redacted());
        }
    }
}

/// Bring `desired` and `observed` (same kind) into a comparable form, in one place per kind:
/// sort lists whose order means nothing, and drop what is never a diff (delete-time policies,
/// secret values, values left to AWS).
pub fn normalize(desired: &mut Resource, observed: &mut Resource) {
    match (desired, observed) {
        (Resource::RouteTable(d), Resource::RouteTable(o)) => {
            d.routes.sort();
            o.routes.sort();
            d.subnets.sort();
            o.subnets.sort();
        }
        (Resource::SecurityGroup(d), Resource::SecurityGroup(o)) => {
            d.ingress.sort();
            o.ingress.sort();
            d.egress.sort();
            o.egress.sort();
        }
        (Resource::Certificate(d), Resource::Certificate(o)) => {
            // Whether and how long apply waits for ISSUED is about the apply, not the
            // certificate.
            if let (
                Certificate::Request {
                    wait_for_issued: dw,
                    issued_within_seconds: dl,
                    ..
                },
                Certificate::Request {
                    wait_for_issued: ow,
                    issued_within_seconds: ol,
                    ..
                },
            ) = (d, o)
            {
                *ow = *dw;
                *ol = *dl;
            }
        }
        (Resource::LoadBalancer(d), Resource::LoadBalancer(o)) => {
            d.subnets.sort();
            o.subnets.sort();
            d.security_groups.sort();
            o.security_groups.sort();
        }
        (Resource::ListenerRule(d), Resource::ListenerRule(o)) => {
            sort_conditions(d);
            sort_conditions(o);
        }
        (Resource::LaunchTemplate(d), Resource::LaunchTemplate(o)) => {
            d.security_groups.sort();
            o.security_groups.sort();
            // No size declared: the template holds the image's, whatever it is.
            if d.root_volume.size_gib.is_none() {
                o.root_volume.size_gib = None;
            }
        }
        (Resource::AutoScalingGroup(d), Resource::AutoScalingGroup(o)) => {
            d.subnets.sort();
            o.subnets.sort();
            d.target_groups.sort();
            o.target_groups.sort();
            // No desired capacity declared: scaling policies own it.
            if d.desired_capacity.is_none() {
                o.desired_capacity = None;
            }
        }
        (Resource::DbSubnetGroup(d), Resource::DbSubnetGroup(o)) => {
            d.subnets.sort();
            o.subnets.sort();
        }
        (Resource::DbInstance(d), Resource::DbInstance(o)) => normalize_db_instance(d, o),
        (Resource::Bucket(d), Resource::Bucket(o)) => {
            // Delete-time policy, not a property of the bucket.
            o.force_destroy = d.force_destroy;
            // A policy is a set of statements.
            for policy in [&mut d.policy, &mut o.policy] {
                policy.sort_by_key(|s| serde_json::to_string(s).unwrap_or_default());
            }
        }
        (Resource::Role(d), Resource::Role(o)) => {
            normalize_role(d);
            normalize_role(o);
        }
        _ => {}
    }
}

/// A database's declared settings against what RDS reports.
fn normalize_db_instance(d: &mut DbInstance, o: &mut DbInstance) {
    d.security_groups.sort();
    o.security_groups.sort();
    // A derived identifier is the provider's business.
    if d.identifier.is_none() {
        o.identifier = None;
    }
    // RDS reports the full version (`8.0.35`) for a declared `8.0`: minor versions move
    // with auto minor upgrades.
    if o.engine_version
        .starts_with(&format!("{}.", d.engine_version))
    {
        o.engine_version = d.engine_version.clone();
    }
    // Never compare secret values: only managed vs not managed.
    let managed = |p: &MasterPassword| matches!(p, MasterPassword::Managed);
    if managed(&d.master_password) == managed(&o.master_password) {
        o.master_password = d.master_password.clone();
    }
    // Delete-time policy, not a property of the instance.
    o.final_snapshot = d.final_snapshot;
}

/// A role's lists in one order: IAM keeps the order of neither statements, actions, resources
/// nor attachments.
fn normalize_role(role: &mut Role) {
    role.trusted_services.sort();
    role.managed_policies.sort();
    role.statements = std::mem::take(&mut role.statements)
        .into_iter()
        .map(Statement::normalized)
        .collect();
    role.statements
        .sort_by_key(|s| serde_json::to_string(s).unwrap_or_default());
}

/// Conditions and their values in one order: AWS keeps neither.
fn sort_conditions(rule: &mut ListenerRule) {
    for c in &mut rule.conditions {
        match c {
            crate::model::Condition::PathPattern(v) | crate::model::Condition::HostHeader(v) => {
                v.sort()
            }
        }
    }
    rule.conditions
        .sort_by_key(|c| serde_json::to_string(c).unwrap_or_default());
}

fn to_object(resource: &Resource) -> Map<String, Value> {
    match serde_json::to_value(resource) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The changed top-level fields of `desired` against `observed`, after [`normalize`].
/// Secret values never reach the result.
pub fn diff(desired: &Resource, observed: &Resource) -> Vec<FieldChange> {
    let kind = desired.kind();
    let mut d = desired.clone();
    let mut o = observed.clone();
    normalize(&mut d, &mut o);
    redact_resource(&mut d);
    redact_resource(&mut o);
    if d == o {
        return Vec::new();
    }
    let d = to_object(&d);
    let o = to_object(&o);
    let mut keys: Vec<&String> = d.keys().chain(o.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let after = d.get(key.as_str()).cloned().unwrap_or(Value::Null);
        let before = o.get(key.as_str()).cloned().unwrap_or(Value::Null);
        if after != before {
            out.push(FieldChange {
                field: key.clone(),
                forces_replacement: forces_replacement(kind, key, &before, &after),
                sensitive: is_sensitive(kind, key),
                before,
                after,
            });
        }
    }
    out
}

/// Every top-level setting of a resource to be created, as changes from nothing (the serde tag
/// `type` is the address's, not a setting). Secret values never reach the result.
pub fn settings(resource: &Resource) -> Vec<FieldChange> {
    let kind = resource.kind();
    let mut r = resource.clone();
    redact_resource(&mut r);
    to_object(&r)
        .into_iter()
        .filter(|(key, value)| key != "type" && !value.is_null())
        .map(|(key, after)| FieldChange {
            forces_replacement: false,
            sensitive: is_sensitive(kind, &key),
            field: key,
            before: Value::Null,
            after,
        })
        .collect()
}

/// The top-level field of `resource` through which it refers to each address.
pub fn reference_fields(resource: &Resource) -> Vec<(&'static str, Address)> {
    use crate::model::{ListenerAction, Peer};
    let mut out = Vec::new();
    match resource {
        Resource::Vpc(_) | Resource::HostedZone(_) => {}
        Resource::Bucket(b) => out.extend(
            b.access_logging
                .iter()
                .map(|l| ("access_logging", l.target.address())),
        ),
        Resource::Certificate(c) => {
            out.extend(c.validated_in().map(|z| ("validate_in", z.address())))
        }
        Resource::Record(r) => {
            out.push(("zone", r.zone.address()));
            if let crate::model::RecordData::Alias { load_balancer, .. } = &r.data {
                out.push(("data", load_balancer.address()));
            }
        }
        Resource::Subnet(s) => out.push(("vpc", s.vpc.address())),
        Resource::InternetGateway(g) => out.push(("vpc", g.vpc.address())),
        Resource::RouteTable(t) => {
            out.push(("vpc", t.vpc.address()));
            out.extend(
                t.routes
                    .iter()
                    .map(|r| ("routes", r.internet_gateway.address())),
            );
            out.extend(t.subnets.iter().map(|s| ("subnets", s.address())));
        }
        Resource::SecurityGroup(g) => {
            out.push(("vpc", g.vpc.address()));
            for (field, rules) in [("ingress", &g.ingress), ("egress", &g.egress)] {
                for rule in rules {
                    if let Peer::SecurityGroup(peer) = &rule.peer {
                        out.push((field, peer.address()));
                    }
                }
            }
        }
        Resource::TargetGroup(t) => out.push(("vpc", t.vpc.address())),
        Resource::LoadBalancer(lb) => {
            out.extend(lb.subnets.iter().map(|s| ("subnets", s.address())));
            out.extend(
                lb.security_groups
                    .iter()
                    .map(|s| ("security_groups", s.address())),
            );
            out.extend(
                lb.access_logs
                    .iter()
                    .map(|l| ("access_logs", l.bucket.address())),
            );
        }
        Resource::Listener(l) => {
            out.push(("load_balancer", l.load_balancer.address()));
            if let Some(c) = &l.certificate {
                out.push(("certificate", c.address()));
            }
            if let ListenerAction::Forward { target_group } = &l.default_action {
                out.push(("default_action", target_group.address()));
            }
        }
        Resource::ListenerRule(r) => {
            out.push(("listener", r.listener.address()));
            if let ListenerAction::Forward { target_group } = &r.action {
                out.push(("action", target_group.address()));
            }
        }
        Resource::LaunchTemplate(t) => {
            out.extend(
                t.security_groups
                    .iter()
                    .map(|s| ("security_groups", s.address())),
            );
            out.extend(
                t.instance_role
                    .iter()
                    .map(|r| ("instance_role", r.address())),
            );
        }
        Resource::AutoScalingGroup(g) => {
            out.push(("launch_template", g.launch_template.address()));
            out.extend(g.subnets.iter().map(|s| ("subnets", s.address())));
            out.extend(
                g.target_groups
                    .iter()
                    .map(|t| ("target_groups", t.address())),
            );
        }
        Resource::DbSubnetGroup(g) => {
            out.extend(g.subnets.iter().map(|s| ("subnets", s.address())))
        }
        Resource::DbInstance(db) => {
            out.push(("subnet_group", db.subnet_group.address()));
            out.extend(
                db.security_groups
                    .iter()
                    .map(|s| ("security_groups", s.address())),
            );
            out.extend(
                db.enhanced_monitoring
                    .iter()
                    .map(|m| ("enhanced_monitoring", m.role.address())),
            );
        }
        // Grants are filled before diffing: the policy's text decides.
        Resource::Role(_) => {}
    }
    out
}

/// The value of one top-level field of a resource, as JSON (`Null` if absent).
pub fn field_value(resource: &Resource, field: &str) -> Value {
    to_object(resource).remove(field).unwrap_or(Value::Null)
}

/// The replacement-forcing fields of a resource as one JSON object (`engine_version` reduced to
/// its major version): what [`crate::naming::physical_name`] hashes.
pub fn replacement_key(resource: &Resource) -> Value {
    let kind = resource.kind();
    let mut all = to_object(resource);
    let mut key = Map::new();
    key.insert("type".into(), Value::String(kind.as_str().into()));
    for field in replacement_fields(kind) {
        if let Some(mut v) = all.remove(*field) {
            if kind == Kind::DbInstance && *field == "engine_version" {
                v = Value::String(major_version(v.as_str().unwrap_or_default()));
            }
            key.insert((*field).to_string(), v);
        }
    }
    Value::Object(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::refs::Ref;

    fn vpc() -> Ref<Vpc> {
        Ref::from_id("main")
    }

    fn db() -> DbInstance {
        DbInstance::mysql("8.0", "db.t3.micro", &Ref::from_id("db"))
            .security_group(&Ref::from_id("a"))
    }

    #[test]
    fn security_group_rules_compare_as_a_set() {
        let a = SecurityGroup::new(&vpc(), "x")
            .ingress(Rule::tcp(80).from_anywhere())
            .ingress(Rule::tcp(443).from_anywhere());
        let b = SecurityGroup::new(&vpc(), "x")
            .ingress(Rule::tcp(443).from_anywhere())
            .ingress(Rule::tcp(80).from_anywhere());
        assert!(diff(&a.clone().into(), &b.into()).is_empty());
        let c = a.clone().ingress(Rule::tcp(22).from_cidr("10.0.0.0/8"));
        let changes = diff(&c.into(), &a.into());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "ingress");
        assert!(!changes[0].forces_replacement);
    }

    #[test]
    fn asg_without_desired_capacity_ignores_the_observed_one() {
        let lt = Ref::from_id("web");
        let subnet = Ref::from_id("a");
        let declared = AutoScalingGroup::new(&lt, &[&subnet], 1, 3);
        let observed = declared.clone().desired_capacity(2);
        assert!(diff(&declared.clone().into(), &observed.clone().into()).is_empty());
        let pinned = declared.desired_capacity(1);
        let changes = diff(&pinned.into(), &observed.into());
        assert_eq!(changes[0].field, "desired_capacity");
    }

    #[test]
    fn rds_secret_values_and_delete_policies_never_diff() {
        let declared = db()
            .master_password(MasterPassword::Plain(Sensitive::new("hunter2")))
            .final_snapshot(FinalSnapshot::Skip);
        let observed = db().master_password(MasterPassword::Plain(Sensitive::new("other")));
        assert!(diff(&declared.clone().into(), &observed.into()).is_empty());

        let managed = db();
        let changes = diff(&redacted_db(declared), &managed.into());
        assert_eq!(changes.len(), 1);
        assert!(changes[0].sensitive);
        assert!(!changes[0].after.to_string().contains("hunter2"));
    }

    fn redacted_db(db: DbInstance) -> Resource {
        let mut r: Resource = db.into();
        redact_resource(&mut r);
        r
    }

    #[test]
    fn rds_minor_versions_are_not_a_diff_and_major_ones_replace() {
        let observed = DbInstance {
            engine_version: "8.0.35".into(),
            identifier: Some("closet-db".into()),
            ..db()
        };
        assert!(diff(&db().into(), &observed.clone().into()).is_empty());
        let upgraded = DbInstance {
            engine_version: "8.4".into(),
            ..db()
        };
        let changes = diff(&upgraded.into(), &observed.into());
        assert_eq!(changes.len(), 1);
        assert!(changes[0].forces_replacement);
        let resized = DbInstance {
            instance_class: "db.t3.small".into(),
            ..db()
        };
        assert!(!diff(&resized.into(), &db().into())[0].forces_replacement);
    }

    #[test]
    fn rds_authentication_and_monitoring_change_in_place() {
        let made_before = db().iam_database_authentication(false);
        let hardened = db()
            .performance_insights(7)
            .enhanced_monitoring(60, &Ref::from_id("monitoring"));
        let changes = diff(&hardened.into(), &made_before.into());
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "enhanced_monitoring",
                "iam_database_authentication",
                "performance_insights_retention_days"
            ]
        );
        assert!(changes.iter().all(|c| !c.forces_replacement));
    }

    #[test]
    fn bucket_force_destroy_and_certificate_wait_are_not_diffs() {
        let b = Bucket::new("x");
        assert!(diff(&b.clone().force_destroy(true).into(), &b.clone().into()).is_empty());
        let renamed = diff(&Bucket::new("y").into(), &b.into());
        assert!(renamed[0].forces_replacement);
        let c = Certificate::request("a.example.com");
        assert!(diff(&c.clone().wait_for_issued().into(), &c.clone().into()).is_empty());
        let patient = c.clone().issued_within(std::time::Duration::from_secs(600));
        assert!(diff(&patient.into(), &c.into()).is_empty());
    }

    #[test]
    fn target_group_port_replaces_and_health_check_updates() {
        let tg = TargetGroup::http(&vpc(), 3000);
        let moved = TargetGroup::http(&vpc(), 3001);
        assert!(diff(&moved.into(), &tg.clone().into())[0].forces_replacement);
        let probed = tg.clone().health_check(HealthCheck::http("/health"));
        let changes = diff(&probed.into(), &tg.into());
        assert_eq!(changes[0].field, "health_check");
        assert!(!changes[0].forces_replacement);
    }

    #[test]
    fn listener_rule_condition_values_are_a_set() {
        let l = Ref::from_id("https");
        let a = ListenerRule::new(&l, 1).path("/a").path("/b").host("x");
        let b = ListenerRule::new(&l, 1).host("x").path("/b").path("/a");
        assert!(diff(&a.into(), &b.into()).is_empty());
    }

    #[test]
    fn major_versions() {
        assert_eq!(major_version("8.0.35"), "8.0");
        assert_eq!(major_version("16.3"), "16");
        assert_eq!(major_version("9.6.24"), "9.6");
    }
}
