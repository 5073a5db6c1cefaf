//! Launch templates (EC2).
//!
//! Discovery: one tag-filtered DescribeLaunchTemplates (paginated), then at once the latest
//! version of the stack's templates and one SSM GetParameters per ten image parameters they were
//! built from. DescribeLaunchTemplateVersions takes one template id, or none and then lists the
//! `$Latest` version of every template in the region: one template is asked by id, several by
//! that one listing (paginated), kept to the stack's templates.
//!
//! A data change is a new version made the default; `latest_version` names it. Create and update
//! read nothing back: the write answers with the id, name and version number, and the data and
//! tags are what was sent.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ec2::types::{self as ec2, RequestLaunchTemplateData, ResourceType, Tag};
use futures::future::try_join_all;
use infra_core::model::{Declared, Image, LaunchTemplate, Resource};
use infra_core::naming::physical_name;
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use super::launch_template_data::{as_reported, model_of, request_data, Ami};
use super::{id_filter, no_retries, relinked, stack_filter, tag_pairs, tag_spec, Scope};
use crate::support::{
    api_error, client_token, create_once, is_not_found, owned_id, retry_new_profile,
    retry_not_found, wait_for, Poll, VISIBLE_WITHIN,
};
use crate::AwsProvider;

/// AWS caps launch template names at 128 characters.
const NAME_MAX: usize = 128;
/// Tag on the template naming the SSM parameter its AMI was resolved from.
const TAG_IMAGE_SOURCE: &str = "infra:image-source";
/// GetParameters takes at most ten names.
const SSM_BATCH: usize = 10;

/// A template as AWS reports it: the template, and the data of its latest version.
struct Found {
    template: ec2::LaunchTemplate,
    version: ec2::LaunchTemplateVersion,
}

fn image_source(template: &ec2::LaunchTemplate) -> Option<&str> {
    tag_pairs(template.tags())
        .find(|(k, _)| *k == TAG_IMAGE_SOURCE)
        .map(|(_, v)| v)
}

async fn describe_templates(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::LaunchTemplate>, ProviderError> {
    let request = p.ec2.describe_launch_templates();
    let request = match scope {
        Scope::Stack(stack) => request.filters(stack_filter(stack)),
        Scope::Owned(stack, id) => request.filters(stack_filter(stack)).filters(id_filter(id)),
        Scope::Id(id) => request.launch_template_ids(id),
    };
    let mut paginator = request.into_paginator();
    if !matches!(scope, Scope::Id(_)) {
        // moto returns at most MaxResults (15 by default) and no NextToken; 200 is AWS's maximum.
        paginator = paginator.page_size(200);
    }
    let result = paginator
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("ec2:DescribeLaunchTemplates", e));
    match result {
        Err(err) if matches!(scope, Scope::Id(_)) && is_not_found(&err) => Ok(Vec::new()),
        other => other,
    }
}

/// The latest version of a template.
async fn latest_version(
    p: &AwsProvider,
    template: ec2::LaunchTemplate,
) -> Result<Found, ProviderError> {
    let template_id = template.launch_template_id().unwrap_or_default();
    let version = template
        .latest_version_number()
        .map_or_else(|| "$Latest".to_string(), |v| v.to_string());
    let out = p
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .versions(version)
        .send()
        .await
        .map_err(|e| api_error("ec2:DescribeLaunchTemplateVersions", e))?;
    let version = out
        .launch_template_versions()
        .first()
        .cloned()
        .ok_or_else(|| ProviderError::Api {
            operation: "ec2:DescribeLaunchTemplateVersions".into(),
            code: "InvalidLaunchTemplateId.VersionNotFound".into(),
            message: format!("{template_id} has no latest version"),
        })?;
    Ok(Found { template, version })
}

/// The `$Latest` version of every launch template in the region, by template id:
/// DescribeLaunchTemplateVersions without a template id or name, paginated.
async fn all_latest_versions(
    p: &AwsProvider,
) -> Result<HashMap<String, ec2::LaunchTemplateVersion>, ProviderError> {
    let versions: Vec<ec2::LaunchTemplateVersion> = p
        .ec2
        .describe_launch_template_versions()
        .versions("$Latest")
        .into_paginator()
        // 200 is AWS's maximum. moto answers one page of at most MaxResults (15 by default) and
        // no NextToken; a template past it is then asked by id.
        .page_size(200)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("ec2:DescribeLaunchTemplateVersions", e))?;
    Ok(versions
        .into_iter()
        .filter_map(|v| Some((v.launch_template_id()?.to_string(), v)))
        .collect())
}

