//! A plan saved by `infra plan --out FILE`, applied later by `infra apply FILE`.
//!
//! It records where the stack came from instead of the stack itself: a stack's JSON holds its
//! secret values, a saved plan must not. Applying it loads the stack again, plans again and
//! refuses when the new plan's fingerprint differs (the stack file or what exists in AWS
//! changed since).

use std::path::{Path, PathBuf};

use infra_core::engine::{Plan, PlanOptions, PLAN_FORMAT_VERSION};
use serde::{Deserialize, Serialize};

/// Version of the saved-plan file format.
pub const SAVED_PLAN_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub saved_plan_version: u32,
    /// Absolute path of the stack file the plan was made from.
    pub stack_file: PathBuf,
    /// The keys of the `--var` options it was made with, sorted. Not their values, which may
    /// be secrets: applying the plan takes the same `--var` options again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_keys: Vec<String>,
    /// The options it was planned with (mode, data-loss permission).
    pub options: PlanOptions,
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read saved plan `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a plan saved by `infra plan --out`", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "saved plan `{}` has format version {found}; this infra reads version {SAVED_PLAN_VERSION}",
        path.display()
    )]
    Version { path: PathBuf, found: u32 },
    #[error(
        "the plan in `{}` has format version {found}; this infra reads version {PLAN_FORMAT_VERSION}",
        path.display()
    )]
    PlanVersion { path: PathBuf, found: u32 },
    #[error("cannot write the plan to `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SavedPlan {
    pub fn new(
        stack_file: PathBuf,
        var_keys: Vec<String>,
        options: PlanOptions,
        plan: Plan,
    ) -> SavedPlan {
        SavedPlan {
            saved_plan_version: SAVED_PLAN_VERSION,
            stack_file,
            var_keys,
            options,
            plan,
        }
    }

    /// Whether `json` looks like a saved plan rather than a stack (both are `.json` files).
    pub fn is_saved_plan(json: &str) -> bool {
        #[derive(Deserialize)]
        struct Header {
            saved_plan_version: Option<u32>,
        }
        serde_json::from_str::<Header>(json).is_ok_and(|h| h.saved_plan_version.is_some())
    }

    pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<SavedPlan, SavedPlanError> {
        #[derive(Deserialize)]
        struct Header {
            saved_plan_version: u32,
        }
        let parse_error = |source| SavedPlanError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let header: Header = serde_json::from_str(text).map_err(parse_error)?;
        if header.saved_plan_version != SAVED_PLAN_VERSION {
            return Err(SavedPlanError::Version {
                path: path.to_path_buf(),
                found: header.saved_plan_version,
            });
        }
        let saved: SavedPlan = serde_json::from_str(text).map_err(parse_error)?;
        if saved.plan.format_version != PLAN_FORMAT_VERSION {
            return Err(SavedPlanError::PlanVersion {
                path: path.to_path_buf(),
                found: saved.plan.format_version,
            });
        }
        Ok(saved)
    }

    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let json = serde_json::to_string_pretty(self).expect("a saved plan always serializes");
        std::fs::write(path, json + "\n").map_err(|source| SavedPlanError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}
