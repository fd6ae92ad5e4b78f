#!/usr/bin/env python3
"""A by-hand prototype of the visit job's steady state with carried open visits (issue 14).

Not the shipped job: it measures a design before it is built (BENCHMARKS.md, "Carrying open
visits"). It copies the raw events of `--source-db` (a database `tally` migrated and filled,
such as the reports benchmark's `tally_bench_365d`) `--copies` times, with the visitor hash
changed per copy, into two tables of a scratch database `tally_proto`: one ordered like
`events` (day, then visitor) and one ordered by the hour first. Then it stores the visits of
`--hours` hours from `--day` on, `--batch` hours per statement, three ways:

  a  today's statement (`visits::sql::store`), on the day-first table;
  b  the same statement reading the batch's own events (to its end plus the timeout) and the
     events of the visits still open at the end of the hour before it, from the `carry`
     table (on the table named by --order);
  c  the statement that writes that carry for the next batch.

and prints each way's statements, CPU, rows read and largest memory (`system.query_log`), and
a checksum of the rows a and b stored, which must be equal.

The storing statement is taken from ClickHouse's query log: run `tally visits` on the source
database once with query logging on (`scripts/clickhouse.sh log-queries`); its last statement
that stored one visitor range (`INSERT INTO <db>.visits ...` without `visitor >=`) is the
template whose bounds this script rewrites. The source's visit timeout must be 1,800 s.

  python3 scripts/prototype_visit_carry.py --ch http://127.0.0.1:18125 \
      --source-db tally_bench_365d --copies 20 --day 2026-12-04 --hours 24 --batch 1
"""
import argparse
import datetime
import re
import time
import urllib.error
import urllib.request

TIMEOUT = 1800
MAX_VISIT = 90000  # visits::units::MAX_VISIT_SECONDS
COLS = ("site, ts, micros, visitor, name, host, path, query, utm_source, utm_medium, utm_campaign, "
        "utm_content, utm_term, referrer_host, source, country, device, browser, os, screen, "
        "engaged_ms, scroll_depth, interactive, props_keys, props_values, event_id")
CPU = ("(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')] + "
       "ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')]) / 1e6")
