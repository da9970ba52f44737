//! Runbook parser and compiler: any text loads to a runbook or to located diagnostics, and a
//! runbook that loads compiles against a fixed three-node inventory (templates rendered, shell
//! quoting applied) without panicking.
#![no_main]

use std::sync::OnceLock;

use etcdrill::inventory::Cluster;
use etcdrill::runbook::Runbook;
use etcdrill::source::SourceFile;
use libfuzzer_sys::fuzz_target;

const INVENTORY: &str = "name: fuzz\ndefaults:\n  etcd: {management: {static_pod: {}}}\nnodes:\n  - {name: cp1, address: 10.0.0.11}\n  - {name: cp2, address: 10.0.0.12}\n  - {name: cp3, address: 10.0.0.13}\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| {
        Cluster::load(SourceFile::new("inventory.yaml", INVENTORY))
            .expect("the fixed inventory loads")
    });
    match Runbook::load(SourceFile::new("fuzz.yaml", text)) {
        Ok(runbook) => {
            let _ = etcdrill::plan::compile(&runbook, cluster, &[]);
        }
        Err(diagnostics) => {
            for diagnostic in diagnostics.iter() {
                assert!(
                    diagnostic.location.is_some(),
                    "unlocated runbook error: {diagnostic}"
                );
            }
            let _ = diagnostics.to_string();
        }
    }
});
