//! An in-memory cloud for tests: [`FakeProvider`] keeps resources, gives them fake physical ids
//! (`fake-vpc-1`), applies creates, updates and deletes to its state, and records every call.
//! Failures and out-of-band changes can be injected. Enabled by the `testing` feature, so users
//! can test their own stacks with it too.
//!
//! Like AWS, it refuses to delete a resource something else still points at, to create a bucket
//! whose name is taken or a subnet whose CIDR is taken in its VPC, and to create or update a
//! resource whose references do not resolve to something that exists.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::engine::Graph;
use crate::lock::{LockError, LockInfo, StackLock};
use crate::model::{DbInstance, Declared, MasterPassword, Resource};
use crate::provider::{Context, DeleteOptions, Observed, Provider, ProviderError};
use crate::refs::Address;
use crate::secret::Sensitive;
use crate::stack::{attributes, Stack};

/// The provider operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Discover,
    Create,
    Update,
    Delete,
    WaitReady,
    Read,
    Adopt,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Discover => "discover",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::WaitReady => "wait_ready",
            Op::Read => "read",
            Op::Adopt => "adopt",
        })
    }
}

/// One recorded call. `started` and `finished` are ticks of one logical clock shared by all
/// calls, so `a.finished < b.started` means `a` was done before `b` began.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub op: Op,
    /// `None` for discover.
    pub address: Option<Address>,
    /// The physical id acted on (the new one for a create).
    pub physical_id: Option<String>,
    /// For an update: the fields the engine asked to change.
    pub changed: Vec<String>,
    pub delete_options: Option<DeleteOptions>,
    pub started: u64,
    pub finished: u64,
    pub succeeded: bool,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Some(address) => write!(f, "{} {address}", self.op),
            None => write!(f, "{}", self.op),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    observed: Observed,
    /// The physical ids this resource points at, by the address they resolved from.
    links: Vec<(Address, String)>,
}

#[derive(Default)]
struct State {
    /// By physical id: during a replacement two resources share an address.
    resources: BTreeMap<String, Entry>,
    counter: u64,
    clock: u64,
    calls: Vec<Call>,
    failures: Vec<(Op, Address, ProviderError)>,
    in_flight: usize,
    max_in_flight: usize,
    /// Stack locks, by stack name.
    locks: BTreeMap<String, LockInfo>,
}

/// A stateful in-memory [`Provider`].
#[derive(Default)]
pub struct FakeProvider {
    state: Mutex<State>,
    latency: Mutex<Duration>,
}

fn api(operation: &str, code: &str, message: String) -> ProviderError {
    ProviderError::Api {
        operation: format!("fake:{operation}"),
        code: code.into(),
        message,
    }
}

fn kind_slug(address: &Address) -> String {
    let name = address.kind.as_str();
    name.split_once('_')
        .map_or(name, |(_, rest)| rest)
        .replace('_', "-")
}

/// What the cloud keeps of a declared resource: never a secret value.
fn stored(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    if let Resource::DbInstance(DbInstance {
        master_password: p @ MasterPassword::Plain(_),
        ..
    }) = &mut r
    {
        *p = MasterPassword::Plain(Sensitive::redacted());
    }
    r
}

impl FakeProvider {
    pub fn new() -> Self {
        FakeProvider::default()
    }

    /// A fake holding `stack` as if it had just been applied.
    pub fn applied(stack: &Stack) -> Self {
        let fake = FakeProvider::new();
        // As the engine does: what the stack derives is part of what exists.
        let stack = &stack.derived();
        {
            let mut state = fake.lock();
            let order = Graph::from_stack(stack)
                .topo_order()
                .unwrap_or_else(|_| stack.resources.iter().map(Declared::address).collect());
            let mut by_address: BTreeMap<Address, String> = BTreeMap::new();
            for address in order {
                let Some(declared) = stack.get(&address) else {
                    continue;
                };
                // As apply does: placeholders filled from what exists.
                let resource = declared.resource.filled(|value| {
                    by_address
                        .get(value.resource())
                        .and_then(|id| state.resources.get(id))
                        .and_then(|entry| entry.observed.attributes.get(value.attribute()))
                        .cloned()
                        .unwrap_or_default()
                });
                let filled = Declared {
                    id: declared.id.clone(),
                    resource,
                };
                let links = filled
                    .resource
                    .references()
                    .into_iter()
                    .filter_map(|a| by_address.get(&a).map(|p| (a, p.clone())))
                    .collect();
                let observed = state.make(&filled, links);
                by_address.insert(address, observed.physical_id.clone());
            }
        }
        fake
    }

