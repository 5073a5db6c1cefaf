//! `infra graph STACK`: the dependency graph as Graphviz DOT or Mermaid.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use infra_core::engine::Graph;

use super::Ctx;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Graphviz: `infra graph stack.rs | dot -Tsvg > graph.svg`.
    Dot,
    /// Mermaid, for Markdown on GitHub and GitLab.
    Mermaid,
}

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    let graph = Graph::from_stack(&stack);
    // A cycle makes the stack unappliable; say so, but still draw the graph that shows it.
    if let Err(cycle) = graph.topo_order() {
        ctx.shell.warn(cycle);
    }
    let text = match args.format {
        Format::Dot => graph.to_dot(),
        Format::Mermaid => graph.to_mermaid(),
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
