//! What GnuCOBOL 3.1's EXTFH glue leaves out, put back.
//!
//! The runtime's `cob_extfh_read` and `cob_extfh_read_next` pass a READ to
//! the handler and copy the FILE STATUS back, but not the record length
//! (`curRecLen`) nor the relative record number (`relKey`) the handler
//! returns; `cob_extfh_write` does not return the RRN of a sequential
//! WRITE to a relative file either. GnuCOBOL's own handler sidesteps this by
//! writing into the program's file structure; an external handler cannot.
//! So the bridge defines those three functions itself: each calls the
//! runtime's own, then, for a file the bridge serves, sets the record size,
//! the RECORD VARYING ... DEPENDING ON item and the RELATIVE KEY the way
//! GnuCOBOL's own handler would.
//!
//! The COMMIT and ROLLBACK statements do not reach a file handler at all:
//! the runtime runs them itself (`cob_commit`, `cob_rollback`). The bridge
//! defines those two as well: each ends the program's unit of work on
//! vsamrd, then calls the runtime's own for the files it keeps.
//!
//! This works when `libvsamextfh.so` comes before `libcob` in the program's
//! library order: link it with `cobc ... -Q "-L<dir> -lvsamextfh"` (as the
//! README shows), or preload it. Otherwise records still read correctly but
//! their length does not reach the program, and the bridge says so once on
//! stderr.

use std::ffi::{CStr, c_int, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The head of libcob's `cob_field`.
#[repr(C)]
pub struct CobField {
    size: usize,
    data: *mut u8,
    attr: *const c_void,
}

/// The head of libcob's `cob_file_key`.
#[repr(C)]
struct CobFileKey {
    field: *mut CobField,
}

/// The head of libcob's `cob_file` (unchanged since OpenCOBOL 1.1).
#[repr(C)]
pub struct CobFile {
    select_name: *const c_void,
    file_status: *mut u8,
    assign: *mut CobField,
    record: *mut CobField,
    variable_record: *mut CobField,
    keys: *mut CobFileKey,
}

/// What the last READ or WRITE of a mapped file returned to put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Length of the record read.
    pub length: Option<usize>,
    /// Relative record number read or written.
    pub rrn: Option<u64>,
}

type Handler = unsafe extern "C" fn(*mut u8, *mut u8) -> i32;
type ReadFn = unsafe extern "C" fn(Handler, *mut CobFile, *mut CobField, *mut CobField, c_int);
type ReadNextFn = unsafe extern "C" fn(Handler, *mut CobFile, *mut CobField, c_int);
type WriteFn =
    unsafe extern "C" fn(Handler, *mut CobFile, *mut CobField, c_int, *mut CobField, u32);
type SetIntFn = unsafe extern "C" fn(*mut CobField, c_int);

static INTERPOSED: AtomicBool = AtomicBool::new(false);

/// True once the runtime has called one of the bridge's glue functions.
pub fn interposed() -> bool {
    INTERPOSED.load(Ordering::Relaxed)
}

/// The next definition of `name` after this library (libcob's).
fn next<T: Copy>(name: &CStr, cell: &OnceLock<usize>) -> Option<T> {
    let address = *cell.get_or_init(|| {
        // SAFETY: a NUL-terminated symbol name.
        unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize }
    });
    // SAFETY: the caller names the symbol's real type.
    (address != 0).then(|| unsafe { std::mem::transmute_copy::<usize, T>(&address) })
}

fn set_int() -> Option<SetIntFn> {
    static CELL: OnceLock<usize> = OnceLock::new();
    let address = *CELL.get_or_init(|| {
        // SAFETY: as `next`.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"cob_set_int".as_ptr()) as usize }
    });
    // SAFETY: libcob's `void cob_set_int (cob_field *, const int)`.
    (address != 0).then(|| unsafe { std::mem::transmute::<usize, SetIntFn>(address) })
}

fn ours(callfh: Handler) -> bool {
    callfh as usize == crate::vsamextfh as *const () as usize
}

