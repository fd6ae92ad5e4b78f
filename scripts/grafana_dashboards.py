#!/usr/bin/env python3
"""Generates dashboards/tally-overview.json: `python3 scripts/grafana_dashboards.py dashboards/tally-overview.json`.

The panels repeat the stats API's visit SQL; edit it here, regenerate, and run
`cargo test --test it grafana` (it compares every panel with the API)."""
import json
import sys

S = "${site:singlequote}"
Z = "${tz:singlequote}"
F = "$__fromTime"
T = "$__toTime"
# Grafana's range is inclusive of its last second ($__timeFilter writes `<= $__toTime`);
# tally's periods are [from, to): the end is the second after $__toTime.
E = "($__toTime + 1)"
TIMEOUT = "${visit_timeout_s}"
BOUNCE = "${bounce_ms}"
HOURLY = f"intDiv(toUInt32({E}) - toUInt32({F}), 3600) <= 48"


def indent(text, n):
    pad = " " * n
    return "\n".join(pad + line if line else line for line in text.splitlines())


# Local days wholly inside the range whose rollup is done, with the version to read (the
# highest named in rollup_days). Reads of rollups take these days; raw events the rest.
ROLLED = f"""SELECT day, max(version) FROM rollup_days
WHERE site = {S} AND day >= toDate({F}, {Z}) AND day <= toDate({T}, {Z})
GROUP BY day
HAVING toDateTime(day, {Z}) >= {F} AND toDateTime(day + 1, {Z}) <= {E}"""

ROLLED_DAYS = f"""SELECT day FROM rollup_days
WHERE site = {S} AND day >= toDate({F}, {Z}) AND day <= toDate({T}, {Z})
GROUP BY day
HAVING toDateTime(day, {Z}) >= {F} AND toDateTime(day + 1, {Z}) <= {E}"""


def units():
    """Visits cut from raw events (tally's src/stats/sql.rs, fewer attributes), one row per
    visit (kind 0, at its start), pageview (kind 1) and page visit (kind 2)."""
    return f"""SELECT
    r.1 AS kind, r.2 AS ts, visitor, r.3 AS path, source, country, device,
    duration, vpageviews, bounce, r.5 AS page_ms, r.6 AS page_sd, r.7 AS has_sd
FROM
(
    SELECT
        visitor,
        minIf(ts, pv) AS start,
        toUInt32(toUInt32(max(ts)) - toUInt32(start)) AS duration,
        toUInt32(countIf(pv)) AS vpageviews,
        toUInt8(vpageviews = 1 AND sumIf(engaged_ms, name = 'engagement') < {BOUNCE}) AS bounce,
        -- the visit's attributes are those of its first pageview
        argMinIf((path, host, ev_source, ev_country, ev_device), ord, pv) AS first,
        first.1 AS entry,
        first.2 AS entry_host,
        first.3 AS source,
        first.4 AS country,
        first.5 AS device,
        groupArrayIf((ts, path, host), pv) AS pvs,
        groupArrayIf((path, host, engaged_ms, scroll_depth), name = 'engagement') AS engs,
        groupUniqArrayIf((path, host), pv) AS pages,
        arrayConcat(
            [(toUInt8(0), start, entry, entry_host, toUInt32(0), toUInt8(0), toUInt8(0))],
            arrayMap(p -> (toUInt8(1), p.1, p.2, p.3, toUInt32(0), toUInt8(0), toUInt8(0)), pvs),
            arrayMap(pg -> (
                toUInt8(2),
                arrayReduce('min', arrayMap(p -> p.1, arrayFilter(p -> p.2 = pg.1 AND p.3 = pg.2, pvs))),
                pg.1,
                pg.2,
                toUInt32(arraySum(arrayMap(x -> x.3, arrayFilter(x -> x.1 = pg.1 AND x.2 = pg.2, engs)))),
                toUInt8(arrayReduce('max', arrayMap(x -> x.4, arrayFilter(x -> x.1 = pg.1 AND x.2 = pg.2, engs)))),
                toUInt8(notEmpty(arrayFilter(x -> x.1 = pg.1 AND x.2 = pg.2, engs)))
            ),
            -- engs named outside a lambda: ClickHouse 18.16 prunes columns used only in lambdas
            if(empty(engs), pages, pages))
        ) AS units
    FROM
    (
        SELECT
            visitor, vno, ord, e.1 AS ts, e.2 AS event_id, e.3 AS name, e.4 AS path,
            e.5 AS host, e.6 AS engaged_ms, e.7 AS scroll_depth, e.8 AS ev_source,
            e.9 AS ev_country, e.10 AS ev_device,
            e.3 = 'pageview' AS pv
        FROM
        (
            SELECT
                visitor,
                arraySort(x -> (x.1, x.2), groupArray((ts, event_id, name, path, host,
                    engaged_ms, scroll_depth, source, country,
                    if(screen != '', screen, device)))) AS evs,
                -- a gap longer than the visit timeout starts a new visit
                arrayCumSum(arrayMap(d -> d > {TIMEOUT},
                    arrayDifference(arrayMap(x -> toUInt32(x.1), evs)))) AS vnos
            FROM events
            -- 6 hours before and after the range, so visits under way at its edges are whole;
            -- events only near rolled-up days are skipped
            WHERE site = {S}
                AND ts >= {F} - greatest(21600, {TIMEOUT}) AND ts < {E} + 21600
                AND NOT (toDate(ts - 21600, {Z}) IN (
{indent(ROLLED_DAYS, 24)}
                    )
                    AND toDate(ts + 21600, {Z}) IN (
{indent(ROLLED_DAYS, 24)}
                    ))
            GROUP BY visitor
        )
        ARRAY JOIN evs AS e, vnos AS vno, arrayEnumerate(evs) AS ord
    )
    GROUP BY visitor, vno
    HAVING vpageviews > 0
)
ARRAY JOIN units AS r"""


