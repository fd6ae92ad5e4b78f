#!/usr/bin/env bash
# A ClickHouse cluster on loopback for tests: ZooKeeper (Debian's package) and four ClickHouse
# 18.16 servers, 2 shards × 2 replicas, each with its own folder and ports, as plain background
# processes (no systemd, nothing under /var/lib). Built on scripts/clickhouse.sh.
#
#   scripts/cluster.sh install                 # apt-get zookeeper (with Java) and ClickHouse
#   scripts/cluster.sh start DIR BASE          # ZooKeeper on BASE; node N (1–4) on HTTP BASE+N,
#                                              #   native BASE+10+N, interserver BASE+20+N
#   scripts/cluster.sh stop DIR                # every node, then ZooKeeper
#   scripts/cluster.sh stop-node DIR N         # one node (SIGTERM), e.g. to take a replica away
#   scripts/cluster.sh start-node DIR N BASE   # that node again
#   scripts/cluster.sh urls BASE               # the nodes' HTTP URLs, shard by shard
#
# The cluster is named `tally`; shard 1 is nodes 1 and 2, shard 2 nodes 3 and 4. Each node's
# config.d/cluster.xml names ZooKeeper, the cluster (internal_replication: a Distributed table
# writes to one replica, replication copies it) and the node's macros {shard} and {replica}.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "cluster.sh: $*" >&2; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

zk_home=/usr/share/zookeeper

cmd_install() {
  "$here/clickhouse.sh" install
  [[ -x $zk_home/bin/zkServer.sh ]] && return 0
  local sudo=()
  [[ $EUID -eq 0 ]] || sudo=(sudo)
  echo "installing zookeeper ..." >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null
}

shard_of() { echo $(( ($1 + 1) / 2 )); }

# config.d/cluster.xml for node N.
node_config() {
  local dir=$1 n=$2 base=$3 shard replicas=""
  shard=$(shard_of "$n")
  mkdir -p "$dir/node$n/config.d"
  for s in 1 2; do
    replicas+="            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$((base + 10 + 2 * s - 1))</port></replica>
                <replica><host>127.0.0.1</host><port>$((base + 10 + 2 * s))</port></replica>
            </shard>
"
  done
  cat >"$dir/node$n/config.d/cluster.xml" <<EOF
<yandex>
    <interserver_http_port>$((base + 20 + n))</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$base</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <remote_servers>
        <tally>
$replicas        </tally>
    </remote_servers>
    <macros>
        <shard>$shard</shard>
        <replica>node$n</replica>
    </macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
EOF
}

start_node() {
  local dir=$1 n=$2 base=$3
  node_config "$dir" "$n" "$base"
  "$here/clickhouse.sh" start "$dir/node$n" $((base + n)) $((base + 10 + n)) >/dev/null
}

cmd_start() {
  [[ $# -eq 2 && $2 =~ ^[0-9]+$ ]] || die "usage: start DIR BASE_PORT"
  local dir=$1 base=$2
  mkdir -p "$dir/zk/data" "$dir/zk/conf"
  dir=$(cd "$dir" && pwd)
  if ! listening "$base"; then
    cat >"$dir/zk/conf/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/zk/data
clientPort=$base
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
EOF
    cp /etc/zookeeper/conf/log4j.properties "$dir/zk/conf/" 2>/dev/null || true
    (ZOOCFGDIR="$dir/zk/conf" ZOO_LOG_DIR="$dir/zk" exec setsid "$zk_home/bin/zkServer.sh" \
      start-foreground "$dir/zk/conf/zoo.cfg" </dev/null >>"$dir/zk/zk.log" 2>&1) &
    echo $! >"$dir/zk/zk.pid"
    for _ in $(seq 120); do listening "$base" && break; sleep 0.5; done
    listening "$base" || { tail -n 30 "$dir/zk/zk.log" >&2; die "ZooKeeper did not start on $base"; }
  fi
  for n in 1 2 3 4; do start_node "$dir" "$n" "$base"; done
  echo "cluster tally: ZooKeeper 127.0.0.1:$base; nodes $(cmd_urls "$base" | tr '\n' ' ')"
}

cmd_stop() {
  [[ $# -eq 1 ]] || die "usage: stop DIR"
  local dir=$1 pid
  [[ -d $dir ]] || return 0
  for n in 1 2 3 4; do "$here/clickhouse.sh" stop "$dir/node$n" >/dev/null 2>&1 || true; done
  if pid=$(cat "$dir/zk/zk.pid" 2>/dev/null); then
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/zk/zk.pid"
  fi
  # The ZooKeeper JVM, if the wrapper left it behind.
  pkill -f "zookeeper.*$dir/zk/conf" 2>/dev/null || true
}

cmd_urls() {
  [[ $# -eq 1 ]] || die "usage: urls BASE"
  for n in 1 2 3 4; do echo "http://127.0.0.1:$(($1 + n))"; done
}

cmd=${1:-}
shift || true
case $cmd in
  install) cmd_install ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  stop-node) [[ $# -eq 2 ]] || die "usage: stop-node DIR N"; "$here/clickhouse.sh" stop "$1/node$2" ;;
  start-node) [[ $# -eq 3 ]] || die "usage: start-node DIR N BASE"; start_node "$1" "$2" "$3" ;;
  urls) cmd_urls "$@" ;;
  *) die "usage: $0 install | start DIR BASE | stop DIR | stop-node DIR N | start-node DIR N BASE | urls BASE" ;;
esac
