//! The object-database backend that hands libgit2's received pack to [`Indexing`]: it
//! implements only `writepack` (libgit2's `git_odb_write_pack` asks the backends in priority
//! order and takes the first that accepts), so every read still goes to libgit2's own loose and
//! pack backends, which find the new pack on their refresh.
//!
//! This is raw FFI (libgit2-sys): git2 has no binding for custom backends. Every entry point
//! catches panics (none may cross into C) and reports failures as libgit2 errors of class
//! `GIT_ERROR_INDEXER`, the class libgit2's own indexer uses, so callers see the same errors.

use std::ffi::{CString, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use git2::Binding;
use libgit2_sys as raw;

use super::{Counts, Indexing};

/// Above libgit2's pack (2) and loose (1) backends.
const PRIORITY: c_int = 3;

#[repr(C)]
struct Backend {
    parent: raw::git_odb_backend,
    pack_dir: PathBuf,
}

#[repr(C)]
struct WritePack {
    parent: raw::git_odb_writepack,
    indexing: Option<Indexing>,
    progress: raw::git_indexer_progress_cb,
    payload: *mut c_void,
}

/// Registers the backend on `repo`'s object database, for the fetch that follows. An error
/// leaves libgit2's own indexer in charge.
#[allow(unsafe_code)]
pub(in crate::git) fn register(repo: &git2::Repository) -> Result<(), git2::Error> {
    let odb = repo.odb()?;
    let backend = Box::new(Backend {
        parent: raw::git_odb_backend {
            version: raw::GIT_ODB_BACKEND_VERSION,
            odb: std::ptr::null_mut(),
            read: None,
            read_prefix: None,
            read_header: None,
            write: None,
            writestream: None,
            readstream: None,
            exists: None,
            exists_prefix: None,
            refresh: None,
            foreach: None,
            writepack: Some(writepack),
            writemidx: None,
            freshen: None,
            free: Some(free_backend),
        },
        pack_dir: repo.path().join("objects").join("pack"),
    });
    let ptr = Box::into_raw(backend);
    // SAFETY: `ptr` is a valid, uniquely owned Backend whose first field (repr(C)) is the
    // git_odb_backend libgit2 expects, with the version it was built for; `odb.raw()` is live for
    // the call. On success libgit2 owns the backend and frees it through `free_backend` when the
    // object database is freed; on failure it does not take it, and we free it here.
    let rc = unsafe { raw::git_odb_add_backend(odb.raw(), ptr.cast(), PRIORITY) };
    if rc < 0 {
        // SAFETY: libgit2 refused the backend, so `ptr` is still ours alone.
        drop(unsafe { Box::from_raw(ptr) });
        return Err(git2::Error::last_error(rc));
    }
    Ok(())
}

/// Sets libgit2's last error (class indexer), as its own indexer does on a refused pack.
#[allow(unsafe_code)]
fn set_error(msg: &str) -> c_int {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: a valid NUL-terminated string; libgit2 copies it.
    unsafe { raw::git_error_set_str(raw::GIT_ERROR_INDEXER as c_int, msg.as_ptr()) };
    -1
}

/// Fills libgit2's progress record as its indexer does and calls the fetch's callback.
#[allow(unsafe_code)]
fn report(wp: &WritePack, stats: *mut raw::git_indexer_progress, c: Counts) -> c_int {
    if stats.is_null() {
        return 0;
    }
    // SAFETY: libgit2 passes the fetch's own progress record, valid and not used elsewhere
    // during this call.
    let s = unsafe { &mut *stats };
    s.total_objects = c.total;
    s.received_objects = c.received;
    s.total_deltas = c.deltas;
    s.indexed_deltas = if c.resolved { c.deltas } else { 0 };
    s.indexed_objects = if c.resolved {
        c.total
    } else {
        c.received.saturating_sub(c.deltas)
    };
    s.local_objects = 0;
    match wp.progress {
        Some(cb) => {
            let rc = cb(stats, wp.payload);
            if rc != 0 {
                set_error(&format!("indexer progress callback returned {rc}"));
            }
            rc
        }
        None => 0,
    }
}

/// Runs an entry point, turning a panic into a libgit2 error.
fn guarded(f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| set_error("the pack indexer failed"))
}

