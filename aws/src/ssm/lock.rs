//! The stack lock in SSM Parameter Store: `/infra/locks/STACK` in the stack's region, holding
//! the holder as JSON. PutParameter without Overwrite fails with ParameterAlreadyExists when
//! the parameter exists, which makes taking the lock one atomic call; it needs
//! `ssm:PutParameter`, `ssm:GetParameter` and `ssm:DeleteParameter` on `/infra/locks/*`.

use async_trait::async_trait;
use aws_sdk_ssm::types::ParameterType;
use infra_core::{LockError, LockInfo, ProviderError, Stack, StackLock};

use crate::support::{api_error, error_code};
use crate::AwsProvider;

/// The parameter holding a stack's lock.
pub fn lock_parameter(stack: &str) -> String {
    format!("/infra/locks/{stack}")
}

fn failed(stack: &Stack, source: ProviderError) -> LockError {
    LockError::Provider {
        stack: stack.name.clone(),
        source,
    }
}

#[async_trait]
impl StackLock for AwsProvider {
    async fn lock(&self, stack: &Stack, info: &LockInfo) -> Result<(), LockError> {
        let value = serde_json::to_string(info)
            .map_err(|e| failed(stack, ProviderError::Other(e.to_string())))?;
        // The holder may release between our failed put and our read: try again once.
        for _ in 0..2 {
            let put = self
                .ssm
                .put_parameter()
                .name(lock_parameter(&stack.name))
                .description(format!("infra lock of stack {}", stack.name))
                .r#type(ParameterType::String)
                .value(&value)
                .overwrite(false)
                .send()
                .await
                .map_err(|e| api_error("ssm:PutParameter", e));
            match put {
                Ok(_) => return Ok(()),
                Err(e) if error_code(&e) == Some("ParameterAlreadyExists") => {
                    // The SDK retries a put whose answer was lost: then the holder is us.
                    if let Some(holder) = self.holder(stack).await? {
                        if holder.id == info.id {
                            return Ok(());
                        }
                        return Err(LockError::Held {
                            stack: stack.name.clone(),
                            holder,
                        });
                    }
                }
                Err(e) => return Err(failed(stack, e)),
            }
        }
        Err(failed(
            stack,
            ProviderError::Other(format!(
                "{} kept appearing and vanishing",
                lock_parameter(&stack.name)
            )),
        ))
    }

    async fn unlock(&self, stack: &Stack, id: &str) -> Result<(), LockError> {
        let Some(holder) = self.holder(stack).await? else {
            return Err(LockError::NotLocked {
                stack: stack.name.clone(),
            });
        };
        if holder.id != id {
            return Err(LockError::WrongId {
                stack: stack.name.clone(),
                given: id.to_string(),
                holder,
            });
        }
        match self
            .ssm
            .delete_parameter()
            .name(lock_parameter(&stack.name))
            .send()
            .await
            .map_err(|e| api_error("ssm:DeleteParameter", e))
        {
            // We held it a moment ago: not found means a retried delete whose answer was lost.
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("ParameterNotFound") => Ok(()),
            Err(e) => Err(failed(stack, e)),
        }
    }

    async fn holder(&self, stack: &Stack) -> Result<Option<LockInfo>, LockError> {
        let name = lock_parameter(&stack.name);
        let got = self
            .ssm
            .get_parameter()
            .name(&name)
            .send()
            .await
            .map_err(|e| api_error("ssm:GetParameter", e));
        let output = match got {
            Ok(output) => output,
            Err(e) if error_code(&e) == Some("ParameterNotFound") => return Ok(None),
            Err(e) => return Err(failed(stack, e)),
        };
        let value = output
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default();
        serde_json::from_str(value).map(Some).map_err(|e| {
            failed(
                stack,
                ProviderError::Other(format!("{name} does not hold an infra lock: {e}")),
            )
        })
    }
}