# Units inside the range and not on a rolled-up day.
RAW_WHERE = f"ts >= {F} AND ts < {E}\n    AND toDate(ts, {Z}) NOT IN (\n{indent(ROLLED_DAYS, 8)}\n    )"

COMPONENTS = {
    "pageviews": "countIf(kind = 1)",
    "visitors": f"uniqExactIf(visitor, toDate(ts, {Z}), kind = 1)",
    "visits": "countIf(kind = 0)",
    "bounces": "sumIf(bounce, kind = 0)",
    "duration_sum": "sumIf(duration, kind = 0)",
    "visit_pageviews": "sumIf(vpageviews, kind = 0)",
    "page_visits": "countIf(kind = 2)",
    "page_ms_sum": "sumIf(page_ms, kind = 2)",
    "scroll_count": "countIf(kind = 2 AND has_sd)",
    "scroll_sum": "sumIf(page_sd, kind = 2 AND has_sd)",
}


def rollup_branch(keys, comps, dimension, where_extra=""):
    """Rows of rollup_daily for the rolled-up days; keys: [(expr, alias)]."""
    cols = [f"{e} AS {a}" for e, a in keys] + [f"{c} AS c_{c}" for c in comps]
    return f"""SELECT {", ".join(cols)}
FROM rollup_daily
WHERE site = {S} AND dimension = {dimension}{where_extra}
    AND day >= toDate({F}, {Z}) AND day <= toDate({T}, {Z})
    AND (day, version) IN (
{indent(ROLLED, 8)}
    )"""


def raw_branch(keys, comps, extra_where=""):
    cols = [f"{e} AS {a}" for e, a in keys] + [
        f"toUInt64({COMPONENTS[c]}) AS c_{c}" for c in comps
    ]
    group = "\nGROUP BY " + ", ".join(a for _, a in keys) if keys else ""
    return f"""SELECT {", ".join(cols)}
FROM
(
{indent(units(), 4)}
)
WHERE {RAW_WHERE}{extra_where}{group}"""


def union(*branches):
    return "\n    UNION ALL\n".join(indent(b, 4) for b in branches)


