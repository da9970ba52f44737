//! Snapshot reader: any bytes are examined as a snapshot file (bbolt pages and the sha256
//! trailer) to a status or an error, never a panic or an endless walk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = etcdrill::snapshot::status_of_bytes(data);
});
