//! keyclone's integration tests: one binary, real OpenSSH tools and a real sshd, a sealed HOME.

// Test helpers panic on setup failures on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

mod agent;
mod clone;
mod hostile;
mod hostile_files;
mod init;
mod keygen;
mod layers;
mod login;
mod mlflow;
mod packindex;
mod promises;
mod provenance;
mod provenance_filters;
mod provenance_history;
mod provenance_hostile;
mod providers;
mod pty;
mod pubkey;
mod rotate;
mod sealing;
mod signals;
mod ssh_config;
mod trust;