/// The latest version of each template: by id for a single template, else from one listing of
/// every template's latest version. A template the listing missed, or saw at an older version
/// than DescribeLaunchTemplates did, is asked by id.
async fn latest_versions(
    p: &AwsProvider,
    templates: Vec<ec2::LaunchTemplate>,
) -> Result<Vec<Found>, ProviderError> {
    let mut listed = if templates.len() > 1 {
        all_latest_versions(p).await?
    } else {
        HashMap::new()
    };
    try_join_all(templates.into_iter().map(|template| {
        let listed = template
            .launch_template_id()
            .and_then(|id| listed.remove(id))
            .filter(|v| v.version_number() >= template.latest_version_number());
        async move {
            match listed {
                Some(version) => Ok(Found { template, version }),
                None => latest_version(p, template).await,
            }
        }
    }))
    .await
}

/// Current values of SSM parameters (GetParameters, ten names per call, concurrently).
async fn ssm_values(
    p: &AwsProvider,
    names: BTreeSet<String>,
) -> Result<HashMap<String, String>, ProviderError> {
    let names: Vec<String> = names.into_iter().collect();
    let batches = try_join_all(names.chunks(SSM_BATCH).map(|batch| async move {
        p.ssm
            .get_parameters()
            .set_names(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| api_error("ssm:GetParameters", e))
    }))
    .await?;
    Ok(batches
        .iter()
        .flat_map(|out| out.parameters())
        .filter_map(|param| Some((param.name()?.to_string(), param.value()?.to_string())))
        .collect())
}

/// The AMI an image declaration means right now, with its root device name.
async fn resolve_image(
    p: &AwsProvider,
    address: &Address,
    image: &Image,
) -> Result<Ami, ProviderError> {
    let id = image_id(p, address, image).await?;
    let out = p
        .ec2
        .describe_images()
        .image_ids(&id)
        .send()
        .await
        .map_err(|e| api_error("ec2:DescribeImages", e));
    let image = match out {
        Ok(out) => out.images().first().cloned(),
        Err(err) if is_not_found(&err) => None,
        Err(err) => return Err(err),
    };
    let Some(root_device) = image.as_ref().and_then(|i| i.root_device_name()) else {
        return Err(ProviderError::Other(format!(
            "{address}: image: AMI `{id}` does not exist in this region or is not shared with \
             this account (DescribeImages does not list it); use an AMI id from this region, or \
             an SSM parameter such as Image::amazon_linux_2023()"
        )));
    };
    let root_size_gib = image
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .find(|m| m.device_name() == Some(root_device))
        .and_then(|m| m.ebs())
        .and_then(|ebs| ebs.volume_size());
    let root_device = root_device.to_string();
    Ok(Ami {
        id,
        root_device,
        root_size_gib,
    })
}

/// The AMI id an image declaration means right now.
async fn image_id(
    p: &AwsProvider,
    address: &Address,
    image: &Image,
) -> Result<String, ProviderError> {
    match image {
        Image::AmiId(ami) => Ok(ami.clone()),
        Image::SsmParameter(name) => {
            let out = p
                .ssm
                .get_parameter()
                .name(name)
                .send()
                .await
                .map_err(|e| api_error("ssm:GetParameter", e))?;
            out.parameter()
                .and_then(|param| param.value())
                .map(str::to_string)
                .ok_or_else(|| {
                    ProviderError::Other(format!(
                        "{address}: image: SSM parameter `{name}` has no value (expected an AMI id such as ami-0abc...)"
                    ))
                })
        }
    }
}

fn observe(id: String, found: &Found, ssm: &HashMap<String, String>) -> Observed {
    let template = &found.template;
    let data = found.version.launch_template_data();
    let ami = data
        .and_then(|d| d.image_id())
        .unwrap_or_default()
        .to_string();
    // The template was built from an SSM parameter and still holds the AMI it names today.
    let image = match image_source(template) {
        Some(name) if ssm.get(name) == Some(&ami) => Image::SsmParameter(name.to_string()),
        _ => Image::AmiId(ami),
    };
    let model = model_of(data, image);
    let template_id = template.launch_template_id().unwrap_or_default();
    let version = found
        .version
        .version_number()
        .or(template.latest_version_number())
        .unwrap_or_default();
    Observed::new(
        Address::new(Kind::LaunchTemplate, id),
        template_id,
        model.into(),
    )
    .with_attribute(attributes::LATEST_VERSION, version.to_string())
    .with_attribute("name", template.launch_template_name().unwrap_or_default())
}

