//! SSM Parameter Store: the stack lock.

pub(crate) mod lock;
