#!/usr/bin/env python3
"""Reports on today, asked of two running tallies on the same data, their requests alternating:
per report, the median of the client's ms, of the rows ClickHouse read and of its CPU per
request (system.query_log, so run `scripts/clickhouse.sh log-queries` first), and whether both
answered the same. It measures; it never fails on a timing.

    python3 scripts/compare_today_reports.py --a http://127.0.0.1:18990 --b http://127.0.0.1:18991 \\
        --ch http://127.0.0.1:18126 --db tally_bench_visits --site big.example --token TOKEN

Each request runs alone, a second apart from the others, so that the queries ClickHouse logged
between its start and end are its own.
"""
import argparse
import json
import statistics
import time
import urllib.request

QUERY_CPU = ("(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')]"
             " + ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')]) / 1e6")

CASES = {
    "aggregate, no filter": {
        "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]},
    "top pages, visit:country is NL": {
        "metrics": ["visitors", "pageviews"], "dimensions": ["event:page"],
        "filters": [["is", "visit:country", ["NL"]]], "pagination": {"limit": 10}},
    "countries, event:page contains /blog/": {
        "metrics": ["visitors"], "dimensions": ["visit:country"],
        "filters": [["contains", "event:page", ["/blog/"]]]},
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", required=True, help="first tally's base URL")
    p.add_argument("--b", required=True, help="second tally's base URL")
    p.add_argument("--ch", required=True, help="ClickHouse HTTP URL")
    p.add_argument("--db", required=True, help="the tallies' database")
    p.add_argument("--site", required=True)
    p.add_argument("--token", required=True, help="an API token both accept")
    p.add_argument("--rounds", type=int, default=4, help="timed requests each, after one warm-up")
    a = p.parse_args()

    def ch(sql):
        req = urllib.request.Request(a.ch.rstrip("/") + "/", data=sql.encode())
        return urllib.request.urlopen(req).read().decode()

    def ask(base, body):
        req = urllib.request.Request(
            base.rstrip("/") + "/api/v2/query", data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {a.token}", "Content-Type": "application/json"})
        t0 = time.time()
        out = urllib.request.urlopen(req, timeout=600).read().decode()
        return (time.time() - t0) * 1000, json.loads(out)["results"]

    for name, case in CASES.items():
        body = dict(case, site_id=a.site, date_range="day")
        runs = {"a": [], "b": []}
        answers = {}
        for i in range(a.rounds + 1):
            for side, base in (("a", a.a), ("b", a.b)):
                time.sleep(1.1)
                t0 = int(time.time())
                ms, answers[side] = ask(base, body)
                time.sleep(1.1)
                t1 = int(time.time())
                ch("SYSTEM FLUSH LOGS")
                rows, cpu = ch(
                    f"SELECT sum(read_rows), sum({QUERY_CPU}) FROM system.query_log WHERE type = 2 "
                    f"AND event_date >= today() - 1 AND query_start_time >= toDateTime({t0}) "
                    f"AND query_start_time <= toDateTime({t1}) AND position(query, '{a.db}.') > 0 "
                    f"AND query NOT LIKE '%system.%'").split()
                if i > 0:
                    runs[side].append((ms, int(rows), float(cpu)))
        print(f"{name}: same answer: {answers['a'] == answers['b']}")
        for side in ("a", "b"):
            ms, rows, cpu = zip(*runs[side])
            print(f"  {side}: median {statistics.median(ms):,.0f} ms (max {max(ms):,.0f}), "
                  f"rows read {statistics.median(rows):,.0f}, ClickHouse CPU {statistics.median(cpu):.2f} s")


if __name__ == "__main__":
    main()