/// Read templates with their latest versions and the SSM parameters they came from.
async fn observe_all(
    p: &AwsProvider,
    templates: Vec<(String, ec2::LaunchTemplate)>,
) -> Result<Vec<Observed>, ProviderError> {
    let parameters: BTreeSet<String> = templates
        .iter()
        .filter_map(|(_, t)| image_source(t).map(str::to_string))
        .collect();
    let (ids, templates): (Vec<String>, Vec<ec2::LaunchTemplate>) = templates.into_iter().unzip();
    let (found, ssm) =
        futures::try_join!(latest_versions(p, templates), ssm_values(p, parameters))?;
    Ok(ids
        .into_iter()
        .zip(&found)
        .map(|(id, found)| observe(id, found, &ssm))
        .collect())
}

pub(super) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let templates = describe_templates(p, Scope::Stack(&stack.name)).await?;
    let owned = templates
        .into_iter()
        .filter_map(|t| owned_id(&stack.name, tag_pairs(t.tags())).map(|id| (id, t)))
        .collect();
    observe_all(p, owned).await
}

/// One template by id, with `address`'s logical id.
pub(super) async fn read(
    p: &AwsProvider,
    address: &Address,
    template_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let templates = describe_templates(p, Scope::Id(template_id)).await?;
    let templates = templates
        .into_iter()
        .map(|t| (address.id.clone(), t))
        .collect();
    Ok(observe_all(p, templates).await?.pop())
}

fn template_of(desired: &Declared) -> Result<&LaunchTemplate, ProviderError> {
    match &desired.resource {
        Resource::LaunchTemplate(t) => Ok(t),
        other => Err(ProviderError::Other(format!(
            "{}: the launch template module serves ec2_launch_template, not {}",
            desired.address(),
            other.kind()
        ))),
    }
}

/// Ownership tags plus the image-source tag when the image is an SSM parameter.
fn template_tags(ctx: &Context<'_>, id: &str, t: &LaunchTemplate) -> ec2::TagSpecification {
    let spec = tag_spec(ResourceType::LaunchTemplate, ctx.stack, id);
    match &t.image {
        Image::SsmParameter(name) => {
            let mut tags = spec.tags().to_vec();
            tags.push(Tag::builder().key(TAG_IMAGE_SOURCE).value(name).build());
            ec2::TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(tags))
                .build()
        }
        Image::AmiId(_) => spec,
    }
}

/// A template just written: its id and name, the number of the version just made, and the data
/// it was made with.
struct Written<'a> {
    template_id: &'a str,
    name: &'a str,
    version: i64,
    data: &'a RequestLaunchTemplateData,
}