ROW = ("site, slice, kind, ts, day_visitor, path, host, pages_path, pages_host, entry, exit, "
       "source, referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, "
       "device, browser, os, duration, pageviews, bounce, page_visit, page_ms, page_sd, has_sd, "
       "name, props_keys, props_values")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ch", default="http://127.0.0.1:18125")
    ap.add_argument("--source-db", required=True)
    ap.add_argument("--site", default="big.example")
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--day", required=True, help="first UTC hour's date, YYYY-MM-DD")
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--order", choices=["hour", "day"], default="hour",
                    help="the order of the table the carried way reads")
    ap.add_argument("--keep-data", action="store_true", help="reuse tally_proto's copies")
    a = ap.parse_args()

    def q(sql):
        try:
            return urllib.request.urlopen(a.ch + "/", data=sql.encode()).read().decode()
        except urllib.error.HTTPError as e:
            raise SystemExit(e.read().decode()[:2000] + "\n" + sql[:2000])

    src, site = a.source_db, "'" + a.site + "'"
    template = q(
        f"SELECT query FROM system.query_log WHERE type = 2 AND query LIKE 'INSERT INTO {src}.visits (site%' "
        "AND query NOT LIKE '%visitor >=%' AND query NOT LIKE '%visitor <%' ORDER BY event_time DESC LIMIT 1 FORMAT TSVRaw")
    if not template.strip():
        raise SystemExit(f"no storing statement of {src} in the query log: run `tally visits` on it first")
    template = template.replace(f"{src}.", "tally_proto.")

    if not a.keep_data:
        q("DROP DATABASE IF EXISTS tally_proto")
        q("CREATE DATABASE tally_proto")
        cols = q(f"SELECT name, type FROM system.columns WHERE database = '{src}' AND table = 'events' FORMAT TSV")
        coldef = ", ".join(" ".join(line.split("\t")) for line in cols.strip().split("\n")).replace("\\'", "'")
        q(f"CREATE TABLE tally_proto.events_day ({coldef}) ENGINE = MergeTree PARTITION BY toYYYYMMDD(ts) "
          "ORDER BY (site, toDate(ts), visitor, ts)")
        q(f"CREATE TABLE tally_proto.events_hour ({coldef}) ENGINE = MergeTree PARTITION BY toYYYYMMDD(ts) "
          "ORDER BY (site, toStartOfHour(ts), visitor, ts)")
        q(f"CREATE TABLE tally_proto.carry (slice DateTime('UTC'), {coldef}) ENGINE = MergeTree "
          "PARTITION BY toYYYYMMDD(slice) ORDER BY (site, slice, visitor, ts)")
        q(f"CREATE TABLE tally_proto.visits_a AS {src}.visits")
        q(f"CREATE TABLE tally_proto.visits_b AS {src}.visits")
        names = [line.split("\t")[0] for line in cols.strip().split("\n")]
        sel = ", ".join("bitXor(visitor, intHash64(i))" if c == "visitor" else
                        "event_id + i" if c == "event_id" else c for c in names)
        for t in ("events_day", "events_hour"):
            q(f"INSERT INTO tally_proto.{t} SELECT {sel} FROM {src}.events ARRAY JOIN range({a.copies}) AS i")
            for (p,) in [r.split("\t") for r in q(
                    f"SELECT DISTINCT partition FROM system.parts WHERE database = 'tally_proto' AND table = '{t}' AND active FORMAT TSV").split()]:
                q(f"OPTIMIZE TABLE tally_proto.{t} PARTITION {p} FINAL")
    for t in ("visits_a", "visits_b", "carry"):
        q(f"TRUNCATE TABLE tally_proto.{t}")

    carried = "tally_proto.events_hour" if a.order == "hour" else "tally_proto.events_day"

    def dt(x):
        return f"toDateTime({x}, 'UTC')"

    def hours_of(table, lo, hi):
        # 18.16 prunes an hour-first table only by a condition on the key's own expression.
        extra = f"toStartOfHour(ts) >= toStartOfHour({dt(lo)}) AND toStartOfHour(ts) < {dt(hi)} AND " \
            if table.endswith("events_hour") else ""
        return f"site = {site} AND {extra}ts >= {dt(lo)} AND ts < {dt(hi)}"

    def store(h, mode, tag):
        lo, end = h - MAX_VISIT - TIMEOUT, h + a.batch * 3600
        hi = end + TIMEOUT
        table = "tally_proto.events_day" if mode == "a" else carried
        s = template.replace("INSERT INTO tally_proto.visits ", f"/* {tag} */ INSERT INTO tally_proto.visits_{mode} ", 1)
        s = re.sub(r"ts >= toDateTime\(\d+, 'UTC'\) AND ts < toDateTime\(\d+, 'UTC'\)\n",
                   f"ts >= {dt(lo)} AND ts < {dt(hi)}\n", s)
        s = re.sub(r"visitor IN \(SELECT visitor FROM tally_proto\.events WHERE site = '[^']*' "
                   r"AND ts >= toDateTime\(\d+, 'UTC'\) AND ts < toDateTime\(\d+, 'UTC'\)\)",
                   f"visitor IN (SELECT visitor FROM {table} WHERE {hours_of(table, h, end)})", s)
        s = re.sub(r"WHERE slice >= toDateTime\(\d+, 'UTC'\) AND slice < toDateTime\(\d+, 'UTC'\)",
                   f"WHERE slice >= {dt(h)} AND slice < {dt(end)}", s)
        if mode == "a":
            source = table
        else:
            source = (f"(SELECT {COLS} FROM {table} WHERE {hours_of(table, h, hi)} UNION ALL "
                      f"SELECT {COLS} FROM tally_proto.carry WHERE site = {site} AND slice = {dt(h - 3600)})")
        s = s.replace("FROM tally_proto.events\n", f"FROM {source}\n")
        if "tally_proto.events\n" in s or "tally_proto.events " in s:
            raise SystemExit("the template's shape changed: " + s[:500])
        q(s)

    def carry(h, tag, first=False):
        # The events, before the batch's end, of each visitor whose last one lies within the
        # timeout of it, from the start of that visitor's last visit, cut where the next
        # batch's read range starts.
        end = h + a.batch * 3600
        lo_next = end - MAX_VISIT - TIMEOUT
        if first:
            source = f"(SELECT {COLS} FROM tally_proto.events_day WHERE {hours_of('events_day', lo_next, end)})"
        else:
            source = (f"(SELECT {COLS} FROM {carried} WHERE {hours_of(carried, h, end)} UNION ALL "
                      f"SELECT {COLS} FROM tally_proto.carry WHERE site = {site} AND slice = {dt(h - 3600)} "
                      f"AND ts >= {dt(lo_next)})")
        q(f"""/* {tag} */ INSERT INTO tally_proto.carry (slice, {COLS})
SELECT {dt(end - 3600)}, {COLS}
FROM {source}
ANY INNER JOIN (
    SELECT visitor, arrayReduce('max', arrayMap((x, d, i) -> if(i = 1 OR d > {TIMEOUT}, x, 0),
        t, arrayDifference(t), arrayEnumerate(t))) AS chain_start
    FROM (SELECT visitor, arraySort(groupArray(toUInt32(ts))) AS t FROM {source}
          GROUP BY visitor HAVING max(ts) >= {dt(end - TIMEOUT)})
) USING visitor
WHERE toUInt32(ts) >= chain_start""")

    day = int(datetime.datetime.strptime(a.day, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp())
    run = int(time.time())
    # The carry of the hour before the first batch, from the full read range.
    saved = a.batch
    a.batch = 1
    carry(day - 3600, f"proto {run} first", first=True)
    a.batch = saved
    for i in range(0, a.hours, a.batch):
        h = day + i * 3600
        store(h, "a", f"proto {run} a {i}")
        store(h, "b", f"proto {run} b {i}")
        carry(h, f"proto {run} c {i}")
    q("SYSTEM FLUSH LOGS")
    events = int(q(f"SELECT count() FROM tally_proto.events_day WHERE {hours_of('events_day', day, day + a.hours * 3600)}"))
    print(f"{events:,} events in {a.hours} hours from {a.day} UTC ({a.copies} copies of {src}), "
          f"{a.batch} hour(s) per statement, carried way on the {a.order}-first table")
    cpu = {}
    for way, what in (("a", "today's statement"), ("b", "carried: store"), ("c", "carried: carry")):
        n, c, rows, mem = q(
            f"SELECT count(), sum({CPU}), sum(read_rows), max(memory_usage) FROM system.query_log "
            f"WHERE type = 2 AND query LIKE '/* proto {run} {way} %' FORMAT TSV").split()
        cpu[way] = float(c)
        print(f"  {what}: {n} statements, {float(c):.2f} CPU-s, {int(rows):,} rows read, "
              f"largest {int(mem) / 1048576:.0f} MiB")
    print(f"  events per CPU-second: today's {events / cpu['a']:,.0f}, carried {events / (cpu['b'] + cpu['c']):,.0f}")
    sums = [q(f"SELECT count(), sum(cityHash64({ROW})) FROM tally_proto.visits_{m} FORMAT TSV").split() for m in "ab"]
    print(f"  stored rows: today's {int(sums[0][0]):,}, carried {int(sums[1][0]):,}; "
          f"same rows: {'yes' if sums[0] == sums[1] else 'NO'}")


if __name__ == "__main__":
    main()
