//! A launch template's data: the model as the RequestLaunchTemplateData a write sends, and the
//! data AWS reports back as the model.

use aws_sdk_ec2::types::{
    self as ec2, InstanceType, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, RequestLaunchTemplateData,
    VolumeType,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use infra_core::model::{HttpTokens, Image, LaunchTemplate, MetadataOptions, RootVolume};
use infra_core::provider::Context;
use infra_core::{ProviderError, Ref};

/// The model of a template's data as DescribeLaunchTemplateVersions reports it, with the image
/// it was built from.
pub(super) fn model_of(
    data: Option<&ec2::ResponseLaunchTemplateData>,
    image: Image,
) -> LaunchTemplate {
    let user_data = data
        .and_then(|d| d.user_data())
        .filter(|u| !u.is_empty())
        .map(|encoded| {
            match BASE64
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(text) => text,
                // Not base64 of UTF-8 text: report it as is, which shows as a diff.
                None => encoded.to_string(),
            }
        });
    // With a public-IP choice, infra writes the groups into the one network interface.
    let interface = data.and_then(|d| d.network_interfaces().first());
    let mut security_groups: Vec<Ref<_>> = data
        .map(|d| d.security_group_ids())
        .unwrap_or_default()
        .iter()
        .chain(interface.map(|i| i.groups()).unwrap_or_default())
        .map(Ref::from_id)
        .collect();
    security_groups.sort();
    let metadata = data.and_then(|d| d.metadata_options());
    let metadata_options = MetadataOptions {
        http_tokens: match metadata.and_then(|m| m.http_tokens()) {
            Some(LaunchTemplateHttpTokensState::Required) => HttpTokens::Required,
            _ => HttpTokens::Optional,
        },
        http_put_response_hop_limit: metadata
            .and_then(|m| m.http_put_response_hop_limit())
            .and_then(|h| u8::try_from(h).ok())
            .unwrap_or(1),
    };
    // infra writes one mapping, on the AMI's root device.
    let root_volume = data
        .map(|d| d.block_device_mappings())
        .unwrap_or_default()
        .iter()
        .find_map(|m| m.ebs())
        .map_or_else(RootVolume::as_in_image, |ebs| RootVolume {
            size_gib: ebs.volume_size().and_then(|size| u32::try_from(size).ok()),
            volume_type: ebs.volume_type().map_or("gp2", |t| t.as_str()).to_string(),
            encrypted: ebs.encrypted().unwrap_or(false),
            kms_key_id: ebs.kms_key_id().map(str::to_string),
        });
    LaunchTemplate {
        image,
        instance_type: data
            .and_then(|d| d.instance_type())
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        user_data,
        // AWS holds the filled text; the placeholders are the stack's.
        user_data_vars: Default::default(),
        security_groups,
        metadata_options,
        key_name: data.and_then(|d| d.key_name()).map(str::to_string),
        root_volume,
        instance_role: data
            .and_then(|d| d.iam_instance_profile())
            .and_then(profile_name)
            .map(Ref::from_id),
        public_ip: interface.and_then(|i| i.associate_public_ip_address()),
    }
}

/// An AMI, the name of its root device (`/dev/xvda` for Amazon Linux, `/dev/sda1` for Ubuntu)
/// and that device's size, from DescribeImages.
pub(super) struct Ami {
    pub id: String,
    pub root_device: String,
    pub root_size_gib: Option<i32>,
}

/// The profile's name: as sent (`infra` sends the name, which is also its role's name), or the
/// last part of its ARN (`arn:aws:iam::123:instance-profile/PATH/NAME`).
fn profile_name(profile: &ec2::LaunchTemplateIamInstanceProfileSpecification) -> Option<String> {
    profile.name().map(str::to_string).or_else(|| {
        profile
            .arn()
            .and_then(|arn| arn.rsplit('/').next())
            .map(str::to_string)
    })
}

