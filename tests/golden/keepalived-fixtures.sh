# Recorded on the ipvs-oracle guest (Debian 12, kernel 6.1 IPVS, keepalived 2.2.7, ipvsadm 1.31):
#   args=""; for f in $(grep -l '^\s*virtual_server' compat-fixtures/keepalived/*); do args="$args -a $f"; done
#   ../shared/tools/ipvs-oracle/run-in-lvs-vm.sh $args -f tests/golden/keepalived-fixtures.sh
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
