//! Journal reader: any text reads to a journal whose records follow each other, or to an error.
#![no_main]

use etcdrill::journal::Journal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(journal) = Journal::parse(std::path::Path::new("journal.jsonl"), text) {
        for (i, record) in journal.records.iter().enumerate() {
            assert_eq!(record.seq, i as u64 + 1);
        }
    }
});
