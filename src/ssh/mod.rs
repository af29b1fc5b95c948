//! SSH material without any terminal I/O: key generation and encoding, reading keys and
//! fingerprints. (known_hosts, provider pins and `~/.ssh/config` blocks come here too.)

pub mod agent;
pub mod agent_process;
pub mod config;
pub mod kdf;
pub mod key;
pub mod known_hosts;
pub mod probe;
pub mod proxy;
pub mod trust;
pub mod user_config;
