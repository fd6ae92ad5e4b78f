-- Rollups of two dimensions (src/rollup/): per site and local day, for each value of a filter
-- dimension, the report numbers of each value of a breakdown dimension among the visits with
-- that filter value. A report filtered by one `is` on such a dimension (the value the web team
-- clicks on a dashboard) reads these rows instead of stored visits. Only dimensions with few
-- values per day are filter dimensions here (sources, UTM source, medium and campaign, country,
-- device, browser, OS; see `PAIRED` in src/stats/sql/rollups.rs): pages and referrers as
-- filters would multiply the rows by thousands. Counted like rollup_daily: "visitors" are
-- distinct visitors of that day within the pair, additive over days; no visitor hash.
-- Written under the day's version, with rollup_daily, before the day's marker.
CREATE TABLE IF NOT EXISTS {db}.rollup_pairs
(
    site String,
    day Date,
    -- the filter's API dimension name and value (as rollup_daily writes dimension and value)
    filter String,
    filter_value String,
    -- the breakdown's API dimension name and value; 'time:hour' holds the local hour '00' ... '23'
    dimension String,
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
-- A report reads one filter value and one breakdown dimension over many days.
ORDER BY (site, filter, filter_value, dimension, day, value);

-- Whether a day's computation wrote rollup_pairs: days rolled up before this migration (or
-- folded at ingest in aggregate-only mode) read as 0, and reports that need pairs read stored
-- visits for periods that hold such a day until the rollup job has computed it again.
ALTER TABLE {db}.rollup_days ADD COLUMN pairs UInt8;
