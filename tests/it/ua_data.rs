//! The lists shipped in data/ are exactly the releases data/manifest.tsv pins: scripts/testdata.sh
//! fetches those releases from the npm registry at test time and extracts them with the same
//! script that refreshes data/ (`scripts/refresh-ua-data.sh --pinned`), into testdata/pinned/.
//! A hand edit of a shipped list, or a pin changed without refreshing, fails here.

use std::path::Path;

use crate::support::testdata;

#[test]
fn shipped_lists_equal_the_pinned_releases() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let manifest = std::fs::read_to_string(data.join("manifest.tsv")).unwrap();
    let mut checked = Vec::new();
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let [file, package, version, licence] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("manifest line not understood: {line}");
        };
        let shipped = std::fs::read(data.join(file)).unwrap();
        let pinned = std::fs::read(testdata(&format!("pinned/{file}"))).unwrap();
        assert!(
            shipped == pinned,
            "data/{file} differs from {package} {version}: run scripts/refresh-ua-data.sh"
        );
        let stem = file.split('.').next().unwrap();
        let licence_file = format!("licenses/{stem}.LICENSE");
        assert_eq!(
            std::fs::read(data.join(&licence_file)).unwrap(),
            std::fs::read(testdata(&format!("pinned/{licence_file}"))).unwrap(),
            "data/{licence_file} is not {package} {version}'s licence"
        );
        checked.push(format!("{file} = {package} {version} ({licence})"));
    }
    // The release's own metadata agrees with the pin (version and licence).
    assert_eq!(
        manifest,
        std::fs::read_to_string(testdata("pinned/manifest.tsv")).unwrap(),
        "data/manifest.tsv does not describe the pinned releases"
    );
    println!(
        "shipped lists equal their pinned releases: {}",
        checked.join("; ")
    );
    assert_eq!(checked.len(), 3, "{checked:?}");
}
