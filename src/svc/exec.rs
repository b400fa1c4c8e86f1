//! Running a shell command under a deadline: the agent's probes and the
//! collector's notification commands.
//!
//! A command runs under `/bin/sh -c` in its own process group, with stdin
//! from `/dev/null`, stderr discarded, the agent's environment plus one
//! `OPT_<KEY>` variable per string option (the original replaced the
//! environment and lost PATH), and a deadline after which the whole group
//! is killed. At most [`MAX_OUTPUT`] bytes of stdout are read.

use crate::model::json::JsonError;
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most stdout read from a command.
pub const MAX_OUTPUT: usize = 16 * 1024;
/// Default deadline of a command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a command produced nothing usable.
#[derive(Debug)]
pub enum ExecError {
    /// The shell could not be started.
    Spawn(std::io::Error),
    /// Still running at the deadline; killed.
    Timeout(Duration),
    /// Printed more than [`MAX_OUTPUT`] bytes; killed.
    TooMuchOutput,
    /// The output is not JSON the meter model can hold.
    BadOutput(JsonError),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Spawn(e) => write!(f, "cannot run /bin/sh: {e}"),
            ExecError::Timeout(d) => write!(f, "killed after {} s without finishing", d.as_secs()),
            ExecError::TooMuchOutput => write!(f, "printed more than {MAX_OUTPUT} bytes; killed"),
            ExecError::BadOutput(e) => write!(f, "output is not usable JSON: {e}"),
        }
    }
}

impl std::error::Error for ExecError {}

/// What a finished command left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit status (128 + signal when killed by one).
    pub code: i32,
    /// Standard output (at most [`MAX_OUTPUT`] bytes).
    pub stdout: String,
}

/// Why a command `call` exited with `code`, for the log: the shell's 127
/// and 126 name the program that is missing or not executable (an agent
/// whose probe scripts were not installed says which file), anything
/// else is its exit status.
pub fn describe_exit(call: &str, code: i32) -> String {
    let program = call.split_whitespace().next().unwrap_or(call);
    match code {
        127 => format!("{program}: not found (exit 127)"),
        126 => format!("{program}: not executable (exit 126)"),
        _ => format!("{call} exited {code}"),
    }
}

/// Run `call` under `/bin/sh -c` with `OPT_<KEY>` variables for
/// `options`, killing it (and its children) at `timeout`.
pub fn run_command(
    call: &str,
    options: &[(String, String)],
    timeout: Duration,
) -> Result<Finished, ExecError> {
    run_command_with_input(call, options, timeout, None)
}

/// [`run_command`], with `input` written to the command's standard input
/// (for notification commands, which read a JSON document).
pub fn run_command_with_input(
    call: &str,
    options: &[(String, String)],
    timeout: Duration,
    input: Option<Vec<u8>>,
) -> Result<Finished, ExecError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(call)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    for (k, v) in options {
        cmd.env(format!("OPT_{}", k.to_ascii_uppercase()), v);
    }
    let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        // A command that does not read its input must not block us.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &data);
        });
    }
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| ExecError::Spawn(std::io::Error::other("no stdout pipe")))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let result = (&mut stdout)
            .take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut buf);
        let _ = tx.send(result.map(|_| buf));
    });
    let deadline = Instant::now() + timeout;
    let kill = |child: &mut std::process::Child| {
        // SAFETY: signals the process group the child leads.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
    };
    let output = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Ok(buf)) => break buf,
            Ok(Err(e)) => {
                kill(&mut child);
                return Err(ExecError::Spawn(e));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break Vec::new(),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() >= deadline {
                    kill(&mut child);
                    return Err(ExecError::Timeout(timeout));
                }
            }
        }
    };
    if output.len() > MAX_OUTPUT {
        kill(&mut child);
        return Err(ExecError::TooMuchOutput);
    }
    // Output is complete (EOF); wait for the exit, still bounded.
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                kill(&mut child);
                return Err(ExecError::Timeout(timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(ExecError::Spawn(e)),
        }
    };
    let code = status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    });
    Ok(Finished {
        code,
        stdout: String::from_utf8_lossy(&output).into_owned(),
    })
}
