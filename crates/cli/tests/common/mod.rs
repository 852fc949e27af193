//! Running the `tribute` binary in tests: one-shot commands, and servers
//! (`serve`, `demo`) read line by line until they say what a test waits for,
//! then stopped.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Longest a test waits for a line from a running `tribute` (a debug build
/// seeding the demo on a busy machine included).
const LINE_WAIT: Duration = Duration::from_secs(120);

/// `tribute` with no inherited Tribute settings, colours or database, run in `dir`.
pub fn tribute(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tribute"));
    cmd.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TRIBUTE_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env_remove("NO_COLOR");
    cmd
}

/// A closed port on 127.0.0.1: bound by the system, then released.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    l.local_addr().unwrap().port()
}

/// A running `tribute` whose standard output and error are read as lines.
/// Killed (and reaped) when dropped.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<(Stream, String)>,
    /// Every line read so far, for failure messages.
    pub seen: Vec<(Stream, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tribute");
        let (tx, lines) = mpsc::channel();
        pipe(child.stdout.take().unwrap(), Stream::Out, tx.clone());
        pipe(child.stderr.take().unwrap(), Stream::Err, tx);
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Read lines until one of `stream` satisfies `want`; returns it.
    /// Panics (showing everything read) if the process ends or stays silent.
    pub fn wait_for(&mut self, stream: Stream, want: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(LINE_WAIT) {
                Ok((s, line)) => {
                    self.seen.push((s, line.clone()));
                    if s == stream && want(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no such line ({e}); tribute said: {:#?}", self.seen),
            }
        }
    }

    /// The lines of `stream` read so far.
    pub fn seen(&self, stream: Stream) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.as_str())
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe(from: impl Read + Send + 'static, stream: Stream, to: mpsc::Sender<(Stream, String)>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if to.send((stream, line)).is_err() {
                return;
            }
        }
    });
}