/// What discovery reports for a template whose latest version was just written, without reading
/// it: the tags are those `create` sends and `update` sets, and an image parameter names the AMI
/// it was resolved to.
fn observe_written(
    ctx: &Context<'_>,
    desired: &Declared,
    t: &LaunchTemplate,
    written: &Written<'_>,
) -> Observed {
    let template = ec2::LaunchTemplate::builder()
        .launch_template_id(written.template_id)
        .launch_template_name(written.name)
        .latest_version_number(written.version)
        .set_tags(Some(template_tags(ctx, &desired.id, t).tags().to_vec()))
        .build();
    let version = ec2::LaunchTemplateVersion::builder()
        .launch_template_id(written.template_id)
        .version_number(written.version)
        .launch_template_data(as_reported(written.data))
        .build();
    let ssm = match (&t.image, written.data.image_id()) {
        (Image::SsmParameter(name), Some(ami)) => HashMap::from([(name.clone(), ami.to_string())]),
        _ => HashMap::new(),
    };
    let observed = observe(desired.id.clone(), &Found { template, version }, &ssm);
    relinked(ctx, observed)
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let t = template_of(desired)?;
    let address = desired.address();
    let ami = resolve_image(p, &address, &t.image).await?;
    let data = request_data(ctx, &ami, t)?;
    let name = physical_name(ctx.stack, desired, NAME_MAX);
    tracing::debug!(%address, name, ami = %ami.id, "creating launch template");
    // A role created in this apply: its profile may be refused for a while.
    let (template, adopted) = retry_new_profile(|| {
        create_once(
            4,
            || async {
                Ok(describe_templates(p, Scope::Owned(ctx.stack, &desired.id))
                    .await?
                    .into_iter()
                    .find(|t| t.launch_template_id().is_some())
                    .map(|t| (t, true)))
            },
            || async {
                p.ec2
                    .create_launch_template()
                    .launch_template_name(&name)
                    .client_token(client_token(
                        ctx.stack,
                        &desired.id,
                        &(&desired.resource, &ami.id),
                    ))
                    .launch_template_data(data.clone())
                    .tag_specifications(template_tags(ctx, &desired.id, t))
                    .customize()
                    .config_override(no_retries())
                    .send()
                    .await
                    .map_err(|e| api_error("ec2:CreateLaunchTemplate", e))?
                    .launch_template()
                    .filter(|t| t.launch_template_id().is_some())
                    .map(|t| (t.clone(), false))
                    .ok_or_else(|| {
                        ProviderError::Other(
                            "ec2:CreateLaunchTemplate returned no template id".into(),
                        )
                    })
            },
        )
    })
    .await?;
    let template_id = template.launch_template_id().unwrap_or_default();
    if !adopted {
        return Ok(observe_written(
            ctx,
            desired,
            t,
            &Written {
                template_id,
                name: template.launch_template_name().unwrap_or(&name),
                // A new template has one version.
                version: template.latest_version_number().unwrap_or(1),
                data: &data,
            },
        ));
    }
    let observed = read_found(p, ctx, &address, &template).await?;
    if observed.resource != desired.resource {
        // A template left by an interrupted apply, with other data: bring it up to date.
        tracing::debug!(%address, template_id, "adopting an existing template with different data");
        return update(p, ctx, desired, &observed, &[]).await;
    }
    Ok(observed)
}

/// A template found by its tags, read with its latest version.
async fn read_found(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    template: &ec2::LaunchTemplate,
) -> Result<Observed, ProviderError> {
    let observed = retry_not_found(VISIBLE_WITHIN, || async {
        observe_all(p, vec![(address.id.clone(), template.clone())])
            .await?
            .pop()
            .ok_or_else(|| ProviderError::Api {
                operation: "ec2:DescribeLaunchTemplateVersions".into(),
                code: "InvalidLaunchTemplateId.NotFound".into(),
                message: format!(
                    "{} is not visible",
                    template.launch_template_id().unwrap_or_default()
                ),
            })
    })
    .await?;
    Ok(relinked(ctx, observed))
}

/// Any change is a new version with the full data, made the default.
pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let t = template_of(desired)?;
    let address = desired.address();
    let template_id = prior.physical_id.as_str();
    let ami = resolve_image(p, &address, &t.image).await?;
    let data = request_data(ctx, &ami, t)?;
    let prior_version = prior
        .attributes
        .get(attributes::LATEST_VERSION)
        .cloned()
        .unwrap_or_default();
    tracing::debug!(%address, ?changed, ami = %ami.id, prior_version, "new launch template version");
    let new_default = async {
        let out = retry_new_profile(|| async {
            p.ec2
                .create_launch_template_version()
                .launch_template_id(template_id)
                // The prior version is part of the token: the same data after an out-of-band version
                // must make a new version, not return the old one.
                .client_token(client_token(
                    ctx.stack,
                    &desired.id,
                    &(&desired.resource, &ami.id, &prior_version),
                ))
                .launch_template_data(data.clone())
                .send()
                .await
                .map_err(|e| api_error("ec2:CreateLaunchTemplateVersion", e))
        })
        .await?;
        let version = out.launch_template_version();
        let number = version.and_then(|v| v.version_number()).ok_or_else(|| {
            ProviderError::Other(
                "ec2:CreateLaunchTemplateVersion returned no version number".into(),
            )
        })?;
        p.ec2
            .modify_launch_template()
            .launch_template_id(template_id)
            .default_version(number.to_string())
            .send()
            .await
            .map_err(|e| api_error("ec2:ModifyLaunchTemplate", e))?;
        let name = version.and_then(|v| v.launch_template_name());
        Ok((number, name.map(str::to_string)))
    };
    let ((version, name), ()) =
        futures::try_join!(new_default, set_image_source_tag(p, template_id, &t.image))?;
    let name = name
        .or_else(|| prior.attributes.get("name").cloned())
        .unwrap_or_default();
    Ok(observe_written(
        ctx,
        desired,
        t,
        &Written {
            template_id,
            name: &name,
            version,
            data: &data,
        },
    ))
}

