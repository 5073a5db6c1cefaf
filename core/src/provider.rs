//! The contract between the engine and a cloud: discover what a stack owns, create, update and
//! delete one resource, wait until it is usable.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Declared, FinalSnapshot, Resource};
use crate::refs::{Address, Ref, ResourceKind};
use crate::stack::{attributes, Stack};

/// Tag naming the stack that owns a resource.
pub const TAG_STACK: &str = "infra:stack";
/// Tag holding the resource's logical id in its stack.
pub const TAG_ID: &str = "infra:id";

/// A resource as the cloud reports it, translated back into the model.
///
/// `resource` uses logical ids for references (the provider maps physical ids back through the
/// ownership tags) and is normalized so that an untouched resource compares equal to what was
/// declared: AWS defaults, casing and encodings are undone by the provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub address: Address,
    /// The cloud's identifier: `vpc-0abc`, an ARN, a bucket name.
    pub physical_id: String,
    pub resource: Resource,
    /// Values known only once the resource exists (`arn`, `dns_name`, `endpoint`...); see
    /// [`crate::stack::attributes`]. Never holds a secret value.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// True when deleting the resource loses data: an RDS instance, a bucket with objects.
    #[serde(default)]
    pub holds_data: bool,
}

impl Observed {
    pub fn new(address: Address, physical_id: impl Into<String>, resource: Resource) -> Self {
        let physical_id = physical_id.into();
        let mut attributes = BTreeMap::new();
        attributes.insert(attributes::ID.to_string(), physical_id.clone());
        Observed {
            address,
            physical_id,
            resource,
            attributes,
            holds_data: false,
        }
    }

    pub fn with_attribute(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(name.to_string(), value.into());
        self
    }
}

/// What is known about resources that already exist, for resolving references at apply time.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    by_address: HashMap<Address, Observed>,
}

impl Resolved {
    pub fn insert(&mut self, observed: Observed) {
        self.by_address.insert(observed.address.clone(), observed);
    }

    pub fn remove(&mut self, address: &Address) -> Option<Observed> {
        self.by_address.remove(address)
    }

    pub fn get(&self, address: &Address) -> Option<&Observed> {
        self.by_address.get(address)
    }

    /// The physical id behind a typed handle, or [`ProviderError::Unresolved`].
    pub fn physical_id<T: ResourceKind>(&self, handle: &Ref<T>) -> Result<&str, ProviderError> {
        self.get(&handle.address())
            .map(|o| o.physical_id.as_str())
            .ok_or_else(|| ProviderError::Unresolved(handle.address()))
    }

    /// An attribute of an existing resource.
    pub fn attribute(&self, address: &Address, name: &str) -> Result<&str, ProviderError> {
        let observed = self
            .get(address)
            .ok_or_else(|| ProviderError::Unresolved(address.clone()))?;
        observed
            .attributes
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ProviderError::NoAttribute {
                address: address.clone(),
                attribute: name.to_string(),
            })
    }

    /// The logical id of the owned resource with this physical id, if any.
    pub fn logical_id(&self, physical_id: &str) -> Option<&Address> {
        self.by_address
            .values()
            .find(|o| o.physical_id == physical_id)
            .map(|o| &o.address)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Observed> {
        self.by_address.values()
    }
}

/// Live progress from inside a provider call (long waits, rollouts). The engine forwards it to
/// its hook; the provider itself never prints.
pub trait Progress: Send + Sync {
    /// Still waiting for `address` to reach a state; `status` is the cloud's current one.
    fn waiting(&self, address: &Address, status: &str, elapsed: Duration);

    /// Something about `address` the user has to act on while a call waits (the DNS records
    /// that validate a certificate): a headline, then detail lines. The engine passes each
    /// distinct notice on once per apply, so a provider may repeat it while it waits.
    fn notice(&self, address: &Address, text: &str) {
        let _ = (address, text);
    }
}

/// A [`Progress`] that drops everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn waiting(&self, _: &Address, _: &str, _: Duration) {}
}

/// Everything a provider call may need besides the resource itself.
pub struct Context<'a> {
    pub stack: &'a str,
    pub region: &'a str,
    pub resolved: &'a Resolved,
    pub progress: &'a dyn Progress,
    /// Return as soon as a long operation (an instance refresh) has started.
    pub no_wait: bool,
}

/// How a delete treats data. The engine decides; the provider obeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOptions {
    /// For an RDS instance: take a final snapshot first, or not.
    pub final_snapshot: FinalSnapshot,
    /// For a bucket: delete every object version first (only set after the user allowed it).
    pub empty_bucket: bool,
    /// For an RDS instance with deletion protection: turn it off first (only set after the user
    /// allowed losing data).
    #[serde(default)]
    pub disable_deletion_protection: bool,
}

impl Default for DeleteOptions {
    fn default() -> Self {
        DeleteOptions {
            final_snapshot: FinalSnapshot::Take,
            empty_bucket: false,
            disable_deletion_protection: false,
        }
    }
}

/// A failure talking to the cloud. The engine adds the resource address and the action.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderError {
    /// The service said no: its error code and message, and the operation (`ec2:CreateSubnet`).
    #[error("{operation}: {code}: {message}")]
    Api {
        operation: String,
        code: String,
        message: String,
    },
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    /// The run is being stopped (a first Ctrl-C): the call was not retried, or the wait ended.
    /// Says what was cut short.
    #[error("interrupted: {0}")]
    Interrupted(String),
    #[error("{0} does not exist yet, so nothing can refer to it")]
    Unresolved(Address),
    #[error("{address} exists but reports no `{attribute}`")]
    NoAttribute { address: Address, attribute: String },
    /// Anything else (a file that cannot be read, an unexpected response).
    #[error("{0}")]
    Other(String),
}

/// A cloud the engine can reconcile a stack against.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Read everything the stack owns (by its ownership tags, or by the deterministic names the
    /// stack declares where a type cannot be filtered by tag).
    async fn discover(&self, stack: &Stack) -> Result<Vec<Observed>, ProviderError>;

    /// Create one resource, tagged with [`TAG_STACK`] and [`TAG_ID`] in the create call itself.
    async fn create(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
    ) -> Result<Observed, ProviderError>;

    /// Change `changed` (top-level field names of the resource) in place.
    async fn update(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
        prior: &Observed,
        changed: &[String],
    ) -> Result<Observed, ProviderError>;

    /// Delete one resource and wait until it is gone.
    async fn delete(
        &self,
        ctx: &Context<'_>,
        prior: &Observed,
        options: DeleteOptions,
    ) -> Result<(), ProviderError>;

    /// Wait until a created or updated resource is usable (ALB active, RDS available...).
    async fn wait_ready(
        &self,
        ctx: &Context<'_>,
        observed: &Observed,
    ) -> Result<Observed, ProviderError> {
        let _ = ctx;
        Ok(observed.clone())
    }

    /// Read a resource the stack does not own yet, by physical id (for `infra import`).
    async fn read(
        &self,
        stack: &Stack,
        address: &Address,
        physical_id: &str,
    ) -> Result<Option<Observed>, ProviderError>;

    /// Tag an existing resource with the ownership tags, adopting it into the stack.
    async fn adopt(&self, ctx: &Context<'_>, observed: &Observed) -> Result<(), ProviderError>;
}