# Metrics from summed components, rounded half away from zero as the stats API does.
def metric(name):
    return {
        "visitors": "sum(c_visitors) AS visitors",
        "visits": "sum(c_visits) AS visits",
        "entries": "sum(c_visits) AS entries",
        "pageviews": "sum(c_pageviews) AS pageviews",
        "views_per_visit": "if(sum(c_visits) = 0, 0, floor(sum(c_visit_pageviews) / sum(c_visits) * 100 + 0.5) / 100) AS views_per_visit",
        "bounce_rate": "if(sum(c_visits) = 0, 0, floor(sum(c_bounces) / sum(c_visits) * 100 + 0.5)) AS bounce_rate",
        "visit_duration": "if(sum(c_visits) = 0, 0, floor(sum(c_duration_sum) / sum(c_visits) + 0.5)) AS visit_duration",
        "time_on_page": "if(sum(c_page_visits) = 0, NULL, floor(sum(c_page_ms_sum) / sum(c_page_visits) / 1000 + 0.5)) AS time_on_page",
        "scroll_depth": "if(sum(c_scroll_count) = 0, NULL, floor(sum(c_scroll_sum) / sum(c_scroll_count) + 0.5)) AS scroll_depth",
    }[name]


NEEDS = {
    "visitors": ["visitors"],
    "visits": ["visits"],
    "entries": ["visits"],
    "pageviews": ["pageviews"],
    "views_per_visit": ["visits", "visit_pageviews"],
    "bounce_rate": ["visits", "bounces"],
    "visit_duration": ["visits", "duration_sum"],
    "time_on_page": ["page_visits", "page_ms_sum"],
    "scroll_depth": ["scroll_count", "scroll_sum"],
}


def comps_for(metrics):
    out = []
    for m in metrics:
        for c in NEEDS[m]:
            if c not in out:
                out.append(c)
    return out


HEADER = """-- tally: {title}
-- The same numbers as tally's stats API (README "Stats API" > "Definitions") for the site,
-- time range and time zone chosen on the dashboard: rolled-up days are read from the rollup
-- tables, the other days (today, a partial first or last day) from raw events."""


def breakdown(title, dim_name, rollup_key, raw_key, alias, metrics, limit):
    comps = comps_for(metrics)
    body = union(
        rollup_branch([(rollup_key, "k")], comps, f"'{dim_name}'"),
        raw_branch([(raw_key, "k")], comps),
    )
    sel = ",\n    ".join([f"k AS {alias}"] + [metric(m) for m in metrics])
    return f"""{HEADER.format(title=title)}
SELECT
    {sel}
FROM
(
{body}
)
GROUP BY k
ORDER BY {metrics[0]} DESC, {alias} ASC
LIMIT {limit}"""


def overview():
    metrics = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"]
    comps = comps_for(metrics)
    body = union(rollup_branch([], comps, "''"), raw_branch([], comps))
    sel = ",\n    ".join(metric(m) for m in metrics)
    return f"""{HEADER.format(title="overview")}
SELECT
    {sel}
FROM
(
{body}
)"""


def timeseries():
    comps = ["visitors", "visits", "pageviews"]
    zero_cols = ", ".join(f"toUInt64(0) AS c_{c}" for c in comps)
    zero = f"""-- every bucket of the range, so that hours and days without visits show 0
SELECT if({HOURLY},
        formatDateTime(least({F} + number * 3600, {E} - 1), '%Y-%m-%d %H:00:00', {Z}),
        concat(toString(toDate({F}, {Z}) + number), ' 00:00:00')) AS label,
    {zero_cols}
FROM numbers(toUInt64(if({HOURLY},
    intDiv(toUInt32({E}) - toUInt32({F}), 3600) + 2,
    toDate({T}, {Z}) - toDate({F}, {Z}) + 1)))"""
    rolled = rollup_branch(
        [(f"if({HOURLY}, concat(toString(day), ' ', value, ':00:00'), concat(toString(day), ' 00:00:00'))", "label")],
        comps,
        f"if({HOURLY}, 'time:hour', '')",
    )
    raw = raw_branch(
        [(f"if({HOURLY}, formatDateTime(ts, '%Y-%m-%d %H:00:00', {Z}), concat(toString(toDate(ts, {Z})), ' 00:00:00'))", "label")],
        comps,
    )
    return f"""{HEADER.format(title="visitors, visits and pageviews over time")}
-- Buckets are local hours for ranges up to 48 hours, else local days (the stats API's rule).
SELECT
    toDateTime(label, {Z}) AS time,
    sum(c_visitors) AS visitors,
    sum(c_visits) AS visits,
    sum(c_pageviews) AS pageviews
FROM
(
{union(zero, rolled, raw)}
)
GROUP BY label
ORDER BY time"""


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def peak_hours():
    zero = """SELECT toUInt8(number + 1) AS wd, toUInt8(0) AS h, toUInt64(0) AS c_visitors
FROM numbers(7)"""
    rolled = rollup_branch(
        [("toUInt8(toDayOfWeek(day))", "wd"), ("toUInt8(toUInt32OrZero(value))", "h")],
        ["visitors"],
        "'time:hour'",
    )
    raw = raw_branch(
        [(f"toUInt8(toDayOfWeek(toDate(ts, {Z})))", "wd"), (f"toUInt8(toHour(ts, {Z}))", "h")],
        ["visitors"],
    )
    hours = ",\n    ".join(f'sumIf(c_visitors, h = {h}) AS "{h:02d}"' for h in range(24))
    days = ", ".join(f"'{d}'" for d in DAYS)
    return f"""{HEADER.format(title="peak hours: visitors by local weekday and hour")}
SELECT
    arrayElement([{days}], wd) AS weekday,
    {hours}
FROM
(
{union(zero, rolled, raw)}
)
GROUP BY wd
ORDER BY wd"""


