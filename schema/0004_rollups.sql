-- Rollups: per site and local day, the numbers every report is summed from, without any visitor
-- hash, so they can be kept longer than raw events. Written by the rollup job (src/rollup.rs)
-- once a day is complete, from the same visit SQL as raw-event reports (src/stats/sql.rs).
-- Every count is additive over days ("visitors" are distinct visitors of that day, which is how
-- the API defines visitors over several days), so a period's numbers are sums of its days.
-- Each computation of a day writes its rows under a random `version`, then a row in rollup_days
-- naming that version; reads take, per day, the rows of the highest version named there. So a
-- day appears whole or not at all, and two collectors rolling up the same day, or a
-- recomputation, never double-count (and reads need no FINAL).
CREATE TABLE IF NOT EXISTS {db}.rollup_daily
(
    site String,
    day Date,
    -- '' for the whole site, else an API dimension name (event:page, visit:source, time:hour, ...)
    dimension String,
    -- the dimension's value as the API shows it; for time:hour the local hour '00' ... '23'
    value String,
    pageviews UInt64,
    visitors UInt64,
    visits UInt64,
    bounces UInt64,
    duration_sum UInt64,
    visit_pageviews UInt64,
    page_visits UInt64,
    page_ms_sum UInt64,
    scroll_count UInt64,
    scroll_sum UInt64,
    version UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
-- Dimension before day: a report reads one dimension's rows over many days.
ORDER BY (site, dimension, day, value);

-- Visits per whole second of duration (started that day): exact duration percentiles over any
-- period without keeping one row per visit.
CREATE TABLE IF NOT EXISTS {db}.rollup_durations
(
    site String,
    day Date,
    seconds UInt32,
    visits UInt64,
    version UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, seconds);

-- Which days are rolled up, when, and under which version; a day is rolled up once complete.
CREATE TABLE IF NOT EXISTS {db}.rollup_days
(
    site String,
    day Date,
    computed DateTime('UTC'),
    events UInt64,
    version UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site, day);
