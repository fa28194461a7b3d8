#!/usr/bin/env bash
# The xlvs demo: sets everything up, builds a client / director / two real servers topology in
# network namespaces (198.18.0.0/15 only), attaches xlvs to the director, configures a NAT virtual
# service with the drop-in `ipvsadm`, sends a few HTTP requests through the VIP (they alternate
# between the reals), shows the counters, and removes everything it made.
#
#   client  c0 198.18.1.2 ── l0 198.18.1.1 ┐ director: xlvs on l0 l1 l2, VIP 198.18.100.1:80
#   real1   r0 198.18.2.2 ── l1 198.18.2.1 ┤   rr, masquerading (NAT)
#   real2   r0 198.18.3.2 ── l2 198.18.3.1 ┘
#
# Run as root. REQUESTS=N changes the number of requests (default 6).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-6}

if [ "$(id -u)" != 0 ]; then
  echo "demo: run as root (it creates network namespaces and loads XDP)" >&2
  exit 1
fi
./scripts/setup.sh
echo "[demo] building"
cargo build -q --workspace --exclude ebpf --bins
BIN=$PWD/target/debug

P="xdemo$$"
export XLVS_PIN_DIR=/sys/fs/bpf/xlvs-$P      # our own tables, apart from any real deployment
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  "$BIN/xlvs" unload >/dev/null 2>&1
  for ns in c d r1 r2; do ip netns del "$P$ns" 2>/dev/null; done
  rm -rf "/tmp/$P"
}
trap cleanup EXIT INT TERM

nsx() { local ns=$1; shift; nsenter --net="/run/netns/$P$ns" "$@"; }

echo "[demo] topology $P{c,d,r1,r2}"
for ns in c d r1 r2; do
  ip netns add "$P$ns"
  nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    net.ipv4.ip_forward=1
  ip -n "$P$ns" link set lo up
done
link() { # ns_a if_a ns_b if_b
  ip link add "$2" netns "$P$1" type veth peer name "$4" netns "$P$3"
  ip -n "$P$1" link set "$2" up
  ip -n "$P$3" link set "$4" up
}
link c c0 d l0
link r1 r0 d l1
link r2 r0 d l2
ip -n "${P}c" addr add 198.18.1.2/24 dev c0
ip -n "${P}c" route add default via 198.18.1.1
ip -n "${P}d" addr add 198.18.1.1/24 dev l0
ip -n "${P}d" addr add 198.18.2.1/24 dev l1
ip -n "${P}d" addr add 198.18.3.1/24 dev l2
for i in 1 2; do
  ip -n "${P}r$i" addr add "198.18.$((i + 1)).2/24" dev r0
  ip -n "${P}r$i" route add default via "198.18.$((i + 1)).1"
done
# veth specifics (see tests/src/netns.rs): full checksums from local senders, NAPI for XDP_TX.
nsx c ethtool -K c0 tx off gro on >/dev/null
nsx r1 ethtool -K r0 tx off gro on >/dev/null
nsx r2 ethtool -K r0 tx off gro on >/dev/null

echo "[demo] real servers: python http.server on 198.18.2.2:80 and 198.18.3.2:80"
for i in 1 2; do
  mkdir -p "/tmp/$P/r$i"
  echo "hello from real$i (198.18.$((i + 1)).2)" >"/tmp/$P/r$i/index.html"
  # nsenter itself, not the nsx function: $! must be the server's pid (nsenter execs it), not
  # a subshell's that a kill would leave the server behind.
  nsenter --net="/run/netns/${P}r$i" python3 -m http.server 80 --bind "198.18.$((i + 1)).2" --directory "/tmp/$P/r$i" \
    >/dev/null 2>&1 &
  PIDS+=($!)
done

echo "[demo] xlvs attach l0 l1 l2   (in the director)"
nsx d "$BIN/xlvs" attach l0 l1 l2
echo "[demo] ipvsadm -A -t 198.18.100.1:80 -s rr"
"$BIN/ipvsadm" -A -t 198.18.100.1:80 -s rr
"$BIN/ipvsadm" -a -t 198.18.100.1:80 -r 198.18.2.2:80 -m
"$BIN/ipvsadm" -a -t 198.18.100.1:80 -r 198.18.3.2:80 -m
echo "[demo] ipvsadm -Ln"
"$BIN/ipvsadm" -Ln

for _ in $(seq 50); do # wait for both servers
  nsx d bash -c 'exec 3<>/dev/tcp/198.18.2.2/80 && exec 4<>/dev/tcp/198.18.3.2/80' 2>/dev/null && break
  sleep 0.1
done
echo "[demo] $REQUESTS requests from the client to http://198.18.100.1/"
for n in $(seq "$REQUESTS"); do
  printf '  %d: %s\n' "$n" "$(nsx c curl -s --max-time 3 http://198.18.100.1/)"
done
echo "[demo] ipvsadm -Ln --stats"
"$BIN/ipvsadm" -Ln --stats
echo "[demo] ipvsadm -Lnc"
"$BIN/ipvsadm" -Lnc
echo "[demo] xlvs status"
nsx d "$BIN/xlvs" status
echo "[demo] done; cleaning up"
