//! The conformance kit on the CSV store compiled natively: the VSAM
//! scenarios and the durability checks through an in-process vsamrd, with
//! no WebAssembly build (`cargo test -p vsam-plugin-csv`). The component
//! itself, storage faults included, is checked in `tests/conformance.rs`
//! of the workspace.

#[test]
fn the_csv_store_conforms_natively() {
    vsam_conformance::native::assert_conforms::<vsam_plugin_csv::CsvStore>(&[]);
}
