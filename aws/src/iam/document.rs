//! Policy documents as IAM returns them (URL-encoded JSON; `Action`, `Resource` and `Statement`
//! as one value or a list; keys in any order) read back into the model.

use infra_core::model::{Effect, Statement};
use infra_core::ProviderError;
use serde_json::{Map, Value};

/// A document from IAM: URL-encoded in every read API (RFC 3986), plain JSON in some emulators.
pub(super) fn decode(text: &str) -> Result<Value, ProviderError> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map_err(|e| ProviderError::Other(format!("IAM policy document is not UTF-8: {e}")))?;
    serde_json::from_str(&decoded)
        .map_err(|e| ProviderError::Other(format!("IAM policy document is not JSON: {e}")))
}

/// A value that may be one string or a list of strings.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The statements of a document, one object or a list.
fn statement_objects(doc: &Value) -> Vec<Map<String, Value>> {
    match doc.get("Statement") {
        Some(Value::Object(one)) => vec![one.clone()],
        Some(Value::Array(all)) => all.iter().filter_map(|s| s.as_object().cloned()).collect(),
        _ => Vec::new(),
    }
}

/// An identity policy's statements. `Sid` is dropped (it changes nothing); elements the model
/// does not name go into `other`, so a hand-added `Condition` shows as a change.
pub(super) fn statements(doc: &Value) -> Vec<Statement> {
    statement_objects(doc)
        .into_iter()
        .map(|mut s| {
            s.remove("Sid");
            let effect = match s.remove("Effect").as_ref().and_then(Value::as_str) {
                Some("Deny") => Effect::Deny,
                _ => Effect::Allow,
            };
            let actions = strings(s.remove("Action").as_ref());
            let resources = strings(s.remove("Resource").as_ref());
            let mut statement = Statement::allow(&[], &[]);
            statement.effect = effect;
            statement.actions = actions;
            statement.resources = resources;
            statement.other = s.into_iter().collect();
            statement
        })
        .collect()
}

/// The services a trust policy lets assume the role. A statement of another form (an account
/// principal, a condition) is reported as its JSON text among them, so it shows as a change and
/// apply writes the declared trust back.
pub(super) fn trusted_services(doc: &Value) -> Vec<String> {
    let mut services = Vec::new();
    for mut s in statement_objects(doc) {
        s.remove("Sid");
        let plain = s.len() == 3
            && s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && strings(s.get("Action")) == ["sts:AssumeRole"]
            && s.get("Principal")
                .and_then(Value::as_object)
                .is_some_and(|p| p.len() == 1 && p.contains_key("Service"));
        if plain {
            services.extend(strings(s.get("Principal").and_then(|p| p.get("Service"))));
        } else {
            services.push(Value::Object(s).to_string());
        }
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::model::{policy_document, trust_document};

    #[test]
    fn url_encoded_documents_with_single_values_read_as_the_model() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Sid%22%3A%22x%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%22%2C%22Action%22%3A%22s3%3AListBucket%22%2C%22Effect%22%3A%22Allow%22%7D%7D";
        let doc = decode(encoded).unwrap();
        assert_eq!(
            statements(&doc),
            [Statement::allow(&["s3:ListBucket"], &["arn:aws:s3:::b"])]
        );
    }

    #[test]
    fn written_documents_read_back_unchanged() {
        let written = [
            Statement::deny(&["s3:DeleteObject"], &["arn:aws:s3:::b/*"]).with(
                "Condition",
                serde_json::json!({"Bool": {"aws:SecureTransport": "false"}}),
            ),
        ];
        let doc = decode(&policy_document(&written)).unwrap();
        assert_eq!(statements(&doc), written);
        let trust = decode(&trust_document(&["ec2.amazonaws.com".into()])).unwrap();
        assert_eq!(trusted_services(&trust), ["ec2.amazonaws.com"]);
    }

    #[test]
    fn a_trust_statement_of_another_form_shows_as_itself() {
        let doc = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]});
        let services = trusted_services(&doc);
        assert_eq!(services.len(), 1);
        assert!(services[0].contains("123456789012"));
    }
}
