//! The stack lock: at most one apply, destroy or import of a stack at a time. It lives in the
//! cloud next to the stack (the AWS provider keeps it in SSM Parameter Store), so everyone who
//! can change the stack shares it; read-only commands never take it.
//!
//! A lock left by a run that crashed stays until someone releases it with its id
//! (`infra force-unlock STACK LOCK_ID`), as with Terraform: only a person can tell that the
//! holder is really gone.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::provider::ProviderError;
use crate::stack::Stack;

/// Who holds a stack's lock, and since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random; needed to release someone else's lock.
    pub id: String,
    /// `apply`, `destroy`, `import`.
    pub operation: String,
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The infra version that took it.
    pub version: String,
}

impl LockInfo {
    /// A new lock for `operation` by this process.
    pub fn new(operation: &str) -> LockInfo {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let who = format!("{}@{}", user(), host());
        let pid = std::process::id();
        let mut hash = Sha256::new();
        hash.update(format!("{who}/{pid}/{}", now.as_nanos()));
        LockInfo {
            id: hex::encode(&hash.finalize()[..8]),
            operation: operation.to_string(),
            who,
            pid,
            created: now.as_secs(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// `created` as an RFC 3339 UTC timestamp.
    pub fn since(&self) -> String {
        rfc3339(self.created)
    }
}

fn user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown-host".into())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Why a lock could not be taken or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "stack `{stack}` is locked by {} (`infra {}`, pid {}) since {}; lock id {}",
        holder.who, holder.operation, holder.pid, holder.since(), holder.id
    )]
    Held { stack: String, holder: LockInfo },
    #[error("stack `{stack}` is not locked")]
    NotLocked { stack: String },
    #[error(
        "stack `{stack}` is locked with id {}, not {given} (held by {} since {})",
        holder.id, holder.who, holder.since()
    )]
    WrongId {
        stack: String,
        given: String,
        holder: LockInfo,
    },
    #[error("cannot read or write the lock of stack `{stack}`")]
    Provider {
        stack: String,
        #[source]
        source: ProviderError,
    },
}

/// Where a provider keeps stack locks.
#[async_trait::async_trait]
pub trait StackLock: Send + Sync {
    /// Take the lock, atomically: fails with [`LockError::Held`] when someone holds it.
    async fn lock(&self, stack: &Stack, info: &LockInfo) -> Result<(), LockError>;

    /// Release the lock whose id is `id`: [`LockError::WrongId`] when another lock is held,
    /// [`LockError::NotLocked`] when none is.
    async fn unlock(&self, stack: &Stack, id: &str) -> Result<(), LockError>;

    /// Who holds the lock now, if anyone.
    async fn holder(&self, stack: &Stack) -> Result<Option<LockInfo>, LockError>;
}

/// Run `work` holding the stack's lock, as `infra apply`, `destroy` and `import` do: take it
/// (failing at once with [`LockError::Held`] when someone holds it), run `work`, and release it
/// whatever `work` returned. [`crate::engine::apply`] does not lock by itself; a program that
/// applies a stack others may apply too wraps its plan and apply in this, planning again under
/// the lock so that what runs is what exists now:
///
/// ```no_run
/// use infra_core::engine::{self, ApplyOptions, NoHook, PlanOptions};
/// use infra_core::{Provider, Stack, StackLock};
///
/// async fn apply_locked(
///     provider: &(impl Provider + StackLock),
///     stack: &Stack,
/// ) -> Result<(), Box<dyn std::error::Error>> {
///
///     let result = infra_core::lock::locked(provider, stack, "apply", async {
///         let plan = engine::plan(stack, provider, &PlanOptions::default()).await?;
///         let options = ApplyOptions::default();
///         Ok::<_, Box<dyn std::error::Error>>(
///             engine::apply(&plan, stack, provider, &options, &NoHook).await?,
///         )
///     })
///     .await?;
///     assert!(result.is_success(), "failed: {:?}", result.failed);
///     Ok(())
/// }
/// ```
///
/// `operation` names the run in the lock (`stack \`x\` is locked by dana@build-7 (\`infra
/// apply\`, ...)`). A process killed while holding the lock leaves it; `infra force-unlock`
/// releases it. When `work` succeeds but the lock cannot be released, the error is the lock's.
pub async fn locked<L, T, E>(
    lock: &L,
    stack: &Stack,
    operation: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    L: StackLock + ?Sized,
    E: From<LockError>,
{
    let info = LockInfo::new(operation);
    lock.lock(stack, &info).await?;
    let result = work.await;
    let released = lock.unlock(stack, &info.id).await;
    match (result, released) {
        (Err(error), _) => Err(error),
        (Ok(_), Err(error)) => Err(error.into()),
        (Ok(value), Ok(())) => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_998_896), "2026-11-30T00:34:56Z");
    }

    #[test]
    fn held_lock_names_holder_operation_time_and_id() {
        let holder = LockInfo {
            id: "0123456789abcdef".into(),
            operation: "apply".into(),
            who: "dana@build-7".into(),
            pid: 4242,
            created: 1_795_998_896,
            version: "0.1.0".into(),
        };
        let error = LockError::Held {
            stack: "closet".into(),
            holder,
        };
        assert_eq!(
            error.to_string(),
            "stack `closet` is locked by dana@build-7 (`infra apply`, pid 4242) since \
             2026-11-30T00:34:56Z; lock id 0123456789abcdef"
        );
    }

    #[test]
    fn new_locks_have_distinct_ids() {
        let a = LockInfo::new("apply");
        let b = LockInfo::new("apply");
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 16);
        assert_eq!(a.pid, std::process::id());
    }
}