    /// Every call so far, in the order they started.
    pub fn calls(&self) -> Vec<Call> {
        let mut calls = self.lock().calls.clone();
        calls.sort_by_key(|c| c.started);
        calls
    }

    /// Calls other than discover, read and wait_ready, as `create ec2_vpc.main` strings.
    pub fn changes(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| matches!(c.op, Op::Create | Op::Update | Op::Delete))
            .map(Call::to_string)
            .collect()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Most calls that were in flight at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Make every call take this long (default: none, but calls still yield to the runtime).
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap_or_else(|e| e.into_inner()) = latency;
    }

    /// The next `op` on `address` fails with `error` (once).
    pub fn fail_on(&self, op: Op, address: &Address, error: ProviderError) {
        self.lock().failures.push((op, address.clone(), error));
    }

    /// Change a resource behind the engine's back (drift).
    pub fn mutate(&self, address: &Address, change: impl FnOnce(&mut Resource)) {
        let mut state = self.lock();
        if let Some(entry) = state
            .resources
            .values_mut()
            .find(|e| &e.observed.address == address)
        {
            change(&mut entry.observed.resource);
        }
    }

    /// Delete a resource behind the engine's back.
    pub fn remove(&self, address: &Address) {
        self.lock()
            .resources
            .retain(|_, e| &e.observed.address != address);
    }

    /// Mark whether a resource holds data (a bucket with objects).
    pub fn set_holds_data(&self, address: &Address, holds_data: bool) {
        let mut state = self.lock();
        for entry in state
            .resources
            .values_mut()
            .filter(|e| &e.observed.address == address)
        {
            entry.observed.holds_data = holds_data;
        }
    }

    /// What exists, sorted by address then physical id.
    pub fn resources(&self) -> Vec<Observed> {
        let mut out: Vec<Observed> = self
            .lock()
            .resources
            .values()
            .map(|e| e.observed.clone())
            .collect();
        out.sort_by(|a, b| (&a.address, &a.physical_id).cmp(&(&b.address, &b.physical_id)));
        out
    }

    /// The resource at `address` (the first, should a replacement have left two).
    pub fn get(&self, address: &Address) -> Option<Observed> {
        self.resources().into_iter().find(|o| &o.address == address)
    }

    /// The physical ids a resource points at, by the address each resolved from.
    pub fn links(&self, address: &Address) -> Vec<(Address, String)> {
        self.lock()
            .resources
            .values()
            .find(|e| &e.observed.address == address)
            .map(|e| e.links.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record the start of a call; the injected failure for it, if any.
    async fn begin(&self, op: Op, address: Option<&Address>) -> (u64, Option<ProviderError>) {
        let (started, failure) = {
            let mut state = self.lock();
            state.clock += 1;
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            let failure = address.and_then(|a| {
                let pos = state
                    .failures
                    .iter()
                    .position(|(o, fa, _)| *o == op && fa == a)?;
                Some(state.failures.remove(pos).2)
            });
            (state.clock, failure)
        };
        let latency = *self.latency.lock().unwrap_or_else(|e| e.into_inner());
        if latency.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(latency).await;
        }
        (started, failure)
    }

    fn finish<T>(&self, call: Call, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
        let mut state = self.lock();
        state.clock += 1;
        state.in_flight -= 1;
        let finished = state.clock;
        state.calls.push(Call {
            finished,
            succeeded: result.is_ok(),
            ..call
        });
        result
    }

    fn call(op: Op, address: Option<&Address>, started: u64) -> Call {
        Call {
            op,
            address: address.cloned(),
            physical_id: None,
            changed: Vec::new(),
            delete_options: None,
            started,
            finished: 0,
            succeeded: false,
        }
    }
}