async fn set_image_source_tag(
    p: &AwsProvider,
    template_id: &str,
    image: &Image,
) -> Result<(), ProviderError> {
    match image {
        Image::SsmParameter(name) => p
            .ec2
            .create_tags()
            .resources(template_id)
            .tags(Tag::builder().key(TAG_IMAGE_SOURCE).value(name).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:CreateTags", e)),
        Image::AmiId(_) => p
            .ec2
            .delete_tags()
            .resources(template_id)
            .tags(Tag::builder().key(TAG_IMAGE_SOURCE).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:DeleteTags", e)),
    }
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let template_id = prior.physical_id.as_str();
    match p
        .ec2
        .delete_launch_template()
        .launch_template_id(template_id)
        .send()
        .await
        .map_err(|e| api_error("ec2:DeleteLaunchTemplate", e))
    {
        Err(err) if !is_not_found(&err) => return Err(err),
        _ => {}
    }
    wait_for(
        ctx.progress,
        &prior.address,
        "deleted",
        p.options.wait_timeout,
        || async {
            Ok(
                if describe_templates(p, Scope::Id(template_id))
                    .await?
                    .is_empty()
                {
                    Poll::Ready(())
                } else {
                    Poll::Pending("deleting".to_string())
                },
            )
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::model::{HttpTokens, MetadataOptions, SecurityGroup, Vpc};
    use infra_core::provider::{NoProgress, Resolved};
    use infra_core::Ref;

    fn group(id: &str, physical_id: &str) -> Observed {
        Observed::new(
            Address::new(Kind::SecurityGroup, id),
            physical_id,
            SecurityGroup::new(&Ref::<Vpc>::from_id("main"), "group").into(),
        )
    }

    /// `create` and `update` report what they sent; discovery reads it back through `observe`.
    /// Every field `observe` reads must survive `as_reported`, or a plan after an apply shows a
    /// change.
    #[test]
    fn a_written_template_observes_as_declared() {
        let mut resolved = Resolved::default();
        resolved.insert(group("web", "sg-0aaa"));
        resolved.insert(group("extra", "sg-0bbb"));
        let ctx = Context {
            stack: "lt",
            region: "ap-northeast-2",
            resolved: &resolved,
            progress: &NoProgress,
            no_wait: false,
        };
        let parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
        let templates = [
            LaunchTemplate::new(Image::SsmParameter(parameter.into()), "t3.micro")
                .security_group(&Ref::from_id("web"))
                .security_group(&Ref::from_id("extra"))
                .user_data("#!/bin/bash\necho 'café ✓'\r\n")
                .key_name("deploy")
                .root_volume_size(30)
                .metadata_options(MetadataOptions {
                    http_tokens: HttpTokens::Optional,
                    http_put_response_hop_limit: 2,
                }),
            LaunchTemplate::new(Image::AmiId("ami-0123456789abcdef0".into()), "m5.large")
                .root_volume_type("gp2")
                .root_volume_kms_key("arn:aws:kms:ap-northeast-2:123456789012:alias/ebs"),
            LaunchTemplate::new(Image::AmiId("ami-0123456789abcdef0".into()), "t3.micro")
                .unencrypted_root_volume(),
            LaunchTemplate::new(Image::AmiId("ami-0123456789abcdef0".into()), "t3.micro")
                .security_group(&Ref::from_id("web"))
                .security_group(&Ref::from_id("extra"))
                .public_ip(false),
            LaunchTemplate::new(Image::AmiId("ami-0123456789abcdef0".into()), "t3.micro")
                .public_ip(true),
        ];
        let ami = Ami {
            id: "ami-0123456789abcdef0".into(),
            root_device: "/dev/sda1".into(),
            root_size_gib: None,
        };
        for t in templates {
            let desired = Declared {
                id: "app".into(),
                resource: t.clone().into(),
            };
            let data = request_data(&ctx, &ami, &t).unwrap();
            let observed = observe_written(
                &ctx,
                &desired,
                &t,
                &Written {
                    template_id: "lt-0123",
                    name: "lt-app-abcdef0",
                    version: 3,
                    data: &data,
                },
            );
            assert_eq!(observed.resource, desired.resource);
            assert_eq!(observed.physical_id, "lt-0123");
            assert_eq!(observed.attributes[attributes::LATEST_VERSION], "3");
            assert_eq!(observed.attributes["name"], "lt-app-abcdef0");
        }
    }
}
