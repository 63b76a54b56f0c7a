//! A child process of an end-to-end test (the registrar under test, or a user agent), shared by
//! the tests that run real binaries.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process whose standard output and error go to one log file (appended to, so several
/// runs can share it), killed by PID (SIGKILL to this PID only) when dropped, also when the test
/// panics.
pub struct Process {
    pub child: Child,
    log: PathBuf,
}

#[allow(dead_code)] // Each test file uses its own subset.
impl Process {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Process {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("create the log");
        let err = out.try_clone().expect("share the log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        Process { child, log }
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics with the log if the process has exited (a server must never crash on its input).
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{:?} exited with {status}:\n{}",
                self.child.id(),
                self.log()
            );
        }
    }

    /// Waits until the log contains `expected`; panics with the log if the process exits first
    /// or `within` passes.
    #[allow(clippy::disallowed_methods)] // Bounding the wait needs the clock.
    pub fn wait_for_log(&mut self, expected: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(expected) {
            if let Some(status) = self.exited() {
                panic!(
                    "exited with {status} before logging {expected:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "did not log {expected:?} within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and the exit collected.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
