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

/// For [`Statement::with`]: a stack file depends on `infra-core` alone, and writes
/// `infra_core::serde_json::json!({...})`.
pub use serde_json;

pub use lock::{LockError, LockInfo, StackLock};
pub use model::*;
pub use provider::{Observed, Provider, ProviderError};
pub use refs::{Address, Kind, Ref, ResourceKind};
pub use secret::Sensitive;
pub use stack::{LintSetting, Output, Stack};

/// Everything a stack file needs: `use infra_core::prelude::*;`.
///
/// That includes [`Output`], the type of an attribute (`db.endpoint()`), so a helper in a stack
/// file can take or return one:
///
/// ```
/// use infra_core::prelude::*;
///
/// fn database_host(db: &Ref<DbInstance>) -> Output {
///     db.endpoint()
/// }
///
/// pub fn stack() -> Stack {
///     let mut s = Stack::new("demo", "ap-northeast-2");
///     let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
///     let a = s.add("a", Subnet::private(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
///     let c = s.add("c", Subnet::private(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
///     let subnets = s.add("db", DbSubnetGroup::new("database", &[&a, &c]));
///     let db = s.add("db", DbInstance::mysql("8.0", "db.t3.micro", &subnets));
///     s.output("db_host", database_host(&db));
///     s
/// }
/// # assert!(!infra_core::validate::validate(&stack()).has_errors());
/// ```
pub mod prelude {
    pub use std::time::Duration;

    pub use crate::model::*;
    pub use crate::refs::{Address, Ref};
    pub use crate::secret::Sensitive;
    pub use crate::stack::{Output, Stack};
}
