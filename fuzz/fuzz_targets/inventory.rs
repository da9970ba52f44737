//! Inventory parser: any text loads to a cluster or to located diagnostics.
#![no_main]

use etcdrill::inventory::Cluster;
use etcdrill::source::SourceFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(diagnostics) = Cluster::load(SourceFile::new("fuzz.yaml", text)) {
        for diagnostic in diagnostics.iter() {
            assert!(
                diagnostic.location.is_some(),
                "unlocated inventory error: {diagnostic}"
            );
        }
        let _ = diagnostics.to_string();
    }
});
