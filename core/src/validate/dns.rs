//! Route53 zones and records, and certificates validated in a zone: validation (E07xx).
//! Documented in docs/rules.md.

use crate::model::*;
use crate::refs::Address;

use super::index::Index;
use super::rules::error;
use super::Diagnostic;

/// DNS limits (RFC 1035): a label up to 63 octets, a name up to 253 characters.
const LABEL_MAX: usize = 63;
const NAME_MAX: usize = 253;
/// One TXT character-string holds at most 255 characters.
const TXT_STRING_MAX: usize = 255;

/// Letters, digits and hyphens, not starting or ending with a hyphen; `_` is allowed anywhere
/// (`_dmarc`, ACM's `_abc123` labels) and `*` as a whole label (wildcards).
fn label_ok(label: &str) -> bool {
    label == "*"
        || (!label.is_empty()
            && label.len() <= LABEL_MAX
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'))
}

/// A DNS name of at least `min_labels` valid labels.
pub(crate) fn dns_name_ok(name: &str, min_labels: usize) -> bool {
    name.len() <= NAME_MAX && name.split('.').count() >= min_labels && name.split('.').all(label_ok)
}

/// Whether `name` is `zone` or below it.
fn inside(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// E0701: a zone's name.
pub(crate) fn zone(a: &Address, z: &HostedZone, out: &mut Vec<Diagnostic>) {
    let name = z.name();
    if !dns_name_ok(name, 2) || name.contains('*') {
        out.push(
            error("E0701", a, "name", format!("`{name}` is not a domain name a public zone can have"))
                .with_help("use a registered domain such as `example.com`: labels of letters, digits and hyphens, separated by dots"),
        );
    }
}

/// E0702..E0705: a record's name and data.
pub(crate) fn record(index: &Index<'_>, a: &Address, r: &Record, out: &mut Vec<Diagnostic>) {
    let zone = index.get(&r.zone.address()).and_then(|z| match z {
        Resource::HostedZone(z) => Some(z.name()),
        _ => None,
    });
    let Some(zone) = zone else {
        // A dangling reference is reported by the reference check.
        return;
    };
    let fqdn = full_name(&r.name, zone);
    if (!r.name.is_empty() && inside(&r.name, zone)) || !dns_name_ok(&fqdn, 2) {
        out.push(
            error("E0702", a, "name", format!("`{}` is not a name inside the zone `{zone}`", r.name))
                .with_help(format!("give the name relative to the zone: `closet` for `closet.{zone}`, `\"\"` for the zone itself")),
        );
    }
    match &r.data {
        RecordData::Cname { target, .. } => {
            if r.name.is_empty() {
                out.push(
                    error("E0703", a, "name", format!("a CNAME cannot be at the zone apex `{zone}` (it would hide the zone's SOA and NS records)"))
                        .with_help("use Record::alias for a load balancer at the apex, or put the CNAME on a name below the zone"),
                );
            }
            if !dns_name_ok(target, 1) {
                out.push(error(
                    "E0704",
                    a,
                    "data.target",
                    format!("`{target}` is not a DNS name"),
                ));
            }
        }
        RecordData::Txt { values, .. } => txt(a, values, out),
        RecordData::Alias { .. } => {}
    }
}

fn txt(a: &Address, values: &[String], out: &mut Vec<Diagnostic>) {
    if values.is_empty() {
        out.push(error(
            "E0705",
            a,
            "data.values",
            "a TXT record needs at least one value",
        ));
    }
    for (i, v) in values.iter().enumerate() {
        if v.len() > TXT_STRING_MAX || !v.is_ascii() || v.contains('"') {
            out.push(
                error("E0705", a, &format!("data.values[{i}]"), format!("a TXT string holds at most {TXT_STRING_MAX} printable ASCII characters without `\"`; this one has {}", v.len()))
                    .with_help("split a long value (a DKIM key) into several strings of the one record"),
            );
        }
    }
}

/// E0706: a certificate validated in a zone covers only names inside it.
pub(crate) fn certificate(
    index: &Index<'_>,
    a: &Address,
    c: &Certificate,
    out: &mut Vec<Diagnostic>,
) {
    let (
        Some(zone_ref),
        Certificate::Request {
            domain_name,
            alternative_names,
            ..
        },
    ) = (c.validated_in(), c)
    else {
        return;
    };
    let Some(Resource::HostedZone(zone)) = index.get(&zone_ref.address()) else {
        return;
    };
    let names = std::iter::once(domain_name).chain(alternative_names);
    for name in names {
        let bare = normalize_name(name.trim_start_matches("*."));
        if !inside(&bare, zone.name()) {
            out.push(
                error("E0706", a, "validate_in", format!("`{name}` is not inside the zone `{}`, so its validation record cannot be written there", zone.name()))
                    .with_help("validate in the zone that serves the name, or request the name in a certificate of its own"),
            );
        }
    }
}
