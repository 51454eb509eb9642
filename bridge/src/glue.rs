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
//! The COMMIT, ROLLBACK and UNLOCK statements do not reach a file handler
//! at all: the runtime runs them itself (`cob_commit`, `cob_rollback`,
//! `cob_unlock_file`). The bridge defines those as well: COMMIT and
//! ROLLBACK end the program's unit of work on vsamrd (and release the
//! records READs locked), then call the runtime's own for the files it
//! keeps; UNLOCK releases the record a READ locked.
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

/// The head of libcob's `cob_field_attr`.
#[repr(C)]
struct CobFieldAttr {
    kind: u16,
    digits: u16,
}

/// libcob's numeric field types with a digit count (DISPLAY, BINARY,
/// PACKED).
const NUMERIC_WITH_DIGITS: [u16; 3] = [0x10, 0x11, 0x12];

/// The largest number a numeric field holds by its digits (`None`: no
/// such limit known).
///
/// # Safety
/// `field` is a live libcob field.
unsafe fn largest(field: *const CobField) -> Option<u64> {
    // SAFETY: the caller's live field; its attribute checked for null.
    let attr = unsafe { (*field).attr as *const CobFieldAttr };
    if attr.is_null() {
        return None;
    }
    // SAFETY: as above.
    let (kind, digits) = unsafe { ((*attr).kind, (*attr).digits) };
    (NUMERIC_WITH_DIGITS.contains(&kind) && (1..19).contains(&digits))
        .then(|| 10u64.pow(u32::from(digits)) - 1)
}

/// Sets a FILE STATUS in the file and in the statement's status field.
///
/// # Safety
/// `file` is libcob's live file structure, `fnstatus` the statement's
/// status field or null.
unsafe fn set_status(file: &CobFile, fnstatus: *mut CobField, status: [u8; 2]) {
    // SAFETY: the runtime's status areas, two bytes or more, null checked.
    unsafe {
        if !file.file_status.is_null() {
            std::ptr::copy_nonoverlapping(status.as_ptr(), file.file_status, 2);
        }
        if !fnstatus.is_null() && !(*fnstatus).data.is_null() && (*fnstatus).size >= 2 {
            std::ptr::copy_nonoverlapping(status.as_ptr(), (*fnstatus).data, 2);
        }
    }
}

/// Puts what the bridge returned into the program's file structure. After
/// a sequential READ (`sequential_read`), a relative record number too
/// large for the RELATIVE KEY item answers 14, as GnuCOBOL's own handler
/// does: the item gets the number cut to its digits, and the next READ
/// NEXT reads the same record again.
///
/// # Safety
/// `f` is the runtime's `cob_file` of the statement just run, `fnstatus`
/// its status field or null.
unsafe fn put_back(f: *mut CobFile, fnstatus: *mut CobField, sequential_read: bool) {
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
            let field = (*file.keys).field;
            set_int(field, rrn as c_int);
            if sequential_read && largest(field).is_some_and(|most| rrn > most) {
                set_status(file, fnstatus, *b"14");
                crate::step_back((*file.record).data as usize);
            }
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
        unsafe { put_back(f, fnstatus, false) };
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
        unsafe { put_back(f, fnstatus, true) };
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
        unsafe { put_back(f, fnstatus, false) };
    }
}

type RewriteFn = unsafe extern "C" fn(Handler, *mut CobFile, *mut CobField, c_int, *mut CobField);
type GetIntFn = unsafe extern "C" fn(*mut CobField) -> c_int;

fn get_int() -> Option<GetIntFn> {
    static CELL: OnceLock<usize> = OnceLock::new();
    let address = *CELL.get_or_init(|| {
        // SAFETY: as `next`.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"cob_get_int".as_ptr()) as usize }
    });
    // SAFETY: libcob's `int cob_get_int (cob_field *)`.
    (address != 0).then(|| unsafe { std::mem::transmute::<usize, GetIntFn>(address) })
}

/// libcob's REWRITE glue, given the record at the length its RECORD
/// VARYING ... DEPENDING ON item says, as libcob's WRITE glue does (its
/// REWRITE glue passes the FD's largest size), for a file the bridge
/// serves: a REWRITE that changes a sequential record's length answers 44,
/// and an indexed or relative record takes its new length.
///
/// # Safety
/// Called by a GnuCOBOL program with the runtime's own arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cob_extfh_rewrite(
    callfh: Handler,
    f: *mut CobFile,
    rec: *mut CobField,
    opt: c_int,
    fnstatus: *mut CobField,
) {
    static CELL: OnceLock<usize> = OnceLock::new();
    INTERPOSED.store(true, Ordering::Relaxed);
    let Some(rewrite) = next::<RewriteFn>(c"cob_extfh_rewrite", &CELL) else {
        return;
    };
    let mut sized: CobField;
    let mut record = rec;
    // SAFETY: the runtime's live file structure and record field, checked
    // for null; the sized copy points at the same record area.
    unsafe {
        if ours(callfh)
            && !f.is_null()
            && !rec.is_null()
            && !(*f).variable_record.is_null()
            && let Some(get_int) = get_int()
        {
            let length = usize::try_from(get_int((*f).variable_record)).unwrap_or(0);
            if length < (*rec).size {
                sized = CobField {
                    size: length,
                    data: (*rec).data,
                    attr: (*rec).attr,
                };
                record = &mut sized;
            }
        }
        rewrite(callfh, f, record, opt, fnstatus);
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

type UnlockFn = unsafe extern "C" fn(*mut CobFile, *mut CobField);

/// The UNLOCK statement, which the runtime runs itself (`cob_unlock_file`)
/// without calling a file handler: for a file the bridge serves, the record
/// a READ locked is released on vsamrd and the statement's status set as
/// the runtime's own would (00); other files go to the runtime.
///
/// # Safety
/// Called by libcob with its `cob_file` of the statement and the FILE
/// STATUS field (or null).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cob_unlock_file(f: *mut CobFile, fnstatus: *mut CobField) {
    static CELL: OnceLock<usize> = OnceLock::new();
    // SAFETY: `f` is libcob's cob_file, whose head `CobFile` mirrors.
    let record =
        unsafe { (!f.is_null() && !(*f).record.is_null()).then(|| (*(*f).record).data as usize) };
    if let Some(status) = record.and_then(crate::unlock_file) {
        // SAFETY: as above.
        unsafe { set_status(&*f, fnstatus, status) };
        return;
    }
    if let Some(unlock) = next::<UnlockFn>(c"cob_unlock_file", &CELL) {
        // SAFETY: libcob's `void cob_unlock_file (cob_file *, cob_field *)`.
        unsafe { unlock(f, fnstatus) };
    }
}
