//! keyclone's integration tests: one binary, real OpenSSH tools and a real sshd, a sealed HOME.

// Test helpers panic on setup failures on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

mod agent;
mod agent_stall;
mod api_bitbucket;
mod api_init;
mod api_tokens;
mod api_upload;
mod clone;
mod hostile;
mod hostile_files;
mod init;
mod keygen;
mod layers;
mod lfs;
mod lfs_hostile;
mod lfs_limits;
mod lfs_transfer;
mod login;
mod mlflow;
mod own_agent;
mod packaging;
mod packindex;
mod promises;
mod provenance;
mod provenance_filters;
mod provenance_history;
mod provenance_hostile;
mod providers;
mod proxy;
mod pty;
mod pubkey;
mod rotate;
mod sealing;
mod sign;
mod signals;
mod ssh_config;
mod ssh_routes;
mod trust;
mod trust_refresh;
mod user_ssh_config;
mod wheel;
