-- Storing visits in the steady state, each event read about once (src/visits/): a slice's
-- statement reads its own hours' events and the events of the visits still open at the end of
-- the hour before, instead of the 25.5 hours before it. On `events` (ordered by day, then
-- visitor) an hour's events are spread over the whole day, so every such statement read whole
-- days: 70,000 events per CPU-second for a site of 2.3 M events a day, against 212,000 this way
-- (BENCHMARKS.md, "Carrying open visits").
--
-- `events_by_hour`: the raw events again, as they are inserted, ordered by the hour first. The
-- same columns and the same retention as `events` (retention.raw_days, a day at a time): it
-- holds the visitor hash as `events` does, nothing more. Readers bound `toStartOfHour(ts)`
-- themselves: ClickHouse 18.16 does not derive it from a condition on `ts`. The view copies only
-- what is inserted after it exists; the row with the empty site marks when this server began
-- (ten minutes on, for collectors whose clock runs ahead): the visit job reads this table only
-- for hours from the latest such mark on, and `events` before it. On a cluster every replica
-- runs this file; the view fires on the replica an insert reached and the table is replicated.
CREATE TABLE IF NOT EXISTS {db}.events_by_hour
(
    site String,
    ts DateTime('UTC'),
    micros UInt32,
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
    source String,
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
ORDER BY (site, toStartOfHour(ts), visitor, ts);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_hour_mv TO {db}.events_by_hour
AS SELECT site, ts, micros, visitor, name, host, path, query, utm_source, utm_medium,
    utm_campaign, utm_content, utm_term, referrer_host, source, country, device, browser, os,
    screen, engaged_ms, scroll_depth, interactive, props_keys, props_values, event_id
FROM {db}.events;

INSERT INTO {db}.events_by_hour (site, ts)
SELECT '', toStartOfMinute(now()) + 600;

-- `visit_carry`: the raw events of the visits still open at the end of a stored batch of
-- slices (its last hour in `slice`, its computation's `version`), from each such visit's first
-- event on, for the next batch to read instead of the hours before it. The visitor hash and the
-- event columns a visit is built from, as in `events`; partitioned by each event's own UTC day,
-- so that retention drops it with that day's raw events (retention.raw_days), never later
-- (a carry holds events of up to 25.5 hours before its slice). `visit_slices.carry` says a computation wrote its carry (a batch
-- without open visits at its end has no rows here).
CREATE TABLE IF NOT EXISTS {db}.visit_carry
(
    site String,
    slice DateTime('UTC'),
    version UInt64,
    ts DateTime('UTC'),
    micros UInt32,
    visitor UInt64,
    name String,
    host String,
    path String,
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_content String,
    utm_term String,
    referrer_host String,
    source String,
    country String,
    device String,
    browser String,
    os String,
    screen String,
    engaged_ms UInt32,
    scroll_depth UInt8,
    props_keys Array(String),
    props_values Array(String),
    event_id UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (site, slice, version, visitor, ts);

ALTER TABLE {db}.visit_slices ADD COLUMN carry UInt8;
