//! Retry logic for inserts: which ClickHouse errors are worth another try, and the backoff
//! between tries.
//!
//! An error is *permanent* only when ClickHouse names a code that no retry can change: the
//! schema does not match the row (a dropped column or table) or the data cannot be parsed.
//! Everything else (network errors, time-outs, overload, authentication, codes not listed) is
//! *retriable*: the batch waits in the spool and is tried again, because an operator can fix
//! those (start ClickHouse, fix a password) and losing visits is worse than waiting.

use std::time::Duration;

/// What to do with a batch after a failed insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again later (spool it, back off).
    Retriable,
    /// No retry can succeed. `code` is ClickHouse's error code (or `client` when our own
    /// encoding failed); `whole_batch` says the cause is the table, not one row, so splitting
    /// the batch to find the bad rows would not help.
    Permanent { code: String, whole_batch: bool },
}

/// Codes meaning the table does not fit the rows: every row fails alike.
const SCHEMA_CODES: &[u32] = &[
    8,   // THERE_IS_NO_COLUMN
    10,  // NOT_FOUND_COLUMN_IN_BLOCK
    16,  // NO_SUCH_COLUMN_IN_TABLE
    47,  // UNKNOWN_IDENTIFIER
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR (the INSERT statement itself)
    81,  // UNKNOWN_DATABASE
    122, // INCOMPATIBLE_COLUMNS
    179, // MULTIPLE_EXPRESSIONS_FOR_ALIAS
];

/// Codes meaning some row's data cannot be stored: the bad rows can be found by splitting.
const DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    128, // TOO_LARGE_ARRAY_SIZE
    131, // TOO_LARGE_STRING_SIZE
    190, // SIZES_OF_ARRAYS_DOESNT_MATCH
];

/// Classifies an insert error.
pub fn classify(error: &clickhouse::error::Error) -> Failure {
    use clickhouse::error::Error as E;
    match error {
        E::BadResponse(message) => match crate::clickhouse_code::in_message(message) {
            Some(c) if SCHEMA_CODES.contains(&c) => Failure::Permanent {
                code: c.to_string(),
                whole_batch: true,
            },
            Some(c) if DATA_CODES.contains(&c) => Failure::Permanent {
                code: c.to_string(),
                whole_batch: false,
            },
            _ => Failure::Retriable,
        },
        // Our own rows could not be encoded: no server will ever take them.
        E::DataFormat(_) | E::Custom(_) | E::SequenceMustHaveLength | E::InvalidUtf8Encoding(_) => {
            Failure::Permanent {
                code: "client".into(),
                whole_batch: false,
            }
        }
        _ => Failure::Retriable,
    }
}

/// Exponential backoff between retries: `first`, doubling, never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The wait before the next try; each call doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error as E;

    #[test]
    fn schema_and_data_errors_are_permanent_the_rest_is_retried() {
        let bad = |m: &str| classify(&E::BadResponse(m.into()));
        assert_eq!(
            bad("Code: 16. DB::Exception: No such column x"),
            Failure::Permanent {
                code: "16".into(),
                whole_batch: true
            }
        );
        assert_eq!(
            bad("Code: 60. DB::Exception: Table tally.events doesn't exist."),
            Failure::Permanent {
                code: "60".into(),
                whole_batch: true
            }
        );
        assert_eq!(
            bad("Code: 27. DB::Exception: Cannot parse input"),
            Failure::Permanent {
                code: "27".into(),
                whole_batch: false
            }
        );
        // Overload, memory, time-outs, authentication and unknown codes wait and retry.
        for m in [
            "Code: 252. DB::Exception: Too many parts",
            "Code: 241. DB::Exception: Memory limit exceeded",
            "Code: 159. DB::Exception: Timeout exceeded",
            "Code: 516. DB::Exception: Authentication failed",
            "Code: 999. DB::Exception: something new",
            "503 Service Unavailable",
        ] {
            assert_eq!(bad(m), Failure::Retriable, "{m}");
        }
        assert_eq!(classify(&E::TimedOut), Failure::Retriable);
        assert_eq!(
            classify(&E::Custom("cannot encode".into())),
            Failure::Permanent {
                code: "client".into(),
                whole_batch: false
            }
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<_> = (0..4).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_wait().as_millis(), 100);
    }
}
