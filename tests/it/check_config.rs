//! `tally check-config` (the real binary): it opens the country database and refuses a file that
//! is not one, and prints the effective settings as TOML that parses back and shows no secret.

use std::process::Command;

use secrecy::ExposeSecret;
use tally::config::ConfigFile;

use crate::support::testdata;

fn check_config(path: &std::path::Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("check-config")
        .arg(path)
        .env_remove("TALLY_CLICKHOUSE_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("tally runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_with_country_db(dir: &std::path::Path, db: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("tally.toml");
    std::fs::write(
        &p,
        format!(
            "[privacy]\ncountry_database = \"{}\"\n[[sites]]\ndomain = \"a.nl\"\n",
            db.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_file_that_is_not_a_country_database_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // Not a MaxMind DB at all.
    let text = dir.path().join("countries.mmdb");
    std::fs::write(&text, "NL,DE,BE\n".repeat(100)).unwrap();
    let (ok, _, err) = check_config(&config_with_country_db(dir.path(), &text), &[]);
    assert!(!ok);
    assert!(
        err.contains("privacy.country_database")
            && err.contains("is not a MaxMind-format (.mmdb) database"),
        "{err}"
    );

    // A well-formed MaxMind DB that holds no countries (as an ASN database does).
    let asn = dir.path().join("asn.mmdb");
    std::fs::write(&asn, asn_like_mmdb()).unwrap();
    let (ok, _, err) = check_config(&config_with_country_db(dir.path(), &asn), &[]);
    assert!(!ok);
    assert!(
        err.contains("(Test-ASN) opens, but gives no country")
            && err.contains("it is not a country database"),
        "{err}"
    );

    // The real databases, in both record layouts, pass and are named.
    for (file, kind) in [
        ("dbip-country.mmdb", "country_code"),
        ("GeoLite2-Country.mmdb", "country.iso_code"),
    ] {
        let db = testdata(file);
        let (ok, out, err) = check_config(&config_with_country_db(dir.path(), &db), &[]);
        assert!(ok, "{file} ({kind}): {err}");
        assert!(
            out.contains(&format!("# country database: {}", db.display())),
            "{out}"
        );
    }
}

#[test]
fn prints_the_effective_settings_as_toml_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let digest = "c0ffee".repeat(10) + "c0ff";
    let hash = "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    let p = dir.path().join("tally.toml");
    std::fs::write(
        &p,
        format!(
            "[clickhouse]\npassword = \"hunter2-in-file\"\n\
             [[api_tokens]]\nname = \"web team\"\nsha256 = \"{digest}\"\n\
             [[dashboard.users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\
             [[dashboard.share_links]]\nsite = \"a.nl\"\nsha256 = \"{digest}\"\n\
             [[sites]]\ndomain = \"a.nl\"\nexclude_paths = [\"/admin/**\"]\n"
        ),
    )
    .unwrap();
    let secrets = ["hunter2", "c0ffee", "$argon2", "aGFzaGhh", "c2FsdHNhbHQ"];
    for env in [
        vec![],
        vec![("TALLY_CLICKHOUSE_PASSWORD", "hunter2-from-env")],
    ] {
        let (ok, out, err) = check_config(&p, &env);
        assert!(ok, "{err}");
        for s in secrets {
            assert!(
                !out.contains(s) && !err.contains(s),
                "{s} shown:\n{out}\n{err}"
            );
        }
        assert!(!out.contains("SecretBox"), "not a debug dump:\n{out}");
        // A TOML document of the file's shape, with the defaults filled in.
        let back: ConfigFile = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(back.clickhouse.password.expose_secret(), "(hidden)");
        assert_eq!(back.api_tokens[0].sha256.expose_secret(), "(hidden)");
        assert_eq!(back.api_tokens[0].name, "web team");
        assert_eq!(
            back.dashboard.share_links[0].sha256.expose_secret(),
            "(hidden)"
        );
        assert_eq!(
            back.dashboard.users[0]
                .password_hash
                .as_ref()
                .unwrap()
                .expose_secret(),
            "(hidden)"
        );
        assert_eq!(back.sites[0].exclude_paths, ["/admin/**"]);
        // Defaults are printed too.
        assert_eq!(back.ingest.batch_size, 20_000);
        assert_eq!(
            back.clickhouse.compression,
            tally::config::Compression::Auto
        );
        assert_eq!(back.retention.raw_days, 3);
        assert_eq!(
            back.server.public_url.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert!(out.contains("# config ok: 1 site(s)"), "{out}");
        assert!(out.contains("# country database: none"), "{out}");
    }
    // Without any secret set, nothing says hidden.
    std::fs::write(&p, "[[sites]]\ndomain = \"a.nl\"\n").unwrap();
    let (ok, out, _) = check_config(&p, &[]);
    assert!(ok && !out.contains("(hidden)"), "{out}");
}

/// A MaxMind DB (format 2.0) for IPv4 whose every address maps to
/// `{"autonomous_system_number": 64500}`: the shape of an ASN database, no country anywhere.
/// Written here by hand so that the test needs no second download.
fn asn_like_mmdb() -> Vec<u8> {
    fn string(s: &str) -> Vec<u8> {
        assert!(s.len() < 29);
        let mut v = vec![(2 << 5) | s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }
    fn uint(kind: u8, n: u64) -> Vec<u8> {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        // Types above 7 are "extended": type 0 in the control byte, then type - 7.
        let mut v = if kind > 7 {
            vec![bytes.len() as u8, kind - 7]
        } else {
            vec![(kind << 5) | bytes.len() as u8]
        };
        v.extend(bytes);
        v
    }
    fn map(entries: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
        let mut v = vec![(7 << 5) | entries.len() as u8];
        for (k, value) in entries {
            v.extend(string(k));
            v.extend(value);
        }
        v
    }
    let node_count: u32 = 1;
    // One node, both halves pointing at the only data record (offset 0).
    let pointer = node_count + 16;
    let mut db = Vec::new();
    for _ in 0..2 {
        db.extend_from_slice(&pointer.to_be_bytes()[1..]);
    }
    db.extend_from_slice(&[0u8; 16]);
    db.extend(map(vec![("autonomous_system_number", uint(6, 64500))]));
    db.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    let languages = {
        let mut v = vec![1, 11 - 7]; // an array (extended type 11) of one
        v.extend(string("en"));
        v
    };
    db.extend(map(vec![
        ("binary_format_major_version", uint(5, 2)),
        ("binary_format_minor_version", uint(5, 0)),
        ("build_epoch", uint(9, 1_767_225_600)),
        ("database_type", string("Test-ASN")),
        ("description", map(vec![("en", string("no countries"))])),
        ("ip_version", uint(5, 4)),
        ("languages", languages),
        ("node_count", uint(6, u64::from(node_count))),
        ("record_size", uint(5, 24)),
    ]));
    db
}
