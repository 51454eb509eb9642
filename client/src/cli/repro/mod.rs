//! `vsamr load` and `vsamr unload` (IDCAMS REPRO in and out): the file
//! formats, which records are copied, and the two directions.

mod format;
mod load;
mod select;
mod unload;

pub use load::{LoadArgs, load};
pub use unload::{UnloadArgs, unload};