BUCKETS = ["0-10s", "10-30s", "30s-1m", "1-3m", "3-10m", "10-30m", "30m+"]
BUCKET_EXPR = ("multiIf(duration < 10, '0-10s', duration < 30, '10-30s', duration < 60, '30s-1m', "
               "duration < 180, '1-3m', duration < 600, '3-10m', duration < 1800, '10-30m', '30m+')")


def duration_buckets():
    names = ", ".join(f"'{b}'" for b in BUCKETS)
    zero = f"SELECT arrayJoin([{names}]) AS k, toUInt64(0) AS c_visits"
    rolled = rollup_branch([("value", "k")], ["visits"], "'visit:duration_bucket'")
    raw = raw_branch([(BUCKET_EXPR, "k")], ["visits"], "\n    AND kind = 0")
    return f"""{HEADER.format(title="visits by duration")}
SELECT k AS duration, sum(c_visits) AS visits
FROM
(
{union(zero, rolled, raw)}
)
GROUP BY k
ORDER BY indexOf([{names}], duration)"""


def duration_percentiles():
    rolled = f"""SELECT seconds AS s, visits AS n
FROM rollup_durations
WHERE site = {S}
    AND day >= toDate({F}, {Z}) AND day <= toDate({T}, {Z})
    AND (day, version) IN (
{indent(ROLLED, 8)}
    )"""
    raw = f"""SELECT duration AS s, toUInt64(count()) AS n
FROM
(
{indent(units(), 4)}
)
WHERE {RAW_WHERE}
    AND kind = 0
GROUP BY s"""
    pct = []
    for q, name in [("0.5", "median"), ("0.75", "p75"), ("0.9", "p90")]:
        pct.append(
            f"if(total = 0, NULL, secs[arrayFirstIndex(c -> c > floor({q} * total), cum)]) AS {name}"
        )
    sel = ",\n    ".join(pct)
    return f"""{HEADER.format(title="visit duration percentiles")}
-- Exact percentiles: the duration at 0-based position floor(q * visits) of the sorted
-- durations, from visits per second of duration.
SELECT
    {sel}
FROM
(
    SELECT
        arraySort(x -> x.1, groupArray((s, n))) AS h,
        arrayMap(x -> x.1, h) AS secs,
        arrayCumSum(arrayMap(x -> x.2, h)) AS cum,
        sum(n) AS total
    FROM
    (
        SELECT s, sum(n) AS n
        FROM
        (
{indent(union(rolled, raw), 8)}
        )
        GROUP BY s
    )
)"""


DS = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}


def target(sql, timeseries=False):
    return {
        "refId": "A",
        "datasource": DS,
        "editorType": "sql",
        "format": 0 if timeseries else 1,
        "queryType": "timeseries" if timeseries else "table",
        "rawSql": sql,
        "pluginVersion": "4.0.0",
    }


