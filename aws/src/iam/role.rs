//! The IAM role: trust policy, instance profile, managed-policy attachments and the inline
//! policy `infra` writes; create, update, delete, read, adopt.
//!
//! IAM is eventually consistent (terraform-provider-aws `internal/service/iam`: a 2-minute
//! `propagationTimeout` around reads and writes that follow a create): every call that follows
//! the role's create retries NoSuchEntity, and the launch template and Auto Scaling Group that
//! use the profile retry its refusal (`support::retry_new_profile`).

use aws_config::retry::RetryConfig;
use aws_sdk_iam::types::{AttachedPolicy, InstanceProfile, PolicyDetail, RoleDetail, Tag};
use infra_core::model::{
    policy_document, role_name, role_path, trust_document, Declared, Resource, Role,
};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use super::document;
use crate::support::{
    api_error, create_once, error_code, is_not_found, owned_id, ownership_tags, retry_not_found,
    PROFILE_PROPAGATION,
};
use crate::AwsProvider;

/// The name of the one inline policy `infra` writes on a role. Other inline policies are left
/// alone (and block a delete: see [`delete`]).
const POLICY_NAME: &str = "infra";

fn role_of(desired: &Declared) -> Result<&Role, ProviderError> {
    match &desired.resource {
        Resource::Role(r) => Ok(r),
        other => Err(ProviderError::Other(format!(
            "iam: expected a role, got {}",
            other.kind()
        ))),
    }
}

fn iam_tags(stack: &str, id: &str) -> Vec<Tag> {
    ownership_tags(stack, id)
        .into_iter()
        .filter_map(|(key, value)| Tag::builder().key(key).value(value).build().ok())
        .collect()
}

/// A role as GetAccountAuthorizationDetails (or [`read`]) reports it.
pub(super) fn observe(id: &str, detail: &RoleDetail) -> Result<Observed, ProviderError> {
    let name = detail.role_name().unwrap_or_default();
    let trust = match detail.assume_role_policy_document() {
        Some(text) => document::trusted_services(&document::decode(text)?),
        None => Vec::new(),
    };
    let statements = match detail
        .role_policy_list()
        .iter()
        .find(|p| p.policy_name() == Some(POLICY_NAME))
        .and_then(PolicyDetail::policy_document)
    {
        Some(text) => document::statements(&document::decode(text)?),
        None => Vec::new(),
    };
    let role = Role {
        trusted_services: trust,
        instance_profile: detail
            .instance_profile_list()
            .iter()
            .any(|p| p.instance_profile_name() == name),
        managed_policies: detail
            .attached_managed_policies()
            .iter()
            .filter_map(AttachedPolicy::policy_arn)
            .map(str::to_string)
            .collect(),
        grants: Vec::new(),
        statements,
    };
    let address = Address::new(Kind::Role, id);
    Ok(Observed::new(address, name, role.into())
        .with_attribute(attributes::ARN, detail.arn().unwrap_or_default()))
}

