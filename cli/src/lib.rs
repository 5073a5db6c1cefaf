//! `infra-cli`: the pieces of the `infra` command that embedders can reuse: loading stack files
//! (compiling `.rs` ones through a cache), saved plans, and the terminal rendering of progress,
//! errors, outputs and field diffs. Planning and applying are the engine's
//! (`infra_core::engine`); the binary only parses arguments, renders and prompts.

pub mod interrupt;
pub mod progress;
pub mod render;
pub mod saved_plan;
pub mod shell;
pub mod stack_file;

pub use saved_plan::SavedPlan;
pub use stack_file::{LoadError, LoadReporter, Loader};
