-- Raw events counted per site and UTC minute, as they are inserted, so that the jobs that ask
-- "which hours have events, and how many" read a few thousand rows instead of every raw event
-- kept: the visit job recounts every read range each minute to find events that arrived late
-- (src/visits/), the rollup job looks for hours whose visits are not stored yet (src/rollup/).
-- Counting the raw events themselves cost 33 ns of ClickHouse CPU per event kept, each minute:
-- more than a core for a site with 10,000 events/s and three days of raw events kept
-- (BENCHMARKS.md, "Storing visits").
--
-- Holds counts alone (no visitor hash, no page): kept and dropped with the raw events.
--
-- The view counts only what is inserted after it exists. The row with the empty site marks
-- when this server began counting (ten minutes on, for collectors whose clock runs ahead; its
-- `n` is 1 because a summing merge deletes rows whose sums are all 0):
-- the jobs count raw events for the minutes before the latest such mark, which retention
-- drops with the raw events of its day. On a cluster every replica runs this file; the view
-- fires on the replica an insert reached and the table is replicated, so each insert is
-- counted once on its shard.
CREATE TABLE IF NOT EXISTS {db}.events_minutes
(
    site String,
    minute DateTime('UTC'),
    n UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (site, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_minutes_mv TO {db}.events_minutes
AS SELECT site, toStartOfMinute(ts) AS minute, count() AS n FROM {db}.events GROUP BY site, minute;

INSERT INTO {db}.events_minutes (site, minute, n)
SELECT '', toStartOfMinute(now()) + 600, 1;
