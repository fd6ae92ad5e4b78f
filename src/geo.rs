//! Country lookup from a MaxMind-format database; nothing finer than a country is ever read.
//!
//! Two record layouts are in use: MaxMind's GeoIP2/GeoLite2 (`country.iso_code`) and the
//! ip-location-db files (`country_code`). Both are decoded; only the ISO code is kept.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::Error;

pub struct CountryDb {
    reader: Option<maxminddb::Reader<Vec<u8>>>,
    /// `database_type` from the file's metadata, for the privacy report and logs.
    pub database_type: String,
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
        }
    }

    pub fn open(path: &Path) -> Result<Self, Error> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| Error::CountryDatabase(format!("{}: {e}", path.display())))?;
        let database_type = reader.metadata().database_type.clone();
        Ok(Self {
            reader: Some(reader),
            database_type,
        })
    }

    pub fn is_loaded(&self) -> bool {
        self.reader.is_some()
    }

    /// ISO 3166-1 alpha-2 code in upper case, or `None` when unknown.
    pub fn country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let reader = self.reader.as_ref()?;
        let result = reader.lookup(ip).ok()?;
        let record: Record = result.decode().ok()??;
        let code = record
            .country
            .and_then(|c| c.iso_code)
            .or(record.country_code)?;
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
            }
            _ => None,
        }
    }
}
