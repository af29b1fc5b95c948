//! Questions to the user behind one trait: dialoguer on a terminal, a scripted list of answers
//! in tests, and a refusal when there is no terminal (the caller names the flag to use).

use std::collections::VecDeque;
use std::io;

use crate::error::{Error, ErrorKind, Result};
use crate::passphrase::Passphrase;

/// Everything keyclone may ask.
pub trait Prompter: Send {
    /// Free text, with an optional default.
    fn input(&mut self, prompt: &str, default: Option<&str>) -> Result<String>;
    /// A masked answer (one entry; confirmation is the caller's job).
    fn password(&mut self, prompt: &str) -> Result<Passphrase>;
    /// Yes or no.
    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool>;
    /// One item of a list; returns its index.
    fn select(&mut self, prompt: &str, items: &[String], default: usize) -> Result<usize>;
}

fn map_dialoguer(e: dialoguer::Error) -> Error {
    match e {
        dialoguer::Error::IO(io) if io.kind() == io::ErrorKind::Interrupted => Error::interrupted(),
        dialoguer::Error::IO(io) => {
            Error::new(ErrorKind::Io, "could not read the answer from the terminal").with_source(io)
        }
    }
}

/// Prompts on the terminal (stderr / /dev/tty) with dialoguer.
#[derive(Debug, Default)]
pub struct DialoguerPrompter;

impl Prompter for DialoguerPrompter {
    fn input(&mut self, prompt: &str, default: Option<&str>) -> Result<String> {
        let mut q = dialoguer::Input::<String>::new().with_prompt(prompt);
        match default {
            // "Press Enter": an empty answer is the answer, and there is nothing to show.
            Some("") => q = q.allow_empty(true),
            Some(d) => q = q.default(d.to_owned()),
            None => {}
        }
        q.interact_text().map_err(map_dialoguer)
    }

    fn password(&mut self, prompt: &str) -> Result<Passphrase> {
        dialoguer::Password::new()
            .with_prompt(prompt)
            .allow_empty_password(true)
            .interact()
            .map(Passphrase::new)
            .map_err(map_dialoguer)
    }

    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool> {
        dialoguer::Confirm::new()
            .with_prompt(prompt)
            .default(default)
            .interact()
            .map_err(map_dialoguer)
    }

    fn select(&mut self, prompt: &str, items: &[String], default: usize) -> Result<usize> {
        dialoguer::Select::new()
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact()
            .map_err(map_dialoguer)
    }
}

/// Used when there is no terminal: every question is an error. Callers check
/// [`crate::ui::Ui::interactive`] first and name the flag; this is the safety net.
#[derive(Debug, Default)]
pub struct NoPrompter;

impl NoPrompter {
    fn refuse(prompt: &str) -> Error {
        Error::new(
            ErrorKind::NeedsInput,
            format!("keyclone needs an answer (\"{prompt}\") and there is no terminal to ask on"),
        )
        .hint("run it in a terminal, or give the answer with a flag (see `keyclone help`)")
    }
}

impl Prompter for NoPrompter {
    fn input(&mut self, prompt: &str, _: Option<&str>) -> Result<String> {
        Err(Self::refuse(prompt))
    }
    fn password(&mut self, prompt: &str) -> Result<Passphrase> {
        Err(Self::refuse(prompt))
    }
    fn confirm(&mut self, prompt: &str, _: bool) -> Result<bool> {
        Err(Self::refuse(prompt))
    }
    fn select(&mut self, prompt: &str, _: &[String], _: usize) -> Result<usize> {
        Err(Self::refuse(prompt))
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    Text(String),
    Password(String),
    Confirm(bool),
    Select(usize),
    /// The user presses Ctrl-C at this question.
    Interrupt,
}

/// Answers questions from a list, in order; a question of the wrong kind, or one too many, is
/// an internal error naming the question, so a test fails loudly.
#[derive(Debug, Default)]
pub struct ScriptedPrompter {
    answers: VecDeque<Answer>,
    /// The prompts asked so far, in order.
    pub asked: Vec<String>,
}

impl ScriptedPrompter {
    pub fn new(answers: Vec<Answer>) -> Self {
        ScriptedPrompter {
            answers: answers.into(),
            asked: Vec::new(),
        }
    }

    fn next(&mut self, prompt: &str) -> Result<Answer> {
        self.asked.push(prompt.to_owned());
        match self.answers.pop_front() {
            Some(Answer::Interrupt) => Err(Error::interrupted()),
            Some(a) => Ok(a),
            None => Err(Error::internal(format!(
                "scripted prompter: no answer left for \"{prompt}\""
            ))),
        }
    }

    fn mismatch(prompt: &str, a: &Answer) -> Error {
        Error::internal(format!(
            "scripted prompter: \"{prompt}\" got the wrong kind of answer {a:?}"
        ))
    }
}

impl Prompter for ScriptedPrompter {
    fn input(&mut self, prompt: &str, default: Option<&str>) -> Result<String> {
        match self.next(prompt)? {
            Answer::Text(t) if t.is_empty() => Ok(default.unwrap_or_default().to_owned()),
            Answer::Text(t) => Ok(t),
            a => Err(Self::mismatch(prompt, &a)),
        }
    }
    fn password(&mut self, prompt: &str) -> Result<Passphrase> {
        match self.next(prompt)? {
            Answer::Password(p) => Ok(Passphrase::new(p)),
            a => Err(Self::mismatch(prompt, &a)),
        }
    }
    fn confirm(&mut self, prompt: &str, _: bool) -> Result<bool> {
        match self.next(prompt)? {
            Answer::Confirm(b) => Ok(b),
            a => Err(Self::mismatch(prompt, &a)),
        }
    }
    fn select(&mut self, prompt: &str, items: &[String], _: usize) -> Result<usize> {
        match self.next(prompt)? {
            Answer::Select(i) if i < items.len() => Ok(i),
            a => Err(Self::mismatch(prompt, &a)),
        }
    }
}
