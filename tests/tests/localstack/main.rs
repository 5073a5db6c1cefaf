//! The LocalStack leg: the `infra` binary against LocalStack's free edition (the community
//! runtime in host mode, no Docker, no account), one LocalStack per test, checked through the
//! AWS API with the raw SDK clients like the moto end-to-end tests. It applies
//! `stacks/preview.rs`, which uses only what that edition serves: EC2, S3, ACM, SSM (the lock
//! and the public AMI parameter), IAM and Route53. ELBv2, Auto Scaling and RDS are not in it.
//!
//! Needs LocalStack in `.venv-localstack` (`localstack/emulator install localstack-host`);
//! `scripts/test` does that first.

mod lifecycle;
mod lock;

use infra_tests::{aws, support};

const STACK: &str = "closet-preview";
const BUCKET: &str = "closet-preview-uploads-apne2";
const STACK_FILE: &str = "preview.rs";
