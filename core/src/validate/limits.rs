//! Single values AWS takes only in a range or a form the model's types do not hold: E0317 to
//! E0319, E0412, E0519, E0520 and E0707. Documented in docs/rules.md.

use crate::model::*;
use crate::refs::Address;

use super::rules::error;
use super::Diagnostic;

/// Route53 takes TTLs up to 2^31 - 1 seconds.
const TTL_MAX: u32 = i32::MAX as u32;

/// E0317: the idle timeout ELB accepts.
pub(crate) fn load_balancer(a: &Address, lb: &LoadBalancer, out: &mut Vec<Diagnostic>) {
    if !(1..=4000).contains(&lb.idle_timeout_seconds) {
        out.push(
            error(
                "E0317",
                a,
                "idle_timeout_seconds",
                format!(
                    "idle timeout `{}` s is out of range",
                    lb.idle_timeout_seconds
                ),
            )
            .with_help("use 1-4000 seconds (60 is AWS's default)"),
        );
    }
}

/// E0318: the deregistration delay ELB accepts.
pub(crate) fn target_group(a: &Address, t: &TargetGroup, out: &mut Vec<Diagnostic>) {
    if t.deregistration_delay_seconds > 3600 {
        out.push(
            error(
                "E0318",
                a,
                "deregistration_delay_seconds",
                format!(
                    "deregistration delay `{}` s is out of range",
                    t.deregistration_delay_seconds
                ),
            )
            .with_help("use 0-3600 seconds (300 is AWS's default)"),
        );
    }
}

/// E0319: an existing certificate is an ACM ARN in the stack's region (CreateListener answers
/// CertificateNotFound for one of another region, after the load balancer exists).
pub(crate) fn certificate(a: &Address, region: &str, c: &Certificate, out: &mut Vec<Diagnostic>) {
    let Certificate::Existing { arn } = c else {
        return;
    };
    let help = format!(
        "use `arn:aws:acm:{region}:ACCOUNT:certificate/ID` (`aws acm list-certificates --region {region}`); request or import a certificate in {region} if it has none"
    );
    match acm_arn_region(arn) {
        Some(r) if r == region => {}
        Some(r) => out.push(
            error("E0319", a, "arn", format!("the certificate is in `{r}`, the stack in `{region}`: a load balancer takes certificates of its own region only"))
                .with_help(help),
        ),
        None => out.push(
            error("E0319", a, "arn", format!("`{arn}` is not an ACM certificate ARN"))
                .with_help(help),
        ),
    }
}

/// The region of `arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID`, if `arn` is one.
fn acm_arn_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return None;
    };
    let id = resource.strip_prefix("certificate/")?;
    let ok = prefix == "arn"
        && partition.starts_with("aws")
        && service == "acm"
        && super::rules::region_ok(region)
        && account.len() == 12
        && account.bytes().all(|c| c.is_ascii_digit())
        && !id.is_empty()
        && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    ok.then_some(region)
}

/// E0412: a key pair name EC2 accepts.
pub(crate) fn launch_template(a: &Address, t: &LaunchTemplate, out: &mut Vec<Diagnostic>) {
    let Some(key) = &t.key_name else {
        return;
    };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|c| c.is_ascii() && c >= b' ') {
        out.push(
            error("E0412", a, "key_name", format!("`{key}` is not a key pair name"))
                .with_help("use the name of an EC2 key pair in the stack's region: 1-255 printable ASCII characters"),
        );
    }
}

/// E0519 and E0520: an engine version and instance class in RDS's form.
pub(crate) fn db_instance(a: &Address, db: &DbInstance, out: &mut Vec<Diagnostic>) {
    let version = &db.engine_version;
    let version_ok = version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || b".-_".contains(&c));
    if !version_ok {
        out.push(
            error("E0519", a, "engine_version", format!("`{version}` is not an engine version"))
                .with_help(format!("use a version RDS lists for {} (`aws rds describe-db-engine-versions --engine {}`): `8.0`, `8.0.39`, `16.4`", db.engine.as_str(), db.engine.as_str())),
        );
    }
    let class = &db.instance_class;
    let class_ok = class.split('.').count() == 3
        && class.starts_with("db.")
        && class
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    if !class_ok {
        out.push(
            error(
                "E0520",
                a,
                "instance_class",
                format!("`{class}` is not a DB instance class"),
            )
            .with_help(
                "use db.FAMILY.SIZE, e.g. `db.t3.micro` (an EC2 instance type with `db.` in front)",
            ),
        );
    }
}

/// E0707: a record TTL Route53 accepts.
pub(crate) fn record(a: &Address, r: &Record, out: &mut Vec<Diagnostic>) {
    let ttl = match &r.data {
        RecordData::Cname { ttl, .. } | RecordData::Txt { ttl, .. } => *ttl,
        RecordData::Alias { .. } => return,
    };
    if ttl > TTL_MAX {
        out.push(
            error(
                "E0707",
                a,
                "data.ttl",
                format!("TTL `{ttl}` s is out of range"),
            )
            .with_help(format!(
                "use 0-{TTL_MAX} seconds (300 is the default; a day is 86400)"
            )),
        );
    }
}
