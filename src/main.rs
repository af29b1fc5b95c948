//! Parse, run, exit with the error's code. Nothing else.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A write beyond a file-size limit must fail with an error we report (EFBIG), not kill us
    // with SIGXFSZ before temporary files are cleaned up.
    ignore_sigxfsz();
    // Before any secret is read: no core dump, no ptrace by other processes of the user.
    if let Err(why) = keyclone::secrets::protect_process() {
        let _ = why; // Best effort (a sandbox may forbid it); nothing else depends on it.
    }
    if let Err(e) = keyclone::ui::signals::install() {
        let _ = e; // Without the handler Ctrl-C still stops the process; files are still atomic.
    }
    let cli = keyclone::cli::Cli::parse();
    keyclone::cli::run(cli, keyclone::env::Env::from_process())
}

#[allow(unsafe_code)]
fn ignore_sigxfsz() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no Rust code as a handler; this runs before any other thread.
    unsafe {
        let _ = signal(Signal::SIGXFSZ, SigHandler::SigIgn);
    }
}
