//! Clone progress on the terminal: objects and bytes received (with the rate), deltas
//! resolved, files checked out. Silent when stderr is not a terminal, with `-q` or `--json`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::git::clone::CloneProgress;

/// Three bars, shown one after the other on stderr.
#[derive(Debug)]
pub struct Bars {
    receive: ProgressBar,
    deltas: ProgressBar,
    checkout: ProgressBar,
}

fn bar(template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("the progress templates are valid")
            .progress_chars("=> "),
    );
    pb
}

impl Bars {
    pub fn new() -> Bars {
        Bars {
            receive: bar("Receiving objects {bar:30} {pos}/{len} {msg}"),
            deltas: bar("Resolving deltas  {bar:30} {pos}/{len}"),
            checkout: bar("Checking out      {bar:30} {pos}/{len} files"),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

fn human_bytes(n: usize) -> String {
    indicatif::HumanBytes(n as u64).to_string()
}

impl CloneProgress for Bars {
    fn transfer(
        &self,
        received: usize,
        total: usize,
        indexed_deltas: usize,
        total_deltas: usize,
        bytes: usize,
    ) {
        if total > 0 && !self.receive.is_finished() {
            self.receive.set_length(total as u64);
            self.receive.set_position(received as u64);
            let secs = self.receive.elapsed().as_secs_f64().max(0.001);
            self.receive.set_message(format!(
                "{}, {}/s",
                human_bytes(bytes),
                human_bytes((bytes as f64 / secs) as usize)
            ));
            if received == total {
                self.receive.finish();
            }
        }
        if total_deltas > 0 {
            self.deltas.set_length(total_deltas as u64);
            self.deltas.set_position(indexed_deltas as u64);
            if indexed_deltas == total_deltas {
                self.deltas.finish();
            }
        }
    }

    fn checkout(&self, done: usize, total: usize) {
        if total > 0 {
            self.checkout.set_length(total as u64);
            self.checkout.set_position(done as u64);
        }
    }

    fn finish(&self) {
        for b in [&self.receive, &self.deltas, &self.checkout] {
            if b.length().is_some() && !b.is_finished() {
                b.finish();
            }
        }
    }
}

/// The LFS download bar: bytes (with the rate) and files.
#[derive(Debug)]
pub struct LfsBar {
    bar: ProgressBar,
    files: std::sync::atomic::AtomicUsize,
    total_files: std::sync::atomic::AtomicUsize,
}

impl LfsBar {
    pub fn new() -> LfsBar {
        LfsBar {
            bar: bar(
                "LFS files         {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            ),
            files: 0.into(),
            total_files: 0.into(),
        }
    }
    fn show_files(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.bar.set_message(format!(
            "{}/{} files",
            self.files.load(Relaxed),
            self.total_files.load(Relaxed)
        ));
    }
}

impl Default for LfsBar {
    fn default() -> Self {
        LfsBar::new()
    }
}

impl crate::lfs::LfsProgress for LfsBar {
    fn start(&self, files: usize, bytes: u64) {
        self.total_files
            .store(files, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.show_files();
    }
    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }
    fn file_done(&self) {
        self.files
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.show_files();
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