/// The ARN of the role `name` if it exists and is this stack's `id`; an error if it exists and
/// is someone else's (role names are unique per account).
async fn find_owned(
    p: &AwsProvider,
    stack: &str,
    id: &str,
    name: &str,
) -> Result<Option<String>, ProviderError> {
    let role = match p.iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e) => {
            let err = api_error("iam:GetRole", e);
            return if is_not_found(&err) {
                Ok(None)
            } else {
                Err(err)
            };
        }
    };
    let Some(role) = role else { return Ok(None) };
    let tags = role.tags().iter().map(|t| (t.key(), t.value()));
    if owned_id(stack, tags).as_deref() == Some(id) {
        Ok(Some(role.arn().to_string()))
    } else {
        Err(ProviderError::Other(format!(
            "IAM role `{name}` exists in this account and is not this stack's `iam_role.{id}`; \
             rename the role's id, or delete or import the existing role"
        )))
    }
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let r = role_of(desired)?;
    let name = role_name(ctx.stack, ctx.region, &desired.id);
    let path = role_path(ctx.stack, ctx.region);
    let arn = create_once(
        p.options.max_attempts,
        || find_owned(p, ctx.stack, &desired.id, &name),
        || async {
            let out = p
                .iam
                .create_role()
                .role_name(&name)
                .path(&path)
                .assume_role_policy_document(trust_document(&r.trusted_services))
                .set_tags(Some(iam_tags(ctx.stack, &desired.id)))
                .customize()
                .config_override(
                    aws_sdk_iam::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await
                .map_err(|e| api_error("iam:CreateRole", e))?;
            Ok(out.role.map(|role| role.arn).unwrap_or_default())
        },
    )
    .await?;
    if !r.statements.is_empty() {
        put_policy(p, &name, r).await?;
    }
    for policy in &r.managed_policies {
        attach(p, &name, policy).await?;
    }
    if r.instance_profile {
        create_profile(p, ctx, &desired.id, &name, &path).await?;
    }
    Ok(written(desired, &name, &arn))
}

/// The role as just written: what discovery will read.
fn written(desired: &Declared, name: &str, arn: &str) -> Observed {
    Observed::new(desired.address(), name, desired.resource.clone())
        .with_attribute(attributes::ARN, arn)
}

/// Write the inline policy, or remove it when there is nothing to allow.
async fn put_policy(p: &AwsProvider, name: &str, r: &Role) -> Result<(), ProviderError> {
    if r.statements.is_empty() {
        return delete_policy(p, name).await;
    }
    let doc = policy_document(&r.statements);
    retry_not_found(PROFILE_PROPAGATION, || async {
        p.iam
            .put_role_policy()
            .role_name(name)
            .policy_name(POLICY_NAME)
            .policy_document(&doc)
            .send()
            .await
            .map_err(|e| api_error("iam:PutRolePolicy", e))
    })
    .await?;
    Ok(())
}

async fn delete_policy(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    let result = p
        .iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(POLICY_NAME)
        .send()
        .await
        .map_err(|e| api_error("iam:DeleteRolePolicy", e));
    gone(result.map(|_| ()))
}

/// Attach a managed policy. NoSuchEntity is retried while it is about the new role, not about a
/// policy that does not exist (which no wait fixes).
async fn attach(p: &AwsProvider, name: &str, policy: &str) -> Result<(), ProviderError> {
    let attached = retry_not_found(PROFILE_PROPAGATION, || async {
        let result = p
            .iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(policy)
            .send()
            .await
            .map_err(|e| api_error("iam:AttachRolePolicy", e));
        match result {
            Err(err) if err.to_string().contains(policy) => Err(ProviderError::Other(format!(
                "managed policy `{policy}` does not exist or cannot be attached ({err})"
            ))),
            other => other,
        }
    })
    .await;
    attached.map(|_| ())
}

async fn detach(p: &AwsProvider, name: &str, policy: &str) -> Result<(), ProviderError> {
    let result = p
        .iam
        .detach_role_policy()
        .role_name(name)
        .policy_arn(policy)
        .send()
        .await
        .map_err(|e| api_error("iam:DetachRolePolicy", e));
    gone(result.map(|_| ()))
}

/// NotFound on a delete: already gone, which is what was wanted.
fn gone(result: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match result {
        Err(err) if is_not_found(&err) => Ok(()),
        other => other,
    }
}

