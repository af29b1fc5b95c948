//! The process's answer to Ctrl-C, SIGTERM and SIGHUP: wait for any critical section to finish,
//! delete temporary files, give the terminal back its echo and cursor, say so, and exit with
//! 128 + the signal number (130 for Ctrl-C).

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::interrupt;

static SAVED_TTY: Mutex<Option<(File, Termios)>> = Mutex::new(None);

/// Installs the handler thread. Called once by `main`, before any prompt.
pub fn install() -> std::io::Result<()> {
    if let Ok(tty) = File::options().read(true).write(true).open("/dev/tty")
        && let Ok(t) = tcgetattr(&tty)
    {
        *SAVED_TTY.lock().unwrap_or_else(|p| p.into_inner()) = Some((tty, t));
    }
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("keyclone-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _section = interrupt::critical();
                interrupt::remove_tracked();
                let saved = SAVED_TTY.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((tty, t)) = saved.as_ref() {
                    let _ = tcsetattr(tty, SetArg::TCSANOW, t);
                    let mut w: &File = tty;
                    let _ = w.write_all(b"\x1b[?25h");
                }
                let mut err = std::io::stderr();
                let _ = writeln!(
                    err,
                    "\ninterrupted: stopped before finishing; no partial file was left behind.\n\nhint: run the same command again to start over"
                );
                std::process::exit(128 + sig);
            }
        })?;
    Ok(())
}
