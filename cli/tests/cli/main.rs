//! Tests of the `infra` binary: one test binary, a module per area.

mod emulator;
mod first_call;
mod offline;
mod support;
