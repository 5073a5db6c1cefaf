//! End-to-end tests: the `infra` binary against a private emulator per test, checked with
//! independent describe calls through the raw AWS SDK clients — what AWS reports, not what the
//! tool says it did.
//!
//! Needs moto in `.venv` (`localstack/emulator install`); `scripts/test` does that first.

mod apply;
mod broken;
mod database;
mod destroy;
mod dns;
mod drift;
mod https;
mod identity;
mod launcher;
mod logs;
mod reliability;
mod replace;
mod secrets;
mod single;
mod stack_file;
mod wiring;

// The AWS readers and the `infra` runner, from the infra-tests library.
use infra_tests::{aws, support};
