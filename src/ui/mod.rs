//! The only code that prints, prompts or draws: messages go to stderr, data (public keys, JSON,
//! fingerprints) to stdout. Output reads well without colour; a broken pipe is not an error.

pub mod clipboard;
pub mod progress;
pub mod prompt;
pub mod signals;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};
use prompt::Prompter;

/// How much the user asked to hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// A writer into a shared buffer: lets tests read what a command printed.
#[derive(Debug, Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn contents(&self) -> String {
        let buf = self
            .0
            .lock()
            .expect("the buffer lock is never poisoned: writers do not panic");
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("the buffer lock is never poisoned: writers do not panic")
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Output writers, the prompter, and the user's choices about output.
pub struct Ui {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    prompter: Box<dyn Prompter>,
    interactive: bool,
    json: bool,
    verbosity: Verbosity,
    /// Set when stdout was closed by the reader (`| head`): stop writing, exit quietly.
    broken_pipe: bool,
    captured: Option<(SharedBuf, SharedBuf)>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("interactive", &self.interactive)
            .field("json", &self.json)
            .field("verbosity", &self.verbosity)
            .finish_non_exhaustive()
    }
}

impl Ui {
    pub fn new(
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
        prompter: Box<dyn Prompter>,
        interactive: bool,
        json: bool,
        verbosity: Verbosity,
    ) -> Self {
        Ui {
            out,
            err,
            prompter,
            interactive,
            json,
            verbosity,
            broken_pipe: false,
            captured: None,
        }
    }

    /// A UI whose stdout and stderr are kept in memory (for tests of library code).
    pub fn captured(prompter: Box<dyn Prompter>, interactive: bool) -> Self {
        let (out, err) = (SharedBuf::default(), SharedBuf::default());
        let mut ui = Ui::new(
            Box::new(out.clone()),
            Box::new(err.clone()),
            prompter,
            interactive,
            false,
            Verbosity::Normal,
        );
        ui.captured = Some((out, err));
        ui
    }

    pub fn captured_stdout(&self) -> String {
        self.captured
            .as_ref()
            .map(|(o, _)| o.contents())
            .unwrap_or_default()
    }

    pub fn captured_stderr(&self) -> String {
        self.captured
            .as_ref()
            .map(|(_, e)| e.contents())
            .unwrap_or_default()
    }

    /// Whether questions may be asked (a terminal, and `--non-interactive` not given).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    pub fn json(&self) -> bool {
        self.json
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    pub fn broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    pub fn prompter(&mut self) -> &mut dyn Prompter {
        self.prompter.as_mut()
    }

    /// One line of data on stdout.
    pub fn data(&mut self, line: &str) -> Result<()> {
        if self.broken_pipe {
            return Ok(());
        }
        let res = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
        match res {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.broken_pipe = true;
                Ok(())
            }
            Err(e) => {
                Err(Error::new(ErrorKind::Io, "could not write to standard output").with_source(e))
            }
        }
    }

    /// A JSON value on stdout, pretty-printed.
    pub fn json_value(&mut self, value: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::internal("could not encode JSON").with_source(e))?;
        self.data(&text)
    }

    /// A message for people, on stderr; hidden by `-q` and by `--json`.
    pub fn info(&mut self, msg: &str) {
        if self.verbosity > Verbosity::Quiet && !self.json {
            self.write_err(msg);
        }
    }

    /// Extra detail, shown with `-v` only.
    pub fn detail(&mut self, msg: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.write_err(msg);
        }
    }

    /// A warning: always shown on stderr (also with `-q` and `--json`).
    pub fn warn(&mut self, msg: &str) {
        self.write_err(&format!("warning: {msg}"));
    }

    /// Prints an error: the message, its causes, then the hints after a blank line.
    pub fn error(&mut self, e: &Error) {
        let mut text = format!("error: {}", e.message());
        for cause in e.causes() {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        if !e.hints().is_empty() {
            text.push('\n');
            for h in e.hints() {
                text.push_str(&format!("\nhint: {h}"));
            }
        }
        self.write_err(&text);
    }

    fn write_err(&mut self, msg: &str) {
        // stderr failures cannot be reported anywhere; ignore them.
        let _ = writeln!(self.err, "{msg}");
        let _ = self.err.flush();
    }

    /// Raw bytes to stderr (escape sequences such as OSC 52), no newline added.
    pub fn raw_err(&mut self, bytes: &[u8]) {
        let _ = self.err.write_all(bytes);
        let _ = self.err.flush();
    }
}