/// Puts what the bridge returned into the program's file structure.
///
/// # Safety
/// `f` is the runtime's `cob_file` of the statement just run.
unsafe fn put_back(f: *mut CobFile) {
    if f.is_null() {
        return;
    }
    // SAFETY: the runtime's live file structure; fields checked for null.
    unsafe {
        let file = &*f;
        if file.record.is_null() {
            return;
        }
        let Some(delivery) = crate::take_delivery((*file.record).data as usize) else {
            return;
        };
        let Some(set_int) = set_int() else {
            return;
        };
        if let Some(length) = delivery.length
            && !file.variable_record.is_null()
        {
            (*file.record).size = length;
            set_int(file.variable_record, length as c_int);
        }
        if let Some(rrn) = delivery.rrn
            && !file.keys.is_null()
            && !(*file.keys).field.is_null()
        {
            set_int((*file.keys).field, rrn as c_int);
        }
    }
}

/// libcob's READ glue, then the record length and RRN put back.
///
/// # Safety
/// Called by a GnuCOBOL program with the runtime's own arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cob_extfh_read(
    callfh: Handler,
    f: *mut CobFile,
    key: *mut CobField,
    fnstatus: *mut CobField,
    read_opts: c_int,
) {
    static CELL: OnceLock<usize> = OnceLock::new();
    INTERPOSED.store(true, Ordering::Relaxed);
    if let Some(read) = next::<ReadFn>(c"cob_extfh_read", &CELL) {
        // SAFETY: the runtime's function with its own arguments.
        unsafe { read(callfh, f, key, fnstatus, read_opts) };
    }
    if ours(callfh) {
        // SAFETY: `f` is the runtime's file structure.
        unsafe { put_back(f) };
    }
}

/// libcob's READ NEXT glue, then the record length and RRN put back.
///
/// # Safety
/// Called by a GnuCOBOL program with the runtime's own arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cob_extfh_read_next(
    callfh: Handler,
    f: *mut CobFile,
    fnstatus: *mut CobField,
    read_opts: c_int,
) {
    static CELL: OnceLock<usize> = OnceLock::new();
    INTERPOSED.store(true, Ordering::Relaxed);
    if let Some(read_next) = next::<ReadNextFn>(c"cob_extfh_read_next", &CELL) {
        // SAFETY: as `cob_extfh_read`.
        unsafe { read_next(callfh, f, fnstatus, read_opts) };
    }
    if ours(callfh) {
        // SAFETY: as `cob_extfh_read`.
        unsafe { put_back(f) };
    }
}

/// libcob's WRITE glue, then the RRN of a sequential relative WRITE put
/// back into RELATIVE KEY.
///
/// # Safety
/// Called by a GnuCOBOL program with the runtime's own arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cob_extfh_write(
    callfh: Handler,
    f: *mut CobFile,
    rec: *mut CobField,
    opt: c_int,
    fnstatus: *mut CobField,
    check_eop: u32,
) {
    static CELL: OnceLock<usize> = OnceLock::new();
    INTERPOSED.store(true, Ordering::Relaxed);
    if let Some(write) = next::<WriteFn>(c"cob_extfh_write", &CELL) {
        // SAFETY: as `cob_extfh_read`.
        unsafe { write(callfh, f, rec, opt, fnstatus, check_eop) };
    }
    if ours(callfh) {
        // SAFETY: as `cob_extfh_read`.
        unsafe { put_back(f) };
    }
}

type StatementFn = unsafe extern "C" fn();

/// The COMMIT statement: the program's unit of work on vsamrd is made
/// durable, then libcob's own COMMIT runs for its files.
#[unsafe(no_mangle)]
pub extern "C" fn cob_commit() {
    static CELL: OnceLock<usize> = OnceLock::new();
    crate::end_unit(true);
    if let Some(commit) = next::<StatementFn>(c"cob_commit", &CELL) {
        // SAFETY: libcob's `void cob_commit (void)`.
        unsafe { commit() };
    }
}

/// The ROLLBACK statement: the program's unit of work on vsamrd is undone,
/// then libcob's own ROLLBACK runs for its files.
#[unsafe(no_mangle)]
pub extern "C" fn cob_rollback() {
    static CELL: OnceLock<usize> = OnceLock::new();
    crate::end_unit(false);
    if let Some(rollback) = next::<StatementFn>(c"cob_rollback", &CELL) {
        // SAFETY: libcob's `void cob_rollback (void)`.
        unsafe { rollback() };
    }
}
