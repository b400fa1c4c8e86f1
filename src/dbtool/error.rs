//! Why an `opticon-db` command failed, and the exit status that follows.

use crate::db::DbError;
use std::fmt;

/// Exit status for a failed command.
pub const EXIT_FAIL: i32 = 1;

/// Why a command failed.
#[derive(Debug)]
pub enum ToolError {
    /// The command line is wrong; the usage hint follows.
    Usage(String),
    /// The database refused or failed.
    Db(DbError),
}

impl From<DbError> for ToolError {
    fn from(e: DbError) -> ToolError {
        ToolError::Db(e)
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(m) => f.write_str(m),
            ToolError::Db(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ToolError {}

/// A usage error: exit 2 with a hint.
pub(super) fn usage(msg: impl Into<String>) -> ToolError {
    ToolError::Usage(msg.into())
}
