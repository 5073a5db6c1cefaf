//! `infra-core`: the declarative model of an AWS stack, its validation and lints, and the
//! plan/apply engine. No AWS SDK here: the `infra-aws` crate implements [`provider::Provider`].

pub mod engine;
pub mod lock;
pub mod model;
pub mod naming;
pub mod provider;
pub mod refs;
pub mod secret;
pub mod stack;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;

pub use lock::{LockError, LockInfo, StackLock};
pub use model::*;
pub use provider::{Observed, Provider, ProviderError};
pub use refs::{Address, Kind, Ref, ResourceKind};
pub use secret::Sensitive;
pub use stack::{LintSetting, Output, Stack};

/// Everything a stack file needs: `use infra_core::prelude::*;`.
pub mod prelude {
    pub use std::time::Duration;

    pub use crate::model::*;
    pub use crate::refs::{Address, Ref};
    pub use crate::secret::Sensitive;
    pub use crate::stack::Stack;
}
