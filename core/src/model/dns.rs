//! Route53: hosted zones (looked up or created) and the records `infra` manages in them.
//!
//! ```
//! use infra_core::prelude::*;
//!
//! let mut s = Stack::new("demo", "ap-northeast-2");
//! let zone = s.add("site", HostedZone::existing("example.com"));
//! s.add("verify", Record::txt(&zone, "_verify", ["token-1"]));
//! ```
//!
//! Records cannot be tagged. Each record `infra` writes has a TXT companion at
//! [`ownership_name`] naming the stack, its region and the owner's address ([`ownership_value`]),
//! written in the same (atomic) change batch; a record without its companion is never changed
//! or deleted.

use serde::{Deserialize, Serialize};

use super::elb::LoadBalancer;
use crate::refs::{Kind, Ref, ResourceKind};

/// A Route53 public hosted zone. Its name is a domain of at least two labels (`E0701`), kept
/// lowercase without the final dot.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let zone = s.add("site", HostedZone::new("example.com"));
/// s.output("name_servers", zone.name_servers());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum HostedZone {
    /// A zone managed elsewhere (registrar, another team), looked up by name: never changed or
    /// deleted; `infra` only writes its own records into it.
    Existing { name: String },
    /// A zone this stack creates; its name servers are an output, to be set at the registrar.
    New { name: String },
}

impl HostedZone {
    /// A zone managed elsewhere, looked up by `name`: never changed or deleted; `infra` only
    /// writes its own records into it.
    pub fn existing(name: impl Into<String>) -> Self {
        HostedZone::Existing {
            name: normalize_name(&name.into()),
        }
    }

    /// A zone this stack creates; set its [`Ref::name_servers`] at the registrar. Destroy stops
    /// when the zone holds records `infra` did not write, and names them.
    pub fn new(name: impl Into<String>) -> Self {
        HostedZone::New {
            name: normalize_name(&name.into()),
        }
    }

    /// The zone's domain name, lowercase, without the final dot.
    pub fn name(&self) -> &str {
        match self {
            HostedZone::Existing { name } | HostedZone::New { name } => name,
        }
    }
}

impl ResourceKind for HostedZone {
    const KIND: Kind = Kind::HostedZone;
}

/// A DNS name as `infra` keeps it: lowercase, without the final dot.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// One record set in a zone: the zone, the name relative to it (`""` for the apex) and the data.
/// The name is relative to the zone (`closet`, not `closet.example.com`: `E0702`).
///
/// ```
/// use infra_core::prelude::*;
///
/// # let mut s = Stack::new("demo", "ap-northeast-2");
/// # let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// # let a = s.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// # let c = s.add("public_c", Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
/// # let alb = s.add("web", LoadBalancer::internet_facing(&[&a, &c], &[]));
/// let zone = s.add("site", HostedZone::existing("example.com"));
/// let site = s.add("closet", Record::alias(&zone, "closet", &alb));
/// s.add("www", Record::cname(&zone, "www", "closet.example.com").ttl(60));
/// s.output("url", site.https_url());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub zone: Ref<HostedZone>,
    /// The name below the zone (`closet` in `example.com`), `""` for the zone apex.
    pub name: String,
    pub data: RecordData,
}

/// What a record holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordData {
    /// An A (or, with `ipv6`, AAAA) alias to a load balancer: Route53 answers with the load
    /// balancer's addresses, at no charge, and follows them as they change.
    Alias {
        load_balancer: Ref<LoadBalancer>,
        #[serde(default)]
        ipv6: bool,
    },
    Cname {
        target: String,
        ttl: u32,
    },
    /// TXT strings, each at most 255 characters (quoting is added by `infra`).
    Txt {
        values: Vec<String>,
        ttl: u32,
    },
}

/// TTL of CNAME and TXT records unless set.
pub const DEFAULT_TTL: u32 = 300;

impl Record {
    /// `name.zone` as an A alias to `load_balancer` (its DNS name and canonical hosted zone id);
    /// `name` `""` is the zone apex. An alias has no TTL.
    pub fn alias(zone: &Ref<HostedZone>, name: &str, load_balancer: &Ref<LoadBalancer>) -> Self {
        Record {
            zone: zone.clone(),
            name: normalize_name(name),
            data: RecordData::Alias {
                load_balancer: load_balancer.clone(),
                ipv6: false,
            },
        }
    }

