//! Tests of the `infra` binary: one test binary, a module per area.

mod emulator;
mod offline;
mod support;