def panel(pid, title, ptype, sql, grid, description, field_defaults=None, overrides=None,
          options=None, timeseries=False):
    return {
        "id": pid,
        "type": ptype,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": dict(zip(["x", "y", "w", "h"], grid)),
        "fieldConfig": {"defaults": field_defaults or {}, "overrides": overrides or []},
        "options": options or {},
        "targets": [target(sql, timeseries)],
    }


def unit_override(name, unit, extra=None):
    props = [{"id": "unit", "value": unit}]
    if extra:
        props += extra
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def table_options(sort_by=None):
    opts = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if sort_by:
        opts["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return opts


def dashboard():
    stat_opts = {
        "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
        "orientation": "horizontal",
        "textMode": "value_and_name",
        "colorMode": "none",
        "graphMode": "none",
        "justifyMode": "center",
        "wideLayout": True,
    }
    panels = [
        panel(1, "Overview", "stat", overview(), (0, 0, 16, 4),
              "Visitors (distinct visitor and local day: someone who came on three days counts "
              "three times), visits, pageviews, pageviews per visit, bounce rate and mean visit "
              "duration over the time range.",
              {"color": {"mode": "fixed", "fixedColor": "text"}, "decimals": 0},
              [unit_override("views_per_visit", "none", [{"id": "decimals", "value": 2}]),
               unit_override("bounce_rate", "percent"),
               unit_override("visit_duration", "s")],
              stat_opts),
        panel(2, "Visit duration percentiles", "stat", duration_percentiles(), (16, 0, 8, 4),
              "Median, 75th and 90th percentile of visit duration (seconds from a visit's first "
              "pageview to its last event).",
              {"color": {"mode": "fixed", "fixedColor": "text"}, "unit": "s", "decimals": 0,
               "noValue": "no visits"},
              [], stat_opts),
        panel(3, "Visitors, visits and pageviews", "timeseries", timeseries(), (0, 4, 24, 8),
              "Per local hour (ranges up to 48 hours) or local day. Buckets without visits are 0.",
              {"color": {"mode": "palette-classic"},
               "custom": {"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1,
                          "barAlignment": -1, "showPoints": "never", "spanNulls": False,
                          "axisSoftMin": 0}},
              [], {"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
                   "tooltip": {"mode": "multi", "sort": "none"}},
              timeseries=True),
        panel(4, "Top pages", "table",
              breakdown("top pages", "event:page", "value", "path", "page",
                        ["visitors", "pageviews", "entries", "bounce_rate", "time_on_page", "scroll_depth"], 100),
              (0, 12, 24, 10),
              "Pages by visitors. Entries, bounce rate: the visits that entered on the page. "
              "Time on page: mean engaged time of the page's page visits. Scroll depth: mean "
              "maximum scroll depth where reported.",
              {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
              [unit_override("bounce_rate", "percent"), unit_override("time_on_page", "s"),
               unit_override("scroll_depth", "percent")],
              table_options()),
        panel(5, "Sources", "table",
              breakdown("sources", "visit:source", "value", "if(source = '', 'Direct / None', source)", "source",
                        ["visitors", "visits", "bounce_rate", "visit_duration"], 50),
              (0, 22, 12, 9),
              "Where visits came from: UTM source, else the referrer grouped (Google, Bing, ...), "
              "else the referrer host, else Direct / None.",
              {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
              [unit_override("bounce_rate", "percent"), unit_override("visit_duration", "s")],
              table_options()),
        panel(6, "Countries", "table",
              breakdown("countries", "visit:country", "value", "if(country = '', '(not set)', country)", "country",
                        ["visitors", "visits"], 50),
              (12, 22, 6, 9),
              "ISO 3166-1 country of the visit's first pageview; (not set) when unknown.",
              {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}}, [], table_options()),
        panel(7, "Devices", "piechart",
              breakdown("devices", "visit:device", "value",
                        "if(device = '', '(not set)', concat(upper(substring(device, 1, 1)), substring(device, 2)))",
                        "device", ["visitors"], 10),
              (18, 22, 6, 9),
              "Visitors by device class (from the screen width, else the user agent).",
              {"color": {"mode": "palette-classic"}}, [],
              {"reduceOptions": {"values": True, "calcs": [], "fields": ""}, "pieType": "donut",
               "displayLabels": ["name", "percent"],
               "legend": {"showLegend": True, "displayMode": "table", "placement": "right", "values": ["value"]},
               "tooltip": {"mode": "single", "sort": "none"}}),
        panel(8, "Peak hours", "table", peak_hours(), (0, 31, 24, 9),
              "Visitors by local weekday and hour of the day (the colour is the heatmap; Grafana's "
              "heatmap panel needs time on its x axis).",
              {"min": 0, "color": {"mode": "continuous-GrYlRd"},
               "custom": {"align": "center", "cellOptions": {"type": "color-background", "mode": "basic"}}},
              [{"matcher": {"id": "byName", "options": "weekday"},
                "properties": [{"id": "custom.cellOptions", "value": {"type": "auto"}},
                               {"id": "custom.align", "value": "left"}]}],
              table_options()),
        panel(9, "Visit durations", "barchart", duration_buckets(), (0, 40, 12, 8),
              "Visits by duration bucket (lower bound inclusive).",
              {"color": {"mode": "palette-classic"}, "custom": {"fillOpacity": 80, "lineWidth": 1}},
              [], {"xField": "duration", "orientation": "vertical", "showValue": "auto",
                   "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom", "calcs": []},
                   "tooltip": {"mode": "single", "sort": "none"}}),
    ]
    site_sql = ("SELECT site FROM (SELECT DISTINCT site FROM events UNION ALL "
                "SELECT DISTINCT site FROM rollup_days) GROUP BY site ORDER BY site")
    templating = [
        {"name": "datasource", "label": "ClickHouse", "type": "datasource",
         "query": "grafana-clickhouse-datasource", "current": {}, "hide": 0, "refresh": 1,
         "regex": "", "options": []},
        {"name": "site", "label": "Site", "type": "query", "datasource": DS,
         "query": site_sql, "definition": site_sql, "refresh": 1, "sort": 1,
         "multi": False, "includeAll": False, "current": {}, "hide": 0, "options": [], "regex": "",
         "description": "A site's domain, as in tally's [[sites]] domain."},
        {"name": "tz", "label": "Time zone", "type": "textbox", "query": "Europe/Amsterdam",
         "current": {"text": "Europe/Amsterdam", "value": "Europe/Amsterdam"}, "hide": 0,
         "options": [{"selected": True, "text": "Europe/Amsterdam", "value": "Europe/Amsterdam"}],
         "description": "The site's time_zone from tally's config (IANA name): days and hours are "
                        "counted in it, and rolled-up days were computed in it."},
        {"name": "visit_timeout_s", "type": "constant", "query": "1800", "hide": 2,
         "current": {"text": "1800", "value": "1800"},
         "options": [{"selected": True, "text": "1800", "value": "1800"}],
         "description": "tally's visits.timeout_minutes x 60."},
        {"name": "bounce_ms", "type": "constant", "query": "10000", "hide": 2,
         "current": {"text": "10000", "value": "10000"},
         "options": [{"selected": True, "text": "10000", "value": "10000"}],
         "description": "tally's visits.bounce_engaged_seconds x 1000."},
    ]
    return {
        "__inputs": [],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "grafana-clickhouse-datasource", "name": "ClickHouse", "version": "4.0.0"},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "table", "name": "Table", "version": ""},
            {"type": "panel", "id": "piechart", "name": "Pie chart", "version": ""},
            {"type": "panel", "id": "barchart", "name": "Bar chart", "version": ""},
        ],
        "uid": "tally-overview",
        "title": "tally: site overview",
        "description": "tally's reports for one site (visitors, pages, sources, countries, devices, "
                       "peak hours, visit durations), the same numbers as its stats API.",
        "tags": ["tally", "web analytics"],
        "timezone": "Europe/Amsterdam",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "",
        "time": {"from": "now-7d/d", "to": "now-1d/d"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": templating},
        "panels": panels,
    }


if __name__ == "__main__":
    out = sys.argv[1]
    with open(out, "w") as f:
        json.dump(dashboard(), f, indent=2, ensure_ascii=False)
        f.write("\n")
