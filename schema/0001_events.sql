-- Raw events: one row per accepted beacon, already anonymous when it arrives here.
-- No IP address, user agent, full URL or query string is ever written: `visitor` is a
-- 64-bit hash under a salt that rotates daily; `query` holds allow-listed parameters only.
-- Partitioned by UTC day so that retention drops whole partitions (no row rewrites).
CREATE TABLE IF NOT EXISTS {db}.events
(
    site String,
    ts DateTime('UTC'),
    visitor UInt64,
    name String,
    host String,
    path String,
    query String,
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_content String,
    utm_term String,
    referrer_host String,
    country String,
    device String,
    browser String,
    os String,
    screen String,
    engaged_ms UInt32,
    scroll_depth UInt8,
    interactive UInt8,
    props_keys Array(String),
    props_values Array(String),
    event_id UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (site, toDate(ts), visitor, ts);
