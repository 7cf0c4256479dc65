//! The fuzzers' committed seed corpus is made from the hostile table, so every vector the
//! tests name is also a starting point for mutation. `UPDATE_SEEDS=1 cargo test -p
//! tandem-proto --test it fuzz_seeds` rewrites the seeds; without it, the test fails when
//! they have drifted from the table.

use std::{collections::BTreeMap, fs, path::PathBuf};

use crate::support::Case;

/// Seeds larger than this are left out: the fuzzers cap inputs at 4 KiB by default, and
/// megabyte floods belong in the table, not in the repository.
const MAX_SEED: usize = 64 * 1024;

fn seeds_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target)
}

/// A file name from a case name: lower case, `_` for anything else, unique.
fn slug(name: &str, taken: &BTreeMap<String, Vec<u8>>) -> String {
    let mut slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    slug.truncate(60);
    let base = format!("table_{slug}");
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains_key(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    candidate
}

fn expected() -> BTreeMap<&'static str, BTreeMap<String, Vec<u8>>> {
    let mut cases: Vec<Case> = crate::hostile::all_cases();
    cases.extend(crate::bodies::all_cases());
    let mut requests = BTreeMap::new();
    let mut chunked = BTreeMap::new();
    for case in cases.iter().filter(|c| c.input.len() <= MAX_SEED) {
        let name = slug(&case.name, &requests);
        requests.insert(name.clone(), case.input.clone());
        let lower = String::from_utf8_lossy(&case.input).to_ascii_lowercase();
        if lower.contains("transfer-encoding: chunked")
            && let Some(at) = case.input.windows(4).position(|w| w == b"\r\n\r\n")
        {
            chunked.insert(name, case.input[at + 4..].to_vec());
        }
    }
    BTreeMap::from([("parse_request", requests), ("chunked", chunked)])
}

#[test]
fn fuzz_seeds_match_the_hostile_table() {
    let update = std::env::var_os("UPDATE_SEEDS").is_some();
    let mut drift = Vec::new();
    for (target, seeds) in expected() {
        let dir = seeds_dir(target);
        for (name, bytes) in &seeds {
            let path = dir.join(name);
            if update {
                fs::create_dir_all(&dir).unwrap();
                fs::write(&path, bytes).unwrap();
            } else if fs::read(&path).ok().as_ref() != Some(bytes) {
                drift.push(format!("{target}/{name}"));
            }
        }
        // Table seeds the table no longer has are stale; hand-written seeds are kept.
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("table_") && !seeds.contains_key(&name) {
                if update {
                    fs::remove_file(entry.path()).unwrap();
                } else {
                    drift.push(format!("{target}/{name} (stale)"));
                }
            }
        }
    }
    assert!(
        drift.is_empty(),
        "fuzz seeds differ from the hostile table; run `UPDATE_SEEDS=1 cargo test -p tandem-proto --test it fuzz_seeds`: {drift:?}"
    );
}