impl State {
    fn make(&mut self, declared: &Declared, links: Vec<(Address, String)>) -> Observed {
        let address = declared.address();
        self.counter += 1;
        let physical_id = match &declared.resource {
            Resource::Bucket(b) => b.name.clone(),
            _ => format!("fake-{}-{}", kind_slug(&address), self.counter),
        };
        let mut observed = Observed::new(
            address.clone(),
            physical_id.clone(),
            stored(&declared.resource),
        )
        .with_attribute(
            attributes::ARN,
            format!("arn:fake:{}:{physical_id}", address.kind),
        );
        match &declared.resource {
            Resource::LoadBalancer(_) => {
                observed = observed
                    .with_attribute(attributes::DNS_NAME, format!("{physical_id}.elb.fake"));
            }
            Resource::DbInstance(db) => {
                observed = observed
                    .with_attribute(attributes::ENDPOINT, format!("{physical_id}.rds.fake"))
                    .with_attribute(attributes::PORT, db.engine.default_port().to_string())
                    .with_attribute(attributes::RESOURCE_ID, format!("db-{physical_id}"))
                    .with_attribute(
                        attributes::DBUSER_ARN_PREFIX,
                        format!("arn:fake:rds-db:dbuser:db-{physical_id}"),
                    );
                if db.master_password == MasterPassword::Managed {
                    observed = observed.with_attribute(
                        attributes::MASTER_USER_SECRET_ARN,
                        format!("arn:fake:secretsmanager:{physical_id}"),
                    );
                }
                observed.holds_data = true;
            }
            _ => {}
        }
        self.resources.insert(
            physical_id,
            Entry {
                observed: observed.clone(),
                links,
            },
        );
        observed
    }

    /// Resolve the references of `declared` through the engine's view, checking that each
    /// physical id exists here.
    fn links(
        &self,
        ctx: &Context<'_>,
        declared: &Declared,
    ) -> Result<Vec<(Address, String)>, ProviderError> {
        declared
            .resource
            .references()
            .into_iter()
            .map(|a| {
                let id = ctx
                    .resolved
                    .get(&a)
                    .map(|o| o.physical_id.clone())
                    .ok_or_else(|| ProviderError::Unresolved(a.clone()))?;
                if !self.resources.contains_key(&id) {
                    return Err(api(
                        "Resolve",
                        "NotFound",
                        format!("{a} resolved to `{id}`, which does not exist"),
                    ));
                }
                Ok((a, id))
            })
            .collect()
    }

    fn conflict(&self, declared: &Declared, links: &[(Address, String)]) -> Option<ProviderError> {
        let vpc_of = |links: &[(Address, String)]| links.first().map(|(_, id)| id.clone());
        self.resources
            .values()
            .find_map(|e| match (&declared.resource, &e.observed.resource) {
                (Resource::Bucket(new), Resource::Bucket(old)) if new.name == old.name => {
                    Some(api(
                        "CreateBucket",
                        "BucketAlreadyOwnedByYou",
                        format!("bucket `{}` exists", new.name),
                    ))
                }
                (Resource::Subnet(new), Resource::Subnet(old))
                    if new.cidr == old.cidr && vpc_of(links) == vpc_of(&e.links) =>
                {
                    Some(api(
                        "CreateSubnet",
                        "InvalidSubnet.Conflict",
                        format!("the CIDR '{}' conflicts with another subnet", new.cidr),
                    ))
                }
                _ => None,
            })
    }
}

#[async_trait::async_trait]
impl Provider for FakeProvider {
    async fn discover(&self, stack: &Stack) -> Result<Vec<Observed>, ProviderError> {
        let _ = stack;
        let (started, _) = self.begin(Op::Discover, None).await;
        let found = self.resources();
        self.finish(Self::call(Op::Discover, None, started), Ok(found))
    }

    async fn create(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
    ) -> Result<Observed, ProviderError> {
        let address = desired.address();
        let (started, failure) = self.begin(Op::Create, Some(&address)).await;
        let mut call = Self::call(Op::Create, Some(&address), started);
        let result = match failure {
            Some(error) => Err(error),
            None => {
                let mut state = self.lock();
                state
                    .links(ctx, desired)
                    .and_then(|links| match state.conflict(desired, &links) {
                        Some(error) => Err(error),
                        None => Ok(state.make(desired, links)),
                    })
            }
        };
        call.physical_id = result.as_ref().ok().map(|o| o.physical_id.clone());
        self.finish(call, result)
    }

    async fn update(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
        prior: &Observed,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        let address = desired.address();
        let (started, failure) = self.begin(Op::Update, Some(&address)).await;
        let mut call = Self::call(Op::Update, Some(&address), started);
        call.physical_id = Some(prior.physical_id.clone());
        call.changed = changed.to_vec();
        let result = match failure {
            Some(error) => Err(error),
            None => {
                let mut state = self.lock();
                state.links(ctx, desired).and_then(|links| {
                    let entry = state.resources.get_mut(&prior.physical_id).ok_or_else(|| {
                        api(
                            "Update",
                            "NotFound",
                            format!("{address} (`{}`) does not exist", prior.physical_id),
                        )
                    })?;
                    entry.observed.resource = stored(&desired.resource);
                    entry.links = links;
                    Ok(entry.observed.clone())
                })
            }
        };
        self.finish(call, result)
    }

