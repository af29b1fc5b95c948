//! Git-side code without terminal I/O: remote URLs and their SSH forms (`remote`), the connection through
//! libgit2: key, host check, callbacks, error mapping, ls-remote (`transport`), clone, checkout
//! and submodules (`clone`), the clone's parallel pack indexer (`packindex`), git's path rules
//! (`paths`), and the
//! working-tree state that provenance records (`status`).

pub mod clone;
mod packindex;
pub mod paths;
pub mod proxied;
pub mod remote;
pub mod status;
pub mod transport;
pub mod tuning;
