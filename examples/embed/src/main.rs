//! Embedding infra: describe a stack in code, plan it, and apply it under the stack's lock.
//!
//! Against the local emulator: `localstack/emulator start && eval "$(localstack/emulator env)"`,
//! then `cargo run --manifest-path examples/embed/Cargo.toml` (add `destroy` to remove it again).

use infra_aws::{AwsOptions, AwsProvider};
use infra_core::engine::{self, ApplyOptions, NoHook, PlanMode, PlanOptions};
use infra_core::prelude::*;

fn stack() -> Stack {
    let mut stack = Stack::new("embedded", "ap-northeast-2");
    let vpc = stack.add("main", Vpc::new("10.0.0.0/16"));
    stack.add(
        "public_a",
        Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"),
    );
    stack.output("vpc_id", vpc.vpc_id());
    stack
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = stack();
    let mode = match std::env::args().nth(1).as_deref() {
        Some("destroy") => PlanMode::Destroy,
        _ => PlanMode::Normal,
    };
    let options = PlanOptions {
        mode,
        ..PlanOptions::default()
    };
    let provider = AwsProvider::connect(&stack.region, AwsOptions::from_env()).await;
    // engine::apply does not lock: `locked` takes the stack's lock (shared with `infra apply`)
    // and releases it afterwards. Planning under the lock applies what exists now.
    let result = infra_core::lock::locked(&provider, &stack, "apply", async {
        let plan = engine::plan(&stack, &provider, &options).await?;
        print!("{}", engine::render_plan(&plan, false));
        let options = ApplyOptions::default();
        let applied = engine::apply(&plan, &stack, &provider, &options, &NoHook).await?;
        Ok::<_, Box<dyn std::error::Error>>(applied)
    })
    .await?;
    if !result.is_success() {
        return Err(format!("failed: {:?}", result.failed).into());
    }
    Ok(())
}
