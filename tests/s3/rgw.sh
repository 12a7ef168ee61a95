#!/usr/bin/env bash
# A one-node Ceph cluster with a RADOS Gateway (S3) on 127.0.0.1, as plain processes in a scratch folder: one
# monitor, one OSD on the memstore objectstore (RAM, nothing on disk but logs), radosgw with the beast frontend on a
# free port, and one S3 user. For the tests of the S3 store; needs the Debian packages ceph-mon, ceph-osd, radosgw.
#
#   tests/s3/rgw.sh start DIR [--owner PID]   starts it (about 6 s); prints the lines of DIR/env:
#                                             AWS_ENDPOINT_URL_S3=http://127.0.0.1:PORT, AWS_ACCESS_KEY_ID, ...
#                                             With --owner, it stops by itself once process PID is gone.
#   tests/s3/rgw.sh stop DIR                  stops it (rgw, then osd, then mon) and deletes DIR
#
# Every wait is bounded; a start that fails stops what it started and exits non-zero, printing the logs' tails.
set -euo pipefail
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

usage() { echo "usage: $0 start DIR [--owner PID] | stop DIR" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
command=$1
dir=$2
shift 2
owner=
while [[ $# -gt 0 ]]; do
  case $1 in
    --owner) owner=${2:?--owner needs a pid}; shift 2 ;;
    *) usage ;;
  esac
done

conf="$dir/ceph.conf"
ceph_() { timeout 30 ceph -c "$conf" --connect-timeout 20 "$@"; }

# Ports in use, from /proc/net/tcp{,6} (hex, listening sockets have state 0A): no tool beyond the shell.
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == p) found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

free_port() {
  local port tries=0
  while ((tries++ < 200)); do
    port=$((20000 + RANDOM % 40000))
    if ! port_in_use "$port"; then echo "$port"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local seconds=$1 start=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= seconds)); then return 1; fi
    sleep 0.2
  done
}

# The cluster's data is thrown away with DIR, so nothing is worth a graceful shutdown (SIGTERM takes each daemon
# about 2 s): SIGKILL, in the order that never leaves a client waiting on a dead server (rgw, osd, mon).
stop_daemon() {
  local pidfile="$dir/run/$1.pid" pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile" 2>/dev/null || true)
  rm -f "$pidfile"
  [[ -n $pid ]] || return 0
  kill -KILL "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    alive "$pid" || return 0
    sleep 0.1
  done
}

# Whether a process runs: a daemon is reparented to pid 1, which may leave it a zombie for a while after it died.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

stop() {
  [[ -d $dir ]] || return 0
  if [[ -f $dir/run/watchdog.pid ]]; then
    local watchdog
    watchdog=$(cat "$dir/run/watchdog.pid")
    rm -f "$dir/run/watchdog.pid"
    kill "$watchdog" 2>/dev/null || true
  fi
  stop_daemon client.rgw
  stop_daemon osd.0
  stop_daemon mon.a
  rm -rf "$dir"
}

