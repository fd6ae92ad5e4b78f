#!/usr/bin/env bash
# Install Debian's ClickHouse (18.16) and run project-local servers as plain background
# processes, for tests. Nothing here uses systemd or touches /var/lib/clickhouse.
#
#   scripts/clickhouse.sh install                      # apt-get clickhouse-server/-client, curl
#   scripts/clickhouse.sh start DIR HTTP_PORT TCP_PORT # config + data + logs under DIR
#   scripts/clickhouse.sh stop DIR                     # SIGTERM, up to 30 s, then SIGKILL
#   scripts/clickhouse.sh kill DIR                     # SIGKILL at once (fault tests)
#   scripts/clickhouse.sh log-queries DIR HTTP_PORT    # every query in system.query_log (benchmarks)
#
# With TALLY_CH_PART_LOG=1, start also keeps system.part_log (every part written, merged and
# removed; benchmarks read what merging costs per table).
#
# start writes DIR/config.xml (from /etc/clickhouse-server/config.xml: paths moved into DIR,
# given ports, every other port removed, 127.0.0.1 only, timezone UTC, small caches),
# DIR/users.xml (default user, no password, background_pool_size 4), data in DIR/data/,
# logs in DIR/log/, pid in DIR/clickhouse.pid, and waits until /ping says "Ok.".
#
# Facts checked on ClickHouse 18.16.1 (Debian 12 package) with this script:
# - It runs as root without complaint (no --user/-- options needed).
# - It has no max_server_memory_usage; it has the profile settings max_memory_usage (10 GB in
#   users.xml), max_memory_usage_for_all_queries and background_pool_size (16 by default).
# - CREATE TABLE t (ts DateTime('UTC'), ...) ENGINE = MergeTree PARTITION BY toYYYYMMDD(ts)
#   ORDER BY ... works. Partitions follow the column's time zone, not the server's: with the
#   server in Asia/Tokyo, '2024-03-31 23:30:00' lands in partition 20240331. Text values of
#   a DateTime('UTC') column are parsed and printed in UTC as well.
# - SETTINGS old_parts_lifetime = 5 is accepted as a table-level setting and kept in
#   SHOW CREATE TABLE (system.merge_tree_settings still shows the server default, 480).
# - ALTER TABLE t DROP PARTITION 20240330 (or DROP PARTITION ID '20240330') deletes the part
#   directories at once (before the ALTER returns), with or without old_parts_lifetime.
#   old_parts_lifetime only delays parts replaced by a merge: with 5 they were gone from
#   disk ~15 s after OPTIMIZE ... FINAL (cleanup runs on a background schedule); the default
#   keeps them 8 minutes. chDB 26.9 also deletes dropped partitions at once.
set -euo pipefail

die() { echo "clickhouse.sh: $*" >&2; exit 1; }

# pid from DIR/clickhouse.pid if that process is alive and is the server of DIR.
server_pid() {
  local pid
  pid=$(cat "$1/clickhouse.pid" 2>/dev/null) || return 1
  # A pid file left by a server that died names no process (or another one).
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
    grep -F -- "--config-file=$1/config.xml" >/dev/null && echo "$pid"
}

# true if something accepts TCP connections on 127.0.0.1:PORT
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pings() { [[ $(curl -s -m 2 "http://127.0.0.1:$1/ping" 2>/dev/null) == "Ok." ]]; }

