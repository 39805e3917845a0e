//! An rpm payload after decompression: cpio entries (newc, crc, and rpm's stripped format)
//! and their contents, read to the end or to the first error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;
use strata_package::CpioReader;

fuzz_target!(|data: &[u8]| {
    let mut cpio = CpioReader::new(data);
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        let entry = match cpio.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) | Err(_) => return,
        };
        if let Some(index) = entry.index {
            // Stripped entries take their size from the header's file list.
            cpio.set_content_size(u64::from(index % 8192));
        }
        let mut content = cpio.content();
        let mut total = 0u64;
        loop {
            match content.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        assert!(entry.index.is_some() || total <= entry.size, "read {total} of a {}-byte entry", entry.size);
    }
});
