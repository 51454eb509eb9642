//! `vsamr load` and `vsamr unload` (IDCAMS REPRO in and out): the file
//! formats, which records are copied, and the two directions.

mod format;
mod load;
mod select;
mod unload;

pub use format::{
    FileFormat, RecordReader, create_output, open_record_file, parse_format, write_record,
};
pub use load::{LoadArgs, Loader, Refusal, chain_full, empty, in_slot, load, open_for_load};
pub use select::{Selection, Verdict};
pub use unload::{SelectedRecords, UnloadArgs, unload};