#[allow(unsafe_code)]
extern "C" fn writepack(
    out: *mut *mut raw::git_odb_writepack,
    backend: *mut raw::git_odb_backend,
    _odb: *mut raw::git_odb,
    progress: raw::git_indexer_progress_cb,
    payload: *mut c_void,
) -> c_int {
    guarded(|| {
        if out.is_null() || backend.is_null() {
            return raw::GIT_PASSTHROUGH as c_int;
        }
        // SAFETY: libgit2 passes back the backend we registered, a live Backend.
        let b = unsafe { &*backend.cast::<Backend>() };
        // No temporary files (or no thread): let libgit2's own indexer take the pack.
        let Ok(indexing) = Indexing::start(&b.pack_dir) else {
            return raw::GIT_PASSTHROUGH as c_int;
        };
        let wp = Box::new(WritePack {
            parent: raw::git_odb_writepack {
                backend,
                append: Some(append),
                commit: Some(commit),
                free: Some(free_writepack),
            },
            indexing: Some(indexing),
            progress,
            payload,
        });
        // SAFETY: `out` is libgit2's out-pointer; it owns the writepack from here on and
        // releases it through `free_writepack`.
        unsafe { *out = Box::into_raw(wp).cast() };
        0
    })
}

#[allow(unsafe_code)]
extern "C" fn append(
    wp: *mut raw::git_odb_writepack,
    data: *const c_void,
    size: usize,
    stats: *mut raw::git_indexer_progress,
) -> c_int {
    guarded(|| {
        // SAFETY: libgit2 passes back the writepack `writepack` made, used by its one thread.
        let wp = unsafe { &mut *wp.cast::<WritePack>() };
        let Some(indexing) = wp.indexing.as_mut() else {
            return set_error("the pack was already indexed");
        };
        let bytes = if size == 0 || data.is_null() {
            &[][..]
        } else {
            // SAFETY: libgit2 hands `size` readable bytes at `data` for this call.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) }
        };
        if let Err(e) = indexing.append(bytes) {
            return set_error(&e);
        }
        let counts = indexing.counts();
        report(wp, stats, counts)
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn commit(
    wp: *mut raw::git_odb_writepack,
    stats: *mut raw::git_indexer_progress,
) -> c_int {
    guarded(|| {
        // SAFETY: as in `append`.
        let wp_ref = unsafe { &mut *wp.cast::<WritePack>() };
        let Some(indexing) = wp_ref.indexing.take() else {
            return set_error("the pack was already indexed");
        };
        let mut cb_rc = 0;
        let done = indexing.commit(crate::git::tuning::TRIM_EVERY, |c| {
            cb_rc = report(wp_ref, stats, c);
            if cb_rc == 0 {
                Ok(())
            } else {
                Err(String::new())
            }
        });
        match done {
            Ok(()) => {
                // SAFETY: the backend is registered on a live object database (libgit2 sets
                // `odb` when it adds the backend); refreshing makes its pack backend see the
                // new pack now instead of on the first miss.
                unsafe {
                    let backend = wp_ref.parent.backend;
                    if !backend.is_null() && !(*backend).odb.is_null() {
                        raw::git_odb_refresh((*backend).odb);
                    }
                }
                0
            }
            Err(_) if cb_rc != 0 => cb_rc,
            Err(e) => set_error(&e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn free_writepack(wp: *mut raw::git_odb_writepack) {
    if !wp.is_null() {
        // SAFETY: made by Box::into_raw in `writepack`; libgit2 frees it once. Dropping an
        // unfinished Indexing stops its thread and removes its temporary files.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(wp.cast::<WritePack>()) })
        }));
    }
}

#[allow(unsafe_code)]
extern "C" fn free_backend(backend: *mut raw::git_odb_backend) {
    if !backend.is_null() {
        // SAFETY: made by Box::into_raw in `register`; libgit2 frees it once, with its odb.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(backend.cast::<Backend>()) })
        }));
    }
}
