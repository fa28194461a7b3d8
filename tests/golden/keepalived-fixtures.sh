# Recorded on a Debian 12 machine with kernel IPVS (kernel 6.1, keepalived 2.2.7, ipvsadm 1.31),
# with the keepalived fixtures that have virtual servers copied into /job:
#   mkdir /job; cp $(grep -l '^\s*virtual_server' compat-fixtures/keepalived/*) /job
#   sh tests/golden/keepalived-fixtures.sh > tests/golden/keepalived-fixtures.ipvs-1.31.out
# (then drop the sections of files that are not fixtures). For every fixture: start keepalived's
# checker side, take `ipvsadm -Ln` as soon as its services appear (before the first health
# check can remove a real), stop it, clear IPVS.
cd /job
for f in $(ls /job | sort); do
  echo "=== $f"
  keepalived -C -n -G -f /job/$f -p /tmp/k.pid -c /tmp/kc.pid >/dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 50); do
    n=$(ipvsadm -Ln 2>&1 | wc -l)
    [ "$n" -gt 3 ] && break
    sleep 0.1
  done
  sleep 0.3
  ipvsadm -Ln
  kill $pid; wait $pid 2>/dev/null
  ipvsadm -C
  rm -f /tmp/k.pid /tmp/kc.pid
done
