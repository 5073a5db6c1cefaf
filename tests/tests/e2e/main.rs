//! End-to-end tests: the `infra` binary against a private emulator per test, checked with
//! independent describe calls through the raw AWS SDK clients — what AWS reports, not what the
//! tool says it did.
//!
//! Needs moto in `.venv` (`localstack/emulator install`); `scripts/test` does that first.

mod apply;
mod aws;
mod broken;
mod database;
mod destroy;
mod dns;
mod drift;
mod https;
mod identity;
mod launcher;
mod reliability;
mod replace;
mod secrets;
mod single;
mod stack_file;
mod support;
mod wiring;
