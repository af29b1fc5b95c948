//! What a Ctrl-C (or SIGTERM/SIGHUP) may and may not interrupt. Temporary files that keyclone
//! is writing are registered here so the signal handler (installed by the binary, see
//! `ui::signals`) can remove them; a [`CriticalSection`] makes the handler wait until a group
//! of renames (e.g. back up the old key, install the new one) has finished, so an interrupt
//! never leaves a half-done change.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static TEMP_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CRITICAL: Mutex<()> = Mutex::new(());

fn temps() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding this lock cannot corrupt a Vec of paths: recover the data.
    TEMP_FILES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a temporary file or directory to delete if the process is interrupted.
pub fn track(path: &Path) {
    temps().push(path.to_owned());
}

/// Forgets a temporary file (it was renamed into place or deleted).
pub fn untrack(path: &Path) {
    temps().retain(|p| p != path);
}

/// Deletes every registered temporary file or directory; called by the signal handler.
pub fn remove_tracked() {
    for p in temps().drain(..) {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => remove_busy_dir(&p),
            Ok(_) => {
                let _ = std::fs::remove_file(&p);
            }
            Err(_) => {}
        }
    }
}

/// Removes a folder that another thread (libgit2's clone) may still be writing into: until it
/// stays gone, bounded. `remove_dir_all` alone can fail when a file appears while it runs.
fn remove_busy_dir(p: &Path) {
    for _ in 0..50 {
        let _ = std::fs::remove_dir_all(p);
        if std::fs::symlink_metadata(p).is_err() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// While held, an interrupt waits: the changes made inside complete as a group.
#[derive(Debug)]
pub struct CriticalSection {
    guard: Option<MutexGuard<'static, ()>>,
}

/// Enters the critical section (blocks while the signal handler is cleaning up).
pub fn critical() -> CriticalSection {
    CriticalSection {
        guard: Some(CRITICAL.lock().unwrap_or_else(|p| p.into_inner())),
    }
}

impl Drop for CriticalSection {
    fn drop(&mut self) {
        drop(self.guard.take());
        if TEST_SIGNAL_RAISED.load(std::sync::atomic::Ordering::SeqCst) {
            // Tests only: a signal was raised inside the section; let the handler, which was
            // waiting for it, finish the process instead of racing on with the next step.
            await_handler();
        }
    }
}

/// Set by [`raise_for_test`] (debug builds, `KEYCLONE_TEST_KILL_AT=POINT@SIGNAL`).
static TEST_SIGNAL_RAISED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Tests only: delivers `signal` to this process as a user's Ctrl-C or `kill` would. Outside a
/// critical section the caller then waits for the handler to end the process; inside one, the
/// wait happens when the section ends, so the grouped change completes first.
pub fn raise_for_test(signal: nix::sys::signal::Signal, inside_critical: bool) {
    TEST_SIGNAL_RAISED.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = nix::sys::signal::raise(signal);
    if !inside_critical {
        await_handler();
    }
}

fn await_handler() {
    // The handler exits the process; if it never does, carry on rather than hang a test.
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
