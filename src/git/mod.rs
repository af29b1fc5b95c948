//! Git-side code without terminal I/O: remote URLs (and later the libgit2 callbacks, clone and
//! provenance).

pub mod clone;
pub mod paths;
pub mod remote;
pub mod status;
pub mod tuning;
