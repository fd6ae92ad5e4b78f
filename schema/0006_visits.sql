-- Visits, stored without the visitor hash once they have ended (src/visits/), so that every
-- report, filtered or not, reads one row per visit and per pageview instead of building visits
-- from raw events, and for as long as rollups are kept.
--
-- One table holds the three kinds of record a report counts ("units"):
--   kind 0  a visit, at its start (first pageview): its entry page in `path`/`host`, its pages,
--           duration, pageviews and bounce;
--   kind 1  a pageview of a visit, at its time; `page_visit` = 1 on the first view of a page in
--           its visit, which carries the page's time on page and scroll depth;
--   kind 2  a custom event of a visit, at its time, with its allow-listed properties.
-- Every record carries its visit's attributes (entry and exit page, source, referrer, UTM,
-- country, device, browser, OS, duration), so filters need no join. Nothing links two visits:
-- there is no visitor hash and no visit id. `day_visitor` is a one-way hash of the visitor hash
-- and the site's local date of the record: it counts distinct visitors per local day exactly
-- (the API's "visitors"), and differs for the same person on any other day.
--
-- The visit job computes visits a UTC hour at a time: `slice` is the hour in which the visit's
-- last event lies (a visit is stored once it has ended). Each computation of a slice writes its
-- rows under a new `version`, then marks it done in visit_slices; reads take, per slice, the
-- rows of the highest version marked done. So a slice appears whole or not at all, two
-- collectors computing it at once never double-count, and a recomputation (events that arrived
-- late) replaces it.
CREATE TABLE IF NOT EXISTS {db}.visits
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
    props_values Array(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site, ts);

-- The visit job's markers: a slice claimed by a collector (done = 0), then done (done = 1) with
-- how many raw events the computation read (a later recount that differs means events arrived
-- late: the slice is computed again), how many visits it stored and when the earliest of them
-- started (the rollup job redoes the days a recomputed slice's visits started on).
CREATE TABLE IF NOT EXISTS {db}.visit_slices
(
    site String,
    slice DateTime('UTC'),
    version UInt64,
    done UInt8,
    at DateTime('UTC'),
    events UInt64,
    visits UInt64,
    first_start DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(slice)
ORDER BY (site, slice);
