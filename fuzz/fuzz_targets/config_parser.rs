//! vsamrd's configuration parser on any text: it never panics, every
//! refusal says what is wrong, and what it accepts routes only to
//! configured backends.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use vsam_host::config::Config;

fuzz_target!(|text: &str| {
    match Config::parse(text, "fuzz.toml", Path::new("/nonexistent-base")) {
        Ok(config) => {
            // What parsed is consistent: every route names a backend.
            for (_, backend) in &config.rules {
                assert!(config.backends.contains_key(backend));
            }
        }
        Err(error) => assert!(!error.message.is_empty(), "{error}"),
    }
});
