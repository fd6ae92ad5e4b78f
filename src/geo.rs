//! Country lookup from a MaxMind-format database; nothing finer than a country is ever read.
//!
//! Two record layouts are in use: MaxMind's GeoIP2/GeoLite2 (`country.iso_code`) and the
//! ip-location-db files (`country_code`). Both are decoded; only the ISO code is kept.
//!
//! Millions of addresses share a few hundred records (one per country, more or less), so the
//! code decoded from a record is remembered by the record's offset in the file. The table holds
//! offsets and codes only, never an address, and is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use serde::Deserialize;

use crate::error::Error;
use crate::fast_hash::Prehashed;

/// Most records whose code is remembered; a database with more distinct records than this
/// (none of the country databases comes close) decodes the rest on every lookup.
const MAX_REMEMBERED: usize = 16_384;

pub struct CountryDb {
    reader: Option<maxminddb::Reader<Vec<u8>>>,
    /// `database_type` from the file's metadata, for the privacy report and logs.
    pub database_type: String,
    /// Record offset → its code (`""` when the record has none).
    decoded: Mutex<HashMap<usize, &'static str, Prehashed>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

impl CountryDb {
    /// No database: every lookup answers "unknown" (an empty country).
    pub fn none() -> Self {
        Self {
            reader: None,
            database_type: String::new(),
            decoded: Mutex::new(HashMap::default()),
        }
    }

    pub fn open(path: &Path) -> Result<Self, Error> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| Error::CountryDatabase(format!("{}: {e}", path.display())))?;
        let database_type = reader.metadata().database_type.clone();
        Ok(Self {
            reader: Some(reader),
            database_type,
            decoded: Mutex::new(HashMap::default()),
        })
    }

    pub fn is_loaded(&self) -> bool {
        self.reader.is_some()
    }

    /// ISO 3166-1 alpha-2 code in upper case, or `""` when unknown. The text is static: a
    /// stored row shares it instead of owning a copy.
    pub fn country(&self, ip: IpAddr) -> &'static str {
        let Some(reader) = self.reader.as_ref() else {
            return "";
        };
        let Ok(result) = reader.lookup(ip) else {
            return "";
        };
        let Some(offset) = result.offset() else {
            return "";
        };
        let mut decoded = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(code) = decoded.get(&offset) {
            return code;
        }
        let code = match result.decode::<Record>() {
            Ok(Some(record)) => record
                .country
                .and_then(|c| c.iso_code)
                .or(record.country_code)
                .map_or("", code_text),
            // A record that does not decode is not remembered: it says nothing for sure.
            _ => return "",
        };
        if decoded.len() < MAX_REMEMBERED {
            decoded.insert(offset, code);
        }
        code
    }
}

/// Every two-letter upper-case code, `AA` … `ZZ`, in one static text.
static CODES: &str = {
    const BYTES: [u8; 26 * 26 * 2] = {
        let mut b = [0u8; 26 * 26 * 2];
        let mut i = 0;
        while i < 26 * 26 {
            b[2 * i] = b'A' + (i / 26) as u8;
            b[2 * i + 1] = b'A' + (i % 26) as u8;
            i += 1;
        }
        b
    };
    match std::str::from_utf8(&BYTES) {
        Ok(s) => s,
        Err(_) => panic!("ASCII letters are UTF-8"),
    }
};

/// A record's code as stored: two ASCII letters in upper case, else `""`.
fn code_text(code: &str) -> &'static str {
    match code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let i = usize::from(a.to_ascii_uppercase() - b'A') * 26
                + usize::from(b.to_ascii_uppercase() - b'A');
            &CODES[2 * i..2 * i + 2]
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_two_upper_case_letters_or_nothing() {
        assert_eq!(code_text("NL"), "NL");
        assert_eq!(code_text("nl"), "NL");
        assert_eq!(code_text("aZ"), "AZ");
        assert_eq!(code_text("ZZ"), "ZZ");
        assert_eq!(code_text("AA"), "AA");
        for bad in ["", "N", "NLD", "N1", "É", "1A"] {
            assert_eq!(code_text(bad), "", "{bad}");
        }
    }

    #[test]
    fn no_database_knows_no_country() {
        assert_eq!(CountryDb::none().country("192.0.2.1".parse().unwrap()), "");
    }
}
