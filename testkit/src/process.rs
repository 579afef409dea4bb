//! A service binary run as a child process, for tests of what only a real process has: signal
//! handling, exit codes, start-up from flags and environment.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running child process; killed when dropped.
pub struct Process {
    child: Child,
    name: String,
    output: Option<Arc<Mutex<String>>>,
}

impl Process {
    /// Starts `binary` with `args` and extra environment `env` (on top of this process's).
    /// Its output goes to the test's output (shown when the test fails).
    pub fn spawn(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let child = Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Process {
            child,
            name: binary.display().to_string(),
            output: None,
        }
    }

    /// Like [`Process::spawn`], and also keeps what it writes to stdout and stderr for
    /// [`Process::wait_for_output`] (each line is still echoed to the test's output).
    pub fn spawn_captured(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    let mut text = output.lock().unwrap_or_else(|p| p.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        Process {
            child,
            name: binary.display().to_string(),
            output: Some(output),
        }
    }

    /// Waits up to `within` for the captured output to contain `needle` and returns the output so
    /// far; panics with the output when it does not (only for [`Process::spawn_captured`]).
    pub async fn wait_for_output(&self, needle: &str, within: Duration) -> String {
        let output = self
            .output
            .as_ref()
            .expect("wait_for_output needs a process started with spawn_captured");
        let deadline = Instant::now() + within;
        loop {
            let text = output.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not write {needle:?} within {within:?}; it wrote:\n{text}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (what Kubernetes sends before it kills a pod).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Kills it with SIGKILL, as a crash or the OOM killer would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it has exited, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("query the child's status")
    }

    /// Waits up to `within` for it to exit; panics if it is still running then.
    pub async fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running {within:?} after it was asked to stop",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port that was free a moment ago (for binaries that bind their own listeners).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
