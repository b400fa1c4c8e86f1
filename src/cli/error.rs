//! Why a command failed, and the message and exit status that follow.

use crate::svc::httpc::ClientError;
use std::fmt;

/// Exit status of a command the API refused or could not answer.
pub const EXIT_FAIL: i32 = 1;

/// Why a command failed.
#[derive(Debug)]
pub enum CommandError {
    /// The command line is wrong: exit 2 with a hint.
    Usage(String),
    /// The API could not be reached or did not answer in HTTP.
    Client(ClientError),
    /// The API answered with an error status.
    Api(u16, String),
    /// Anything else, one line.
    Other(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Usage(m) | CommandError::Other(m) => write!(f, "{m}"),
            CommandError::Client(e) => write!(f, "{e}"),
            CommandError::Api(401, _) => write!(
                f,
                "not logged in, or the session expired (401): run a command on a terminal to log in, or set OPTICON_TOKEN"
            ),
            CommandError::Api(403, _) => write!(
                f,
                "permission denied (403): this account cannot do that; check --tenant, or ask an administrator"
            ),
            CommandError::Api(status, msg) => write!(f, "{msg} ({status})"),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<ClientError> for CommandError {
    fn from(e: ClientError) -> CommandError {
        CommandError::Client(e)
    }
}

/// A usage error: exit 2 with a hint.
pub(super) fn usage(m: impl Into<String>) -> CommandError {
    CommandError::Usage(m.into())
}
