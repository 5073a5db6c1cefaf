//! `infra import STACK ADDRESS ID`: adopt an existing AWS resource into a declared logical id
//! by tagging it with the ownership tags, after showing how it differs from the declaration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use infra_cli::render;
use infra_cli::shell::Style;
use infra_core::engine::diff;
use infra_core::provider::{Context, NoProgress, Resolved, TAG_ID, TAG_STACK};
use infra_core::{Address, Provider, ProviderError};

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    /// The declared resource to adopt into, e.g. `ec2_vpc.main`.
    pub address: Address,
    /// The AWS identifier of the existing resource (`vpc-0abc...`, an ARN, a bucket name).
    pub id: String,
    /// Do not ask before tagging.
    #[arg(long)]
    pub auto_approve: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("`{address}` is not declared in stack `{stack}`: declare it in the stack file first")]
    NotDeclared { stack: String, address: Address },
    #[error("stack `{stack}` already owns `{address}` ({physical_id})")]
    AlreadyOwned {
        stack: String,
        address: Address,
        physical_id: String,
    },
    #[error("no {kind} with id `{id}` in {region}")]
    NotFound {
        kind: infra_core::Kind,
        id: String,
        region: String,
    },
    #[error("cannot read `{id}` for {address}")]
    Read {
        address: Address,
        id: String,
        #[source]
        source: ProviderError,
    },
    #[error("failed to tag `{id}` as {address}")]
    Adopt {
        address: Address,
        id: String,
        #[source]
        source: ProviderError,
    },
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    ctx.check(&stack)?;
    let stack = stack.derived();
    let declared = stack
        .get(&args.address)
        .ok_or_else(|| ImportError::NotDeclared {
            stack: stack.name.clone(),
            address: args.address.clone(),
        })?
        .clone();
    super::runtime()?.block_on(async {
        let provider = super::provider(&stack).await?;
        let owned = provider
            .discover(&stack)
            .await
            .map_err(infra_core::engine::EngineError::Provider)?;
        if let Some(existing) = owned.iter().find(|o| o.address == args.address) {
            return Err(ImportError::AlreadyOwned {
                stack: stack.name.clone(),
                address: args.address.clone(),
                physical_id: existing.physical_id.clone(),
            }
            .into());
        }
        let observed = provider
            .read(&stack, &args.address, &args.id)
            .await
            .map_err(|source| ImportError::Read {
                address: args.address.clone(),
                id: args.id.clone(),
                source,
            })?
            .ok_or_else(|| ImportError::NotFound {
                kind: args.address.kind,
                id: args.id.clone(),
                region: stack.region.clone(),
            })?;
        let fields = diff::diff(&diff::redact(&declared).resource, &observed.resource);
        print!("{}", render::field_diff(&args.address, &fields));
        ctx.confirm(
            "import",
            &format!(
                "Tag `{}` with {TAG_STACK}={} and {TAG_ID}={} to adopt it?",
                args.id, stack.name, args.address.id
            ),
            args.auto_approve,
        )?;
        let mut resolved = Resolved::default();
        for o in owned {
            resolved.insert(o);
        }
        let context = Context {
            stack: &stack.name,
            region: &stack.region,
            resolved: &resolved,
            progress: &NoProgress,
            no_wait: false,
        };
        super::locked(&provider, &stack, "import", async {
            provider
                .adopt(&context, &observed)
                .await
                .map_err(|source| ImportError::Adopt {
                    address: args.address.clone(),
                    id: args.id.clone(),
                    source,
                })
                .map_err(Into::into)
        })
        .await?;
        ctx.shell.status(
            "Imported",
            Style::Green,
            format!("{} as {}", args.id, args.address),
        );
        Ok(ExitCode::SUCCESS)
    })
}
