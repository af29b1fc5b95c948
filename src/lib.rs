//! keyclone: from a fresh machine to a verified clone of a private Git repository over SSH.
//!
//! The binary is a thin shell around [`cli::run`]. Library code never prints or prompts:
//! [`ui`] does, and commands receive it through [`context::Ctx`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod endpoint;
pub mod env;
pub mod error;
pub mod files;
pub mod git;
pub mod http;
pub mod interrupt;
pub mod key_type;
pub mod lfs;
pub mod names;
pub mod ops;
pub mod passphrase;
pub mod provenance;
pub mod providers;
pub mod secrets;
pub mod ssh;
pub mod templates;
pub mod ui;
pub mod workspace;

pub use error::{Error, ErrorKind, Result};
