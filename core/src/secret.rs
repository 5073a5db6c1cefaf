//! Values that must never be shown.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string. `Debug` and `Display` print `(sensitive)`; only [`Sensitive::expose`] gives
/// the value. It serializes as its value so a stack's JSON stays complete; plans and every
/// rendering replace it with [`Sensitive::REDACTED`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    /// What every rendering shows instead of the value.
    pub const REDACTED: &'static str = "(sensitive)";

    /// A secret holding `value` (`MasterPassword::Plain(Sensitive::new(..))`).
    pub fn new(value: impl Into<String>) -> Self {
        Sensitive(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The same secret with its value replaced by the placeholder.
    pub fn redacted() -> Self {
        Sensitive(Self::REDACTED.into())
    }

    /// Whether this is the placeholder rather than a value (a redacted stack read back).
    pub fn is_redacted(&self) -> bool {
        self.0 == Self::REDACTED
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}
