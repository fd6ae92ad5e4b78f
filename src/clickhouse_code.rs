//! ClickHouse's error codes: read out of an error in one place, for the insert retry logic, the
//! stats API's answers and log lines (which carry the code only, never the message: a message
//! can quote the data that failed).

/// `TIMEOUT_EXCEEDED`: a query ran past `max_execution_time`.
pub const TIMEOUT_EXCEEDED: u32 = 159;
/// `MEMORY_LIMIT_EXCEEDED`: a query needed more memory than allowed.
pub const MEMORY_LIMIT_EXCEEDED: u32 = 241;

/// `DUPLICATE_COLUMN`: current ClickHouse's "Cannot add column x: column with this name
/// already exists" (18.16 answers it with `ILLEGAL_COLUMN`).
pub const DUPLICATE_COLUMN: u32 = 15;
/// `ILLEGAL_COLUMN`: among others, 18.16's "Cannot add column x: column with this name already
/// exists".
pub const ILLEGAL_COLUMN: u32 = 44;
/// `TABLE_ALREADY_EXISTS`: a concurrent `CREATE TABLE IF NOT EXISTS` won.
pub const TABLE_ALREADY_EXISTS: u32 = 57;
/// `DATABASE_ALREADY_EXISTS`: a concurrent `CREATE DATABASE IF NOT EXISTS` won.
pub const DATABASE_ALREADY_EXISTS: u32 = 82;
/// `INCOMPATIBLE_COLUMNS`: a replica created with other columns than its table has in ZooKeeper.
pub const INCOMPATIBLE_COLUMNS: u32 = 122;
/// `REPLICA_IS_ALREADY_EXIST`: a concurrent `CREATE TABLE` of the same replica won.
pub const REPLICA_IS_ALREADY_EXIST: u32 = 253;
/// `UNFINISHED`: an `ALTER` of a replicated table done here; inactive replicas do it later.
pub const UNFINISHED: u32 = 341;
/// `SESSION_IS_LOCKED`: a query of an HTTP session while the server still holds the session
/// for another (it lets go of it only after the previous answer is sent).
pub const SESSION_IS_LOCKED: u32 = 373;

/// The code in a ClickHouse error message: `Code: 16. DB::Exception: …` (or just `Code: 16`).
pub fn in_message(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// The code of a client error, when the server sent one.
pub fn of(e: &clickhouse::error::Error) -> Option<u32> {
    in_message(&e.to_string())
}

/// What may be logged of an error: `Code: N`, or the error's kind when the server sent none.
pub fn describe(e: &clickhouse::error::Error) -> String {
    match of(e) {
        Some(code) => format!("Code: {code}"),
        None => match e {
            clickhouse::error::Error::Network(_) => "network error".into(),
            clickhouse::error::Error::TimedOut => "timed out".into(),
            _ => "no error code".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_clickhouse_messages() {
        assert_eq!(
            in_message("Code: 16. DB::Exception: No such column utm_term in table events"),
            Some(16)
        );
        assert_eq!(in_message("Code: 241"), Some(241));
        assert_eq!(in_message("bad response: 502 Bad Gateway"), None);
    }

    #[test]
    fn error_code_keeps_the_code_and_drops_quoted_input() {
        let e = clickhouse::error::Error::BadResponse(
            "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected x before: 0f3a9c".into(),
        );
        assert_eq!(describe(&e), "Code: 27");
        assert_eq!(describe(&clickhouse::error::Error::TimedOut), "timed out");
    }
}