    /// The AAAA alias instead of the A one (for a dual-stack load balancer). Aliases only;
    /// ignored otherwise.
    pub fn ipv6(mut self) -> Self {
        if let RecordData::Alias { ipv6, .. } = &mut self.data {
            *ipv6 = true;
        }
        self
    }

    /// `name.zone` as a CNAME to `target` (a DNS name, `E0704`), TTL 300. Not at the zone apex
    /// (`E0703`).
    pub fn cname(zone: &Ref<HostedZone>, name: &str, target: impl Into<String>) -> Self {
        Record {
            zone: zone.clone(),
            name: normalize_name(name),
            data: RecordData::Cname {
                target: normalize_name(&target.into()),
                ttl: DEFAULT_TTL,
            },
        }
    }

    /// `name.zone` as a TXT record of `values` (at least one; each at most 255 printable ASCII
    /// characters without `"`: `E0705`), TTL 300.
    pub fn txt<S: Into<String>>(
        zone: &Ref<HostedZone>,
        name: &str,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        Record {
            zone: zone.clone(),
            name: normalize_name(name),
            data: RecordData::Txt {
                values: values.into_iter().map(Into::into).collect(),
                ttl: DEFAULT_TTL,
            },
        }
    }

    /// Set the TTL of a CNAME or TXT record in seconds, 0-2147483647 (`E0707`; an alias has
    /// none; ignored there). Default: 300 ([`DEFAULT_TTL`]).
    pub fn ttl(mut self, seconds: u32) -> Self {
        match &mut self.data {
            RecordData::Cname { ttl, .. } | RecordData::Txt { ttl, .. } => *ttl = seconds,
            RecordData::Alias { .. } => {}
        }
        self
    }

    /// The record type: `A`, `AAAA`, `CNAME` or `TXT`.
    pub fn record_type(&self) -> &'static str {
        match &self.data {
            RecordData::Alias { ipv6: false, .. } => "A",
            RecordData::Alias { ipv6: true, .. } => "AAAA",
            RecordData::Cname { .. } => "CNAME",
            RecordData::Txt { .. } => "TXT",
        }
    }
}

impl ResourceKind for Record {
    const KIND: Kind = Kind::Record;
}

/// `name` below `zone` as a full name (no final dot).
pub fn full_name(name: &str, zone: &str) -> String {
    if name.is_empty() {
        zone.to_string()
    } else {
        format!("{name}.{zone}")
    }
}

/// The name of the TXT record that marks `record_type` at `fqdn` as written by `infra`:
/// `_infra-cname.www.example.com` (one per type, so an A and an AAAA at one name each have
/// theirs, and beside a CNAME, which allows no other record at its own name).
pub fn ownership_name(fqdn: &str, record_type: &str) -> String {
    format!("_infra-{}.{fqdn}", record_type.to_ascii_lowercase())
}

/// The value of an ownership TXT record: `infra stack=S region=R owner=ADDRESS`.
pub fn ownership_value(stack: &str, region: &str, owner: &str) -> String {
    format!("infra stack={stack} region={region} owner={owner}")
}

/// The owner's address in an ownership value, when it names `stack` in `region`.
pub fn ownership_owner<'a>(value: &'a str, stack: &str, region: &str) -> Option<&'a str> {
    let rest = value.strip_prefix("infra stack=")?;
    let (s, rest) = rest.split_once(" region=")?;
    let (r, owner) = rest.split_once(" owner=")?;
    (s == stack && r == region).then_some(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_without_the_final_dot() {
        assert_eq!(HostedZone::new("Example.COM.").name(), "example.com");
        let zone = Ref::from_id("z");
        let r = Record::alias(&zone, "Closet", &Ref::from_id("alb"));
        assert_eq!((r.name.as_str(), r.record_type()), ("closet", "A"));
        assert_eq!(full_name("", "example.com"), "example.com");
    }

    #[test]
    fn ownership_values_name_stack_region_and_owner() {
        let v = ownership_value("closet", "ap-northeast-2", "route53_record.www");
        assert_eq!(
            ownership_owner(&v, "closet", "ap-northeast-2"),
            Some("route53_record.www")
        );
        assert_eq!(ownership_owner(&v, "closet", "us-east-1"), None);
        assert_eq!(ownership_owner(&v, "clos", "ap-northeast-2"), None);
        assert_eq!(
            ownership_name("www.example.com", "CNAME"),
            "_infra-cname.www.example.com"
        );
    }
}
