#!/bin/sh
# Every real-server command (-a, -e, -d, and the same through -R) over the combinations that change
# its meaning: forwarding method (-g -m -i, none) x real port (the service's, another, absent) x
# service kind (tcp, udp, fwmark) x family (IPv4, IPv6). After each step the table is saved with
# -S -n, so a command that touched the wrong real shows in the transcript.
r() { echo "=== ipvsadm $*"; ipvsadm "$@" 2>&1; echo "rc=$?"; }
restore() { echo "=== ipvsadm -R <<< $*"; echo "$*" | ipvsadm -R 2>&1; echo "rc=$?"; }
save() { ipvsadm -S -n 2>&1; }

r -C
for fam in 4 6; do
  if [ $fam = 4 ]; then vip=198.18.0.100; rip=198.18.1.11; six=""
  else vip=[2001:db8::100]; rip=[2001:db8:1::11]; six="-6"; fi
  for kind in t u f; do
    case $kind in
      t) svc="-t $vip:80" ;;
      u) svc="-u $vip:80" ;;
      f) svc="-f 1 $six" ;;
    esac
    r -A $svc -s rr
    for fwd in -g -m -i ""; do
      for port in :80 :8081 ""; do
        r -a $svc -r $rip$port $fwd -w 2
        save
        r -e $svc -r $rip$port $fwd -w 5
        save
        r -d $svc -r $rip$port
        save
      done
    done
    # Two reals on one address, different ports and methods: each command names one of them.
    r -a $svc -r $rip:80 -g
    r -a $svc -r $rip:8081 -m
    save
    r -d $svc -r $rip:8081 -g
    r -d $svc -r $rip:8081
    save
    r -d $svc -r $rip:8081
    r -a $svc -r $rip:8081 -m
    save
    r -e $svc -r $rip:8081 -g -w 3
    save
    r -e $svc -r $rip:8081 -m -w 4
    save
    r -d $svc -r $rip
    save
    r -d $svc -r $rip:80
    r -d $svc -r $rip:8081
    save
    # The same through -R (one command per restore: a failing line stops nothing else here).
    restore "-a $svc -r $rip:80 -g"
    restore "-a $svc -r $rip:8081 -m"
    restore "-d $svc -r $rip:8081"
    save
    restore "-e $svc -r $rip:80 -w 7"
    restore "-d $svc -r $rip"
    save
    r -D $svc
  done
done
save