cmd_install() {
  local pkgs=()
  [[ -x /usr/sbin/clickhouse-server ]] && command -v clickhouse-client >/dev/null ||
    pkgs+=(clickhouse-server clickhouse-client)
  command -v curl >/dev/null || pkgs+=(curl)
  [[ ${#pkgs[@]} -eq 0 ]] && return 0
  local sudo=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install ${pkgs[*]}"
    sudo=(sudo)
  fi
  echo "installing ${pkgs[*]} ..." >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

cmd_start() {
  [[ $# -eq 3 && $2 =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ ]] || die "usage: start DIR HTTP_PORT TCP_PORT"
  local dir http=$2 tcp=$3 pid port
  mkdir -p "$1/data" "$1/log"
  dir=$(cd "$1" && pwd)
  [[ $dir =~ ^[A-Za-z0-9_./+-]+$ ]] || die "DIR must be a plain path: $dir"

  if ! pid=$(server_pid "$dir"); then
    for port in "$http" "$tcp"; do
      listening "$port" && die "port $port is already in use (another server?)"
    done
    sed -E \
      -e "s#/var/lib/clickhouse/#$dir/data/#g" \
      -e "s#/var/log/clickhouse-server/#$dir/log/#g" \
      -e "s#<http_port>[0-9]+</http_port>#<http_port>$http</http_port>#" \
      -e "s#<tcp_port>[0-9]+</tcp_port>#<tcp_port>$tcp</tcp_port>#" \
      -e '/<(http_port|tcp_port)>/!{/<[a-z_]*_port[a-z_]*>/d}' \
      -e '/<listen_host>/d' \
      -e 's#<size>1000M</size>#<size>100M</size>#; s#<count>10</count>#<count>2</count>#' \
      -e 's#<(mark_cache_size|uncompressed_cache_size)>[0-9]+<#<\1>268435456<#' \
      -e 's#^</yandex>#    <listen_host>127.0.0.1</listen_host>\n    <timezone>UTC</timezone>\n</yandex>#' \
      /etc/clickhouse-server/config.xml >"$dir/config.xml"
    if [[ ${TALLY_CH_PART_LOG:-0} == 1 ]]; then
      sed -i 's#^</yandex>#    <part_log><database>system</database><table>part_log</table></part_log>\n</yandex>#' \
        "$dir/config.xml"
    fi
    sed -E 's#^( *)<max_memory_usage>#\1<background_pool_size>4</background_pool_size>\n&#' \
      /etc/clickhouse-server/users.xml >"$dir/users.xml"
    grep -q '/var/lib/clickhouse\|/var/log/clickhouse' "$dir/config.xml" && die "config rewrite incomplete"
    # setsid: the server is its own session, so it outlives the caller until `stop`.
    (cd "$dir" && exec setsid /usr/sbin/clickhouse-server --config-file="$dir/config.xml" \
      </dev/null >>"$dir/log/stdout.log" 2>&1) &
    pid=$!
    echo "$pid" >"$dir/clickhouse.pid"
  fi

  for _ in $(seq 120); do
    pings "$http" && kill -0 "$pid" 2>/dev/null && { echo "clickhouse pid $pid on http://127.0.0.1:$http tcp $tcp ($dir)"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "clickhouse in $dir did not answer on port $http; error log:" >&2
  tail -n 30 "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
  exit 1
}

cmd_stop() {
  [[ $# -eq 1 ]] || die "usage: stop DIR"
  local dir pid
  dir=$(cd "$1" 2>/dev/null && pwd) || return 0
  if pid=$(server_pid "$dir"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 60); do server_pid "$dir" >/dev/null || break; sleep 0.5; done
    if server_pid "$dir" >/dev/null; then
      echo "clickhouse pid $pid ignored SIGTERM for 30 s; killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/clickhouse.pid"
}

cmd_kill() {
  [[ $# -eq 1 ]] || die "usage: kill DIR"
  local dir pid
  dir=$(cd "$1" 2>/dev/null && pwd) || return 0
  if pid=$(server_pid "$dir"); then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do server_pid "$dir" >/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/clickhouse.pid"
}

# Every query in system.query_log with its CPU time, so that a benchmark can say what each
# statement costs ClickHouse. The server re-reads users.xml within seconds; waits for that.
cmd_log_queries() {
  [[ $# -eq 2 ]] || die "usage: log-queries DIR HTTP_PORT"
  if ! grep -q '<log_queries>' "$1/users.xml"; then
    sed -i -E 's#^( *)<max_memory_usage>#\1<log_queries>1</log_queries>\n&#' "$1/users.xml"
  fi
  # The reloader compares modification times to the second: an edit within the second the
  # server read the file is missed, so touch it again until the setting shows.
  for i in $(seq 30); do
    [[ $(curl -sS "http://127.0.0.1:$2/" --data-binary \
      "SELECT value FROM system.settings WHERE name = 'log_queries'") == 1 ]] && return 0
    sleep 1
    (( i % 3 == 0 )) && touch "$1/users.xml"
  done
  die "log_queries did not take effect in $1"
}

cmd=${1:-}
shift || true
case $cmd in
  install) cmd_install ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  kill) cmd_kill "$@" ;;
  log-queries) cmd_log_queries "$@" ;;
  *) die "usage: $0 install | start DIR HTTP_PORT TCP_PORT | stop DIR | kill DIR | log-queries DIR HTTP_PORT" ;;
esac
