//! Git-side code without terminal I/O: remote URLs and their SSH forms (`remote`), libgit2's
//! callbacks, clone, checkout and ls-remote (`clone`), git's path rules (`paths`), and the
//! working-tree state that provenance records (`status`).

pub mod clone;
pub mod paths;
pub mod remote;
pub mod status;
pub mod tuning;