/// The instance profile of the role's name, holding the role.
async fn create_profile(
    p: &AwsProvider,
    ctx: &Context<'_>,
    id: &str,
    name: &str,
    path: &str,
) -> Result<(), ProviderError> {
    let created = p
        .iam
        .create_instance_profile()
        .instance_profile_name(name)
        .path(path)
        .set_tags(Some(iam_tags(ctx.stack, id)))
        .send()
        .await
        .map_err(|e| api_error("iam:CreateInstanceProfile", e));
    match created {
        // Made by an attempt whose answer was lost; it has our name under our path.
        Err(err) if error_code(&err) == Some("EntityAlreadyExists") => {}
        other => {
            other?;
        }
    }
    let added = retry_not_found(PROFILE_PROPAGATION, || async {
        p.iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(name)
            .send()
            .await
            .map_err(|e| api_error("iam:AddRoleToInstanceProfile", e))
    })
    .await;
    match added {
        // A profile holds one role: it already holds this one.
        Err(err) if error_code(&err) == Some("LimitExceeded") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Take the role `name` out of `profile`.
async fn remove_role(p: &AwsProvider, profile: &str, name: &str) -> Result<(), ProviderError> {
    let removed = p
        .iam
        .remove_role_from_instance_profile()
        .instance_profile_name(profile)
        .role_name(name)
        .send()
        .await
        .map_err(|e| api_error("iam:RemoveRoleFromInstanceProfile", e));
    gone(removed.map(|_| ()))
}

/// Delete the profile of the role's name (the role taken out of it first).
async fn delete_profile(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    let deleted = p
        .iam
        .delete_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(|e| api_error("iam:DeleteInstanceProfile", e));
    gone(deleted.map(|_| ()))
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let r = role_of(desired)?;
    let name = prior.physical_id.as_str();
    let has = |field: &str| changed.iter().any(|c| c == field);
    if has("trusted_services") {
        p.iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_document(&r.trusted_services))
            .send()
            .await
            .map_err(|e| api_error("iam:UpdateAssumeRolePolicy", e))?;
    }
    if has("statements") {
        put_policy(p, name, r).await?;
    }
    if has("managed_policies") {
        update_attachments(p, name, r, prior).await?;
    }
    if has("instance_profile") {
        if r.instance_profile {
            let path = role_path(ctx.stack, ctx.region);
            create_profile(p, ctx, &desired.id, name, &path).await?;
        } else {
            remove_role(p, name, name).await?;
            delete_profile(p, name).await?;
        }
    }
    let arn = prior.attributes.get(attributes::ARN).cloned();
    Ok(written(desired, name, &arn.unwrap_or_default()))
}

/// Attach what is declared and not attached; detach what is attached and not declared (the
/// plan showed it; the policy itself is not touched).
async fn update_attachments(
    p: &AwsProvider,
    name: &str,
    r: &Role,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let attached = match &prior.resource {
        Resource::Role(old) => old.managed_policies.clone(),
        _ => Vec::new(),
    };
    for policy in r.managed_policies.iter().filter(|a| !attached.contains(a)) {
        attach(p, name, policy).await?;
    }
    for policy in attached.iter().filter(|a| !r.managed_policies.contains(a)) {
        detach(p, name, policy).await?;
    }
    Ok(())
}

/// Delete in the order IAM requires: out of its instance profiles, managed policies detached,
/// `infra`'s inline policy deleted, then profile and role. An inline policy someone else put
/// on the role stops the delete before anything changes: deleting the role would delete it.
pub(super) async fn delete(
    p: &AwsProvider,
    _ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let name = prior.physical_id.as_str();
    let inline = match p.iam.list_role_policies().role_name(name).send().await {
        Ok(out) => out.policy_names,
        Err(e) => return gone(Err(api_error("iam:ListRolePolicies", e))),
    };
    let foreign: Vec<&String> = inline.iter().filter(|n| *n != POLICY_NAME).collect();
    if !foreign.is_empty() {
        return Err(ProviderError::Other(format!(
            "IAM role `{name}` has inline policies infra did not write ({}); deleting the role \
             would delete them. Move or delete them by hand, then run destroy again",
            foreign
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    remove_from_profiles(p, name).await?;
    delete_profile(p, name).await?;
    let attached = p
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| api_error("iam:ListAttachedRolePolicies", e))?;
    for policy in attached
        .attached_policies()
        .iter()
        .filter_map(|a| a.policy_arn())
    {
        detach(p, name, policy).await?;
    }
    if !inline.is_empty() {
        delete_policy(p, name).await?;
    }
    let deleted = p
        .iam
        .delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| api_error("iam:DeleteRole", e));
    gone(deleted.map(|_| ()))
}

/// Take the role out of every instance profile holding it (one made by hand included: a
/// profile cannot outlive its role's delete holding it).
async fn remove_from_profiles(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    let profiles = p
        .iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| api_error("iam:ListInstanceProfilesForRole", e))?;
    // Only the profiles that hold it: moto answers 500, not NoSuchEntity, for a role that is
    // not in the profile.
    for profile in profiles.instance_profiles() {
        remove_role(p, profile.instance_profile_name(), name).await?;
    }
    Ok(())
}

/// A role by name, for `infra import`: only one under this stack's path can be discovered later.
pub(super) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    name: &str,
) -> Result<Option<Observed>, ProviderError> {
    let role = match p.iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e) => return gone(Err(api_error("iam:GetRole", e))).map(|()| None),
    };
    let Some(role) = role else { return Ok(None) };
    let path = role_path(&stack.name, &stack.region);
    if role.path() != path {
        return Err(ProviderError::Other(format!(
            "IAM role `{name}` has the path `{}`; infra finds a stack's roles under `{path}`, and \
             IAM cannot move a role: let infra create `{address}` instead",
            role.path()
        )));
    }
    let detail = detail_of(p, &role).await?;
    observe(&address.id, &detail).map(Some)
}

