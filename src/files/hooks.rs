//! The test hooks of the file writers (debug builds only): `KEYCLONE_TEST_KILL_AT` kills the
//! process, or sends it a signal, at a named point of a write.

use std::path::Path;
use std::sync::OnceLock;

use crate::interrupt::{self};

static KILL_AT: OnceLock<String> = OnceLock::new();

/// Tests only, debug builds only: names the point (`rename:FILE NAME`) where the process kills
/// itself with SIGKILL, as `KEYCLONE_TEST_KILL_AT` says. Release builds ignore it.
pub fn set_test_kill_point(point: Option<&str>) {
    if cfg!(debug_assertions)
        && let Some(p) = point
    {
        let _ = KILL_AT.set(p.to_owned());
    }
}

/// Dies with SIGKILL if the test kill point is `point` (debug builds only).
pub fn kill_point(point: &str) {
    signal_point(point, false);
}

/// The test hook at `point` (debug builds only): `KEYCLONE_TEST_KILL_AT=POINT` dies with
/// SIGKILL there; `POINT@INT`, `POINT@TERM` or `POINT@HUP` delivers that signal there, as a
/// Ctrl-C, `kill` or a closed terminal would, and lets keyclone's handler answer it.
fn signal_point(point: &str, inside_critical: bool) {
    use nix::sys::signal::Signal;
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(spec) = KILL_AT.get() else { return };
    let Some(rest) = spec.strip_prefix(point) else {
        return;
    };
    let signal = match rest {
        "" => Signal::SIGKILL,
        "@INT" => Signal::SIGINT,
        "@TERM" => Signal::SIGTERM,
        "@HUP" => Signal::SIGHUP,
        _ => return,
    };
    if signal == Signal::SIGKILL {
        let _ = nix::sys::signal::raise(signal);
    } else {
        interrupt::raise_for_test(signal, inside_critical);
    }
}

fn file_name_of(dest: &Path) -> String {
    dest.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Test points around a rename (inside the critical section).
pub(super) fn kill_before_rename(dest: &Path) {
    if cfg!(debug_assertions) && KILL_AT.get().is_some() {
        signal_point(&format!("rename:{}", file_name_of(dest)), true);
    }
}

/// Test point after a temporary file is written, before the critical section.
pub(super) fn kill_after_temp(dest: &Path) {
    if cfg!(debug_assertions) && KILL_AT.get().is_some() {
        signal_point(&format!("write:{}", file_name_of(dest)), false);
    }
}
