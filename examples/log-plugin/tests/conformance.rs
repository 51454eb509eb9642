//! The conformance kit on the store compiled natively: every VSAM scenario
//! and the durability checks through an in-process vsamrd, no WebAssembly
//! build needed (`cargo test`). The storage fault checks need the
//! component: `vsam-conformance target/wasm32-wasip2/release/NAME.wasm`.

#[test]
fn the_store_conforms() {
    vsam_conformance::native::assert_conforms::<vsam_example_log::LogStore>(&[]);
}
