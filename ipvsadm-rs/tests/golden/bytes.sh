#!/bin/sh
# ipvsadm reads bytes: -R input and arguments that are not UTF-8 (a comment, an address, a
# scheduler name) fail the line that holds them, with 1.31's message, and nothing else.
r() { echo "=== $*"; "$@" 2>&1; echo "rc=$?"; }
restore() { echo "=== ipvsadm -R < $1"; ipvsadm -R < "$d/$1" 2>&1; echo "rc=$?"; }
d=$(mktemp -d)
printf -- '-A -t 198.18.0.1:80 -s rr\n# caf\351 comment\n-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m\n' > $d/comment
restore comment
r ipvsadm -Sn
r ipvsadm -C
printf -- '-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.18.1.\3511:80 -m\n-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m\n' > $d/address
restore address
r ipvsadm -Sn
r ipvsadm -C
printf -- '-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m -w 2\n' > $d/plain
restore plain
r ipvsadm -Sn
r ipvsadm -C
r ipvsadm -A -t 198.18.0.9:80 -s "$(printf 'r\377r')"
r ipvsadm -A -t "$(printf '198.18.0.\377'):80"
r ipvsadm -A -t 198.18.0.9:80 -s rr -p "$(printf '3\3770')"
r ipvsadm -Sn
rm -rf $d
