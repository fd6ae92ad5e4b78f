-- The stored unit rows again, ordered by page (src/visits/, `stats::sql::units`): a report
-- filtered by a page (`is`, `contains`, `matches`, wildcards) reads the rows of the matching
-- pages alone instead of every row of its period. `visits` is ordered by site and time, so a
-- page filter pruned nothing there: countries of the visitors of `contains "/blog/"` read
-- every pageview of the period (BENCHMARKS.md, "Reports").
--
-- One row per row of `visits`, with its page in `page_path` / `page_host`: a pageview's or
-- custom event's own page (`page_no` 0); a visit row (kind 0) is copied once per page the visit
-- viewed, `page_no` being the page's position in `pages_path` (from 1). A report counts a
-- visit on one copy alone: the copy of its entry page when grouped by page, else the copy of
-- the first of its pages that the filter matches. Nothing here that `visits` does not hold.
--
-- Written by the visit job with the slice's rows (or copied from `visits` for slices stored
-- before this migration) under its own `version`, which the slice's marker names in
-- `visit_slices.pages`; a report reads this table only when every slice it reads has one.
CREATE TABLE IF NOT EXISTS {db}.visit_pages
(
    site String,
    slice DateTime('UTC'),
    version UInt64,
    kind UInt8,
    ts DateTime('UTC'),
    day_visitor UInt64,
    path String,
    host String,
    pages_path Array(String),
    pages_host Array(String),
    entry String,
    exit String,
    source String,
    referrer String,
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_content String,
    utm_term String,
    country String,
    device String,
    browser String,
    os String,
    duration UInt32,
    pageviews UInt32,
    bounce UInt8,
    page_visit UInt8,
    page_ms UInt32,
    page_sd UInt8,
    has_sd UInt8,
    name String,
    props_keys Array(String),
    props_values Array(String),
    page_path String,
    page_host String,
    page_no UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site, page_path, ts);

-- Which pages have rows in `visit_pages` on which UTC day: a `contains` or `matches` filter is
-- turned into the list of matching pages here (a few thousand rows a day), and that list is
-- what `visit_pages` is read by. Every page of a computation's rows is written, whatever its
-- version: a page listed that a report then finds no current row of costs nothing.
CREATE TABLE IF NOT EXISTS {db}.visit_page_days
(
    site String,
    day Date,
    page_path String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, page_path);

-- The `version` of the slice's rows in visit_pages (0: none), on the marker of the slice's
-- computation it copies. Slices stored before this migration have 0 until the visit job has
-- copied them, then a second marker of the same computation names the copy.
ALTER TABLE {db}.visit_slices ADD COLUMN pages UInt64;
