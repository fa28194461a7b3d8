#!/bin/sh
r() { echo "=== ipvsadm $*"; ipvsadm "$@" 2>&1; echo "rc=$?"; }
r -A -t 198.18.100.1:80 -s wrr -p 600 -M 255.255.255.0
r -a -t 198.18.100.1:80 -r 198.18.2.2:8080 -m -w 3
r -a -t 198.18.100.1:80 -r 198.18.2.10 -g -w 0
r -a -t 198.18.100.1:80 -r 198.18.2.11 -i --tun-type gue --tun-port 6080 --tun-csum
r -a -t 198.18.100.1:80 -r 198.18.2.12 -i --tun-type gre --tun-nocsum -x 10 -y 5
r -A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port
r -a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -m
r -A -f 7 -s rr
r -A -f 8 -6 -s rr -p
r -A -t 10.0.0.1:80 -s rr -o
r -A -u 10.0.0.1:53 -s rr -o
r -A -t 200.0.0.1:80 -s mh -b mh-port
r -A -t 198.18.0.1:0 -p 30
r -a -t 198.18.0.1:0 -r 198.18.1.1 -m
r -Ln
r -Ln --stats
r -Ln --rate
r -Ln --thresholds
r -Ln --persistent-conn
r -Ln --tun-info
r -Ln --stats --exact
r -L -n -t 198.18.100.1:80
r -S -n
r -Ln --timeout
r --set 1000 20 30
r -Ln --timeout
r -Lnc
r -Ln --daemon
r -a -t 198.18.9.9:80 -r 198.18.0.2
r -D -t 198.18.9.9:80
r -A -t 198.18.9.1:0
r -A -t 198.18.9.1:80 -s nosuch
r -A -u 198.18.9.1:53 -w 1
r -nL
r -L --nonsense
r -A -t 198.18.9.1:80 -s rr -s rr
r --set 1 2
r -A -t 1234
r -A -t 198.18.9.1:80 -o
r -A -t 198.18.100.1:80 -s rr
r -a -t 198.18.100.1:80 -r [2001:db8::2]:80 -m
r -a -t 198.18.100.1:80 -r 198.18.2.2:8080 -m
r -e -t 198.18.100.1:80 -r 198.18.5.5 -m
r -d -t 198.18.100.1:80 -r 198.18.5.5
r -L -c --stats
r -L --timeout -t 198.18.100.1:80
r -a -t 198.18.100.1:80 -r 198.18.2.20 -m --tun-type gre
r -A -t 198.18.100.7:80 -p 0
r -A -t 198.18.100.7:80 -s sh -b mh-port
r -A -t 198.18.100.7:80 -s sh -b bogus
r -a -t 198.18.100.1:80 -r 198.18.2.21 -w -1
r -a -t 198.18.100.1:80 -r 198.18.2.21 -w 70000 -m
r -Ln -t 198.18.100.1:80 --thresholds
r -C
r -Ln
r -h
r -v