/// What GetAccountAuthorizationDetails would report for one role, from the per-role reads.
async fn detail_of(
    p: &AwsProvider,
    role: &aws_sdk_iam::types::Role,
) -> Result<RoleDetail, ProviderError> {
    let name = role.role_name();
    let (attached, profiles, policy) = futures::join!(
        p.iam.list_attached_role_policies().role_name(name).send(),
        p.iam
            .list_instance_profiles_for_role()
            .role_name(name)
            .send(),
        p.iam
            .get_role_policy()
            .role_name(name)
            .policy_name(POLICY_NAME)
            .send(),
    );
    let attached = attached.map_err(|e| api_error("iam:ListAttachedRolePolicies", e))?;
    let profiles = profiles.map_err(|e| api_error("iam:ListInstanceProfilesForRole", e))?;
    let policy = match policy.map_err(|e| api_error("iam:GetRolePolicy", e)) {
        Ok(out) => vec![PolicyDetail::builder()
            .policy_name(POLICY_NAME)
            .policy_document(out.policy_document)
            .build()],
        Err(err) if is_not_found(&err) => Vec::new(),
        Err(err) => return Err(err),
    };
    Ok(RoleDetail::builder()
        .role_name(name)
        .path(role.path())
        .arn(role.arn())
        .set_assume_role_policy_document(role.assume_role_policy_document().map(str::to_string))
        .set_attached_managed_policies(attached.attached_policies)
        .set_instance_profile_list(Some(
            profiles
                .instance_profiles
                .into_iter()
                .collect::<Vec<InstanceProfile>>(),
        ))
        .set_role_policy_list(Some(policy))
        .set_tags(Some(role.tags().to_vec()))
        .build())
}

/// Tag an imported role (and its profile) as this stack's.
pub(super) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    let name = observed.physical_id.as_str();
    let tags = iam_tags(ctx.stack, &observed.address.id);
    p.iam
        .tag_role()
        .role_name(name)
        .set_tags(Some(tags.clone()))
        .send()
        .await
        .map_err(|e| api_error("iam:TagRole", e))?;
    let tagged = p
        .iam
        .tag_instance_profile()
        .instance_profile_name(name)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| api_error("iam:TagInstanceProfile", e));
    gone(tagged.map(|_| ()))
}
