//! Independent reads of IAM roles, their policies and instance profiles, with the raw SDK
//! client.

use serde_json::Value;

use crate::aws::Aws;

pub const SSM_CORE: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";

/// A policy document IAM returned (URL-encoded on AWS, plain in moto).
pub fn decode(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .unwrap();
        serde_json::from_str(&decoded).expect("a policy document is JSON")
    })
}

/// A value that may be one string or a list, as a sorted list.
pub fn list(value: &Value) -> Vec<String> {
    let mut out: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        other => panic!("not a string or a list: {other}"),
    };
    out.sort();
    out
}

/// A policy's statements as sorted `(effect, actions, resources)`.
pub fn statements(doc: &Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out: Vec<_> = doc["Statement"]
        .as_array()
        .expect("statements are a list")
        .iter()
        .map(|s| {
            (
                s["Effect"].as_str().unwrap().to_string(),
                list(&s["Action"]),
                list(&s["Resource"]),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn allow(actions: &[&str], resources: &[&str]) -> (String, Vec<String>, Vec<String>) {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ("Allow".into(), strings(actions), strings(resources))
}

pub async fn inline_policy(aws: &Aws, role: &str) -> Option<Value> {
    let got = aws
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name("infra")
        .send()
        .await;
    got.ok().map(|out| decode(out.policy_document()))
}

pub async fn managed_policies(aws: &Aws, role: &str) -> Vec<String> {
    let out = aws
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    out.attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect()
}

/// The role's trust policy and path, and the roles its instance profile holds.
pub async fn role_and_profile(aws: &Aws, role: &str) -> (Value, String, Vec<String>) {
    let got = aws.iam.get_role().role_name(role).send().await.unwrap();
    let r = got.role().unwrap();
    let trust = decode(r.assume_role_policy_document().unwrap());
    let profile = aws
        .iam
        .get_instance_profile()
        .instance_profile_name(role)
        .send()
        .await
        .unwrap();
    let held = profile
        .instance_profile()
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .collect();
    (trust, r.path().to_string(), held)
}

/// The instance profile named in the `$Latest` version of the stack's template `id`.
pub async fn template_profile(aws: &Aws, stack: &str, id: &str) -> Option<String> {
    let templates = aws.launch_templates(stack).await;
    let data = aws
        .latest_template_data(templates[id].launch_template_id().unwrap())
        .await;
    data.iam_instance_profile()
        .and_then(|p| p.name())
        .map(str::to_string)
}
