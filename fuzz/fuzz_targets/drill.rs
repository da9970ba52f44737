//! Drill file parser: any text loads to a drill or to located diagnostics.
#![no_main]

use etcdrill::drill::Drill;
use etcdrill::source::SourceFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(diagnostics) = Drill::load(SourceFile::new("fuzz.yaml", text)) {
        for diagnostic in diagnostics.iter() {
            assert!(
                diagnostic.location.is_some(),
                "unlocated drill error: {diagnostic}"
            );
        }
        let _ = diagnostics.to_string();
    }
});
