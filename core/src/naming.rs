//! Physical names for resources AWS names by the caller: unique per replacement, so a
//! replacement can be created before the old resource is deleted.

use sha2::{Digest, Sha256};

use crate::engine::diff::replacement_key;
use crate::model::Declared;

/// `{stack}-{id}-{hash7}`: lowercase, only `[a-z0-9-]`, at most `max_len` characters. The hash
/// covers the fields whose change forces a replacement, so a replacement gets a new name and an
/// in-place change keeps the old one. When the name is too long the `{stack}-{id}` part is cut.
///
/// Used by the AWS provider for target groups (32), load balancers (32), launch templates,
/// Auto Scaling Groups, DB subnet groups and security groups.
pub fn physical_name(stack: &str, declared: &Declared, max_len: usize) -> String {
    let key = replacement_key(&declared.resource);
    let digest = Sha256::digest(serde_json::to_vec(&key).expect("JSON values always serialize"));
    let hash = &hex::encode(digest)[..7];
    let mut prefix: String = format!("{stack}-{}", declared.id)
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    while prefix.contains("--") {
        prefix = prefix.replace("--", "-");
    }
    prefix.truncate(max_len.saturating_sub(hash.len() + 1));
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        hash[..hash.len().min(max_len)].to_string()
    } else {
        format!("{prefix}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HealthCheck, TargetGroup};
    use crate::refs::Ref;
    use crate::Stack;

    fn tg(port: u16, path: &str) -> Declared {
        let mut s = Stack::new("closet", "r");
        s.add(
            "Backend_API",
            TargetGroup::http(&Ref::from_id("main"), port).health_check(HealthCheck::http(path)),
        );
        s.resources.remove(0)
    }

    #[test]
    fn names_are_clean_stable_and_change_only_on_replacement() {
        let name = physical_name("closet", &tg(8080, "/"), 32);
        assert!(name.starts_with("closet-backend-api-"), "{name}");
        assert_eq!(name.len(), "closet-backend-api-".len() + 7);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_eq!(name, physical_name("closet", &tg(8080, "/health"), 32));
        assert_ne!(name, physical_name("closet", &tg(8081, "/"), 32));
    }

    #[test]
    fn long_names_are_cut_before_the_hash() {
        let name = physical_name("a-very-long-stack-name-indeed", &tg(80, "/"), 20);
        assert!(name.len() <= 20, "{name}");
        assert!(name.starts_with("a-very-long-"), "{name}");
        assert!(!name.contains("--"));
    }
}
