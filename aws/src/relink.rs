//! Turning the physical ids that AWS reports for references back into logical ids.
//!
//! Each service module reports references as the physical id AWS returned (a `Ref<Vpc>` holding
//! `vpc-0abc`). Once the whole stack is discovered, every string equal to the physical id of an
//! owned resource is replaced by that resource's logical id. Physical ids (`vpc-…`, `sg-…`,
//! ARNs, generated names) are unique tokens, so no other field value can collide with one; a
//! resource's own physical id is skipped (a bucket's `name` *is* its physical id). References
//! to resources the stack does not own keep their physical id and so show up as a diff.

use std::collections::HashMap;

use infra_core::Observed;
use serde_json::Value;

pub(crate) fn relink(observed: Vec<Observed>) -> Vec<Observed> {
    let logical: HashMap<String, String> = observed
        .iter()
        .map(|o| (o.physical_id.clone(), o.address.id.clone()))
        .collect();
    observed
        .into_iter()
        .map(|mut o| {
            let mut value = serde_json::to_value(&o.resource).expect("resources serialize");
            rewrite(&mut value, &logical, &o.physical_id);
            o.resource = serde_json::from_value(value).expect("rewriting strings keeps the shape");
            o
        })
        .collect()
}

fn rewrite(value: &mut Value, logical: &HashMap<String, String>, own: &str) {
    match value {
        Value::String(s) if s != own => {
            if let Some(id) = logical.get(s.as_str()) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, logical, own)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite(v, logical, own)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::prelude::*;
    use infra_core::Kind;

    #[test]
    fn physical_references_become_logical_ids_but_own_names_stay() {
        let vpc = Observed::new(
            Address::new(Kind::Vpc, "main"),
            "vpc-123",
            Vpc::new("10.0.0.0/16").into(),
        );
        let subnet = Observed::new(
            Address::new(Kind::Subnet, "a"),
            "subnet-9",
            Subnet::public(&Ref::from_id("vpc-123"), "10.0.1.0/24", "ap-northeast-2a").into(),
        );
        let foreign = Observed::new(
            Address::new(Kind::Subnet, "b"),
            "subnet-8",
            Subnet::public(&Ref::from_id("vpc-999"), "10.0.2.0/24", "ap-northeast-2c").into(),
        );
        let bucket = Observed::new(
            Address::new(Kind::Bucket, "uploads"),
            "uploads",
            Bucket::new("uploads").into(),
        );
        let out = relink(vec![vpc, subnet, foreign, bucket]);
        let Resource::Subnet(s) = &out[1].resource else {
            panic!("subnet expected")
        };
        assert_eq!(s.vpc.id(), "main");
        let Resource::Subnet(s) = &out[2].resource else {
            panic!("subnet expected")
        };
        assert_eq!(s.vpc.id(), "vpc-999");
        let Resource::Bucket(b) = &out[3].resource else {
            panic!("bucket expected")
        };
        assert_eq!(b.name, "uploads");
    }
}