fail() {
  echo "rgw.sh: $*" >&2
  for log in "$dir"/log/*.log "$dir"/log/*.out; do
    [[ -f $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
  done
  stop
  exit 1
}

start() {
  [[ ! -e $dir ]] || [[ -z $(ls -A "$dir") ]] || { echo "rgw.sh: $dir is not empty" >&2; exit 2; }
  for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
    command -v "$tool" >/dev/null || { echo "rgw.sh: $tool is not installed (apt-get install ceph-mon ceph-osd radosgw)" >&2; exit 3; }
  done
  mkdir -p "$dir"/{mon,osd/ceph-0,run,log}
  dir=$(cd "$dir" && pwd)
  conf="$dir/ceph.conf"
  local fsid mon_port rgw_port osd_uuid access secret
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  while [[ $rgw_port == "$mon_port" ]]; do rgw_port=$(free_port); done
  access=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  secret=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  reader_access=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  reader_secret=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')

  # One copy of each object, on the one OSD; no authentication (the cluster listens on loopback only and lives
  # for one test run). Small placement-group counts, fast paxos and pools made up front cut start-up to seconds.
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
paxos propose interval = 0.1
mon osd full ratio = .99
mon osd nearfull ratio = .98
osd failsafe full ratio = .995
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = true
mon data = $dir/mon/\$name
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $((4 << 30))
osd max object size = $((128 << 20))
keyring = $dir/keyring
[client.rgw]
# tcp_nodelay: without it every GET and LIST answer waited 40 ms (Nagle against the client's delayed ACK).
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw thread pool size = 64
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw data log num shards = 1
rgw md log max shards = 1
EOF

  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" >"$dir/log/mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed"
  ceph-mon -c "$conf" -i a >"$dir/log/mon.a.out" 2>&1 || fail "ceph-mon did not start"
  watch_owner
  wait_for 30 ceph_ mon stat || fail "the monitor did not answer within 30 s"

  # Retried, as the pools below are: a monitor just up has refused them (EPERM, "problem getting command descriptions
  # from mon") while other clusters started on this machine at the same time; both are idempotent.
  wait_for 60 ceph_ osd new "$osd_uuid" 0 || fail "osd new failed"
  # Placed by hand (the OSD's own placement at start-up is switched off: it raced the monitor's first map).
  wait_for 60 ceph_ osd crush add osd.0 1.0 root=default host=localhost || fail "osd crush add failed"
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1 || fail "ceph-osd --mkfs failed"
  ceph-osd -c "$conf" -i 0 >"$dir/log/osd.0.out" 2>&1 || fail "ceph-osd did not start"

  for pool in .rgw.root default.rgw.control default.rgw.meta default.rgw.log default.rgw.buckets.index \
    default.rgw.buckets.data default.rgw.buckets.non-ec; do
    # Retried: a monitor just up has once refused the first pool (the tests then had no gateway at all).
    wait_for 60 ceph_ osd pool create "$pool" 8 8 || fail "pool $pool could not be made"
    ceph_ osd pool application enable "$pool" rgw >/dev/null 2>&1 || true
  done
  wait_for 60 osd_up || fail "the OSD did not come up within 60 s"

  radosgw -c "$conf" -n client.rgw >"$dir/log/rgw.out" 2>&1 || fail "radosgw did not start"
  timeout 60 radosgw-admin -c "$conf" user create --uid=zipllm --display-name=zipllm \
    --access-key="$access" --secret-key="$secret" >/dev/null 2>"$dir/log/user.out" || fail "radosgw-admin user create failed"
  # A second user, given nothing: a test grants it read access to a bucket by a bucket policy (a hub's read-only key).
  timeout 60 radosgw-admin -c "$conf" user create --uid=zipllm-reader --display-name=zipllm-reader \
    --access-key="$reader_access" --secret-key="$reader_secret" >/dev/null 2>>"$dir/log/user.out" || fail "radosgw-admin user create (reader) failed"
  wait_for 60 port_answers "$rgw_port" || fail "radosgw did not answer on port $rgw_port within 60 s"

  cat >"$dir/env" <<EOF
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$rgw_port
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
AWS_REGION=us-east-1
EOF
  cat >"$dir/env.reader" <<EOF
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$rgw_port
AWS_ACCESS_KEY_ID=$reader_access
AWS_SECRET_ACCESS_KEY=$reader_secret
AWS_REGION=us-east-1
EOF
  cat "$dir/env"
}

osd_up() { ceph_ osd stat 2>/dev/null | grep -q '1 up'; }

port_answers() {
  # An HTTP request on a socket of bash's own: answered once the gateway serves.
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  local line
  read -r -t 5 line <&3 || { exec 3>&-; return 1; }
  exec 3>&-
  [[ $line == HTTP/* ]]
}

# With --owner: a watchdog that stops the cluster once the owning process (a test run) is gone, so no daemon
# outlives a test run that was killed before it could stop it.
watch_owner() {
  [[ -n $owner ]] || return 0
  (
    trap '' HUP
    while alive "$owner" && [[ -d $dir ]]; do sleep 1; done
    rm -f "$dir/run/watchdog.pid"
    [[ -d $dir ]] && "$script" stop "$dir" >/dev/null 2>&1
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/run/watchdog.pid"
}

case $command in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