/// The request data for a template, with the AMI (and its root device name) resolved and
/// security groups as ids.
pub(super) fn request_data(
    ctx: &Context<'_>,
    ami: &Ami,
    t: &LaunchTemplate,
) -> Result<RequestLaunchTemplateData, ProviderError> {
    let mut groups = Vec::new();
    for group in &t.security_groups {
        groups.push(ctx.resolved.physical_id(group)?.to_string());
    }
    let metadata = LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
        .http_tokens(match t.metadata_options.http_tokens {
            HttpTokens::Required => LaunchTemplateHttpTokensState::Required,
            HttpTokens::Optional => LaunchTemplateHttpTokensState::Optional,
        })
        .http_put_response_hop_limit(i32::from(t.metadata_options.http_put_response_hop_limit))
        .build();
    let volume = &t.root_volume;
    // On the AMI's root device: a mapping on any other name adds a second volume and leaves
    // the root one as the image made it (unencrypted).
    let root = LaunchTemplateBlockDeviceMappingRequest::builder()
        .device_name(&ami.root_device)
        .ebs(
            LaunchTemplateEbsBlockDeviceRequest::builder()
                // AWS takes the image's size when none is given; moto insists on one.
                .set_volume_size(
                    volume
                        .size_gib
                        .map(|s| i32::try_from(s).unwrap_or(i32::MAX))
                        .or(ami.root_size_gib),
                )
                .volume_type(VolumeType::from(volume.volume_type.as_str()))
                .encrypted(volume.encrypted)
                .set_kms_key_id(volume.kms_key_id.clone())
                .delete_on_termination(true)
                .build(),
        )
        .build();
    let profile = match &t.instance_role {
        Some(role) => Some(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name(ctx.resolved.physical_id(role)?)
                .build(),
        ),
        None => None,
    };
    let (groups, interface) = match t.public_ip {
        None => (Some(groups), None),
        // AWS refuses security groups both on the instance and on an interface: with an
        // interface (which the public-IP choice needs), they go into it.
        Some(public) => (
            None,
            Some(vec![
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .associate_public_ip_address(public)
                    .delete_on_termination(true)
                    .set_groups(Some(groups))
                    .build(),
            ]),
        ),
    };
    Ok(RequestLaunchTemplateData::builder()
        .image_id(&ami.id)
        .set_iam_instance_profile(profile)
        .instance_type(InstanceType::from(t.instance_type.as_str()))
        .set_user_data(t.user_data.as_ref().map(|text| BASE64.encode(text)))
        .set_security_group_ids(groups)
        .set_network_interfaces(interface)
        .metadata_options(metadata)
        .set_key_name(t.key_name.clone())
        .block_device_mappings(root)
        .build())
}

/// Template data as DescribeLaunchTemplateVersions reports what [`request_data`] sent: the fields
/// `observe` reads, which AWS keeps as given.
pub(super) fn as_reported(sent: &RequestLaunchTemplateData) -> ec2::ResponseLaunchTemplateData {
    let metadata = sent.metadata_options().map(|m| {
        ec2::LaunchTemplateInstanceMetadataOptions::builder()
            .set_http_endpoint(m.http_endpoint().cloned())
            .set_http_tokens(m.http_tokens().cloned())
            .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
            .build()
    });
    let mappings = sent
        .block_device_mappings()
        .iter()
        .map(|m| {
            let ebs = m.ebs().map(|ebs| {
                ec2::LaunchTemplateEbsBlockDevice::builder()
                    .set_volume_size(ebs.volume_size())
                    .set_volume_type(ebs.volume_type().cloned())
                    .set_delete_on_termination(ebs.delete_on_termination())
                    .set_encrypted(ebs.encrypted())
                    .set_kms_key_id(ebs.kms_key_id().map(str::to_string))
                    .build()
            });
            ec2::LaunchTemplateBlockDeviceMapping::builder()
                .set_device_name(m.device_name().map(str::to_string))
                .set_ebs(ebs)
                .build()
        })
        .collect();
    let interfaces = sent
        .network_interfaces()
        .iter()
        .map(|i| {
            ec2::LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
                .set_device_index(i.device_index())
                .set_associate_public_ip_address(i.associate_public_ip_address())
                .set_delete_on_termination(i.delete_on_termination())
                .set_groups(Some(i.groups().to_vec()))
                .build()
        })
        .collect();
    ec2::ResponseLaunchTemplateData::builder()
        .set_image_id(sent.image_id().map(str::to_string))
        .set_instance_type(sent.instance_type().cloned())
        .set_user_data(sent.user_data().map(str::to_string))
        .set_security_group_ids(Some(sent.security_group_ids().to_vec()))
        .set_network_interfaces(Some(interfaces))
        .set_key_name(sent.key_name().map(str::to_string))
        .set_iam_instance_profile(sent.iam_instance_profile().map(|p| {
            ec2::LaunchTemplateIamInstanceProfileSpecification::builder()
                .set_name(p.name().map(str::to_string))
                .set_arn(p.arn().map(str::to_string))
                .build()
        }))
        .set_metadata_options(metadata)
        .set_block_device_mappings(Some(mappings))
        .build()
}
