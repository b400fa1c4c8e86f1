//! External probes: shell commands whose output becomes meters, run
//! through [`crate::svc::exec`] (stdin from `/dev/null`, `OPT_<KEY>`
//! variables, a deadline, bounded output).

use super::builtin::Readings;
use crate::model::json::meters_from_json;
use std::time::Duration;

pub use crate::svc::exec::{
    run_command, run_command_with_input, ExecError, Finished, DEFAULT_TIMEOUT, MAX_OUTPUT,
};

/// Run an `exec` probe: its output, JSON as a probe prints it, becomes
/// meters. The exit status is ignored, as in the original.
pub fn run_exec(
    call: &str,
    options: &[(String, String)],
    timeout: Duration,
    out: &mut Readings,
) -> Result<(), ExecError> {
    let done = run_command(call, options, timeout)?;
    let meters = meters_from_json(&done.stdout).map_err(ExecError::BadOutput)?;
    out.extend(meters.into_iter().map(|(n, v)| (n.to_string(), v)));
    Ok(())
}

/// The verdict of a `nagios` probe, from its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0.
    Ok,
    /// Exit 1: the probe id goes into `chkwarn`.
    Warning,
    /// Any other status: the probe id goes into `chkalert`.
    Alert,
}

/// Run a `nagios` plugin and judge it by its exit status.
pub fn run_nagios(
    call: &str,
    options: &[(String, String)],
    timeout: Duration,
) -> Result<(Verdict, String), ExecError> {
    let done = run_command(call, options, timeout)?;
    let first = done.stdout.lines().next().unwrap_or_default().to_string();
    let verdict = match done.code {
        0 => Verdict::Ok,
        1 => Verdict::Warning,
        _ => Verdict::Alert,
    };
    Ok((verdict, first))
}