    async fn delete(
        &self,
        ctx: &Context<'_>,
        prior: &Observed,
        options: DeleteOptions,
    ) -> Result<(), ProviderError> {
        let _ = ctx;
        let address = &prior.address;
        let (started, failure) = self.begin(Op::Delete, Some(address)).await;
        let mut call = Self::call(Op::Delete, Some(address), started);
        call.physical_id = Some(prior.physical_id.clone());
        call.delete_options = Some(options);
        let result = match failure {
            Some(error) => Err(error),
            None => {
                let mut state = self.lock();
                let user = state
                    .resources
                    .values()
                    .find(|e| e.links.iter().any(|(_, id)| *id == prior.physical_id))
                    .map(|e| e.observed.address.clone());
                match (user, state.resources.contains_key(&prior.physical_id)) {
                    (_, false) => Err(api(
                        "Delete",
                        "NotFound",
                        format!("{address} (`{}`) does not exist", prior.physical_id),
                    )),
                    (Some(user), true) => Err(api(
                        "Delete",
                        "DependencyViolation",
                        format!(
                            "{address} (`{}`) is still used by {user}",
                            prior.physical_id
                        ),
                    )),
                    (None, true) => {
                        state.resources.remove(&prior.physical_id);
                        Ok(())
                    }
                }
            }
        };
        self.finish(call, result)
    }

    async fn wait_ready(
        &self,
        ctx: &Context<'_>,
        observed: &Observed,
    ) -> Result<Observed, ProviderError> {
        let address = &observed.address;
        let (started, failure) = self.begin(Op::WaitReady, Some(address)).await;
        ctx.progress.waiting(address, "ready", Duration::ZERO);
        let mut call = Self::call(Op::WaitReady, Some(address), started);
        call.physical_id = Some(observed.physical_id.clone());
        let result = match failure {
            Some(error) => Err(error),
            None => Ok(self
                .lock()
                .resources
                .get(&observed.physical_id)
                .map(|e| e.observed.clone())
                .unwrap_or_else(|| observed.clone())),
        };
        self.finish(call, result)
    }

    async fn read(
        &self,
        stack: &Stack,
        address: &Address,
        physical_id: &str,
    ) -> Result<Option<Observed>, ProviderError> {
        let _ = stack;
        let (started, failure) = self.begin(Op::Read, Some(address)).await;
        let result = match failure {
            Some(error) => Err(error),
            None => Ok(self
                .lock()
                .resources
                .get(physical_id)
                .map(|e| e.observed.clone())),
        };
        self.finish(Self::call(Op::Read, Some(address), started), result)
    }

    async fn adopt(&self, ctx: &Context<'_>, observed: &Observed) -> Result<(), ProviderError> {
        let _ = ctx;
        let (started, failure) = self.begin(Op::Adopt, Some(&observed.address)).await;
        let result = match failure {
            Some(error) => Err(error),
            None => {
                let mut state = self.lock();
                state.resources.insert(
                    observed.physical_id.clone(),
                    Entry {
                        observed: observed.clone(),
                        links: Vec::new(),
                    },
                );
                Ok(())
            }
        };
        self.finish(
            Self::call(Op::Adopt, Some(&observed.address), started),
            result,
        )
    }
}

#[async_trait::async_trait]
impl StackLock for FakeProvider {
    async fn lock(&self, stack: &Stack, info: &LockInfo) -> Result<(), LockError> {
        let mut state = self.lock();
        if let Some(holder) = state.locks.get(&stack.name) {
            return Err(LockError::Held {
                stack: stack.name.clone(),
                holder: holder.clone(),
            });
        }
        state.locks.insert(stack.name.clone(), info.clone());
        Ok(())
    }

    async fn unlock(&self, stack: &Stack, id: &str) -> Result<(), LockError> {
        let mut state = self.lock();
        match state.locks.get(&stack.name) {
            None => Err(LockError::NotLocked {
                stack: stack.name.clone(),
            }),
            Some(holder) if holder.id != id => Err(LockError::WrongId {
                stack: stack.name.clone(),
                given: id.to_string(),
                holder: holder.clone(),
            }),
            Some(_) => {
                state.locks.remove(&stack.name);
                Ok(())
            }
        }
    }

    async fn holder(&self, stack: &Stack) -> Result<Option<LockInfo>, LockError> {
        Ok(self.lock().locks.get(&stack.name).cloned())
    }
}
