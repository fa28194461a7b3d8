r() { echo "# $*"; "$@" 2>&1; echo "rc=$?"; }
ip addr add 198.18.0.1/32 dev lo
r ipvsadm -L --daemon
r ipvsadm --start-daemon master --mcast-interface lo --syncid 1
r ipvsadm -L --daemon
r ipvsadm --start-daemon master --mcast-interface lo --syncid 2
r ipvsadm --start-daemon backup --mcast-interface lo --syncid 1
r ipvsadm -L --daemon
r ipvsadm -L --daemon -n
r ipvsadm --stop-daemon master
r ipvsadm --stop-daemon master
r ipvsadm -L --daemon
r ipvsadm --stop-daemon backup
r ipvsadm --stop-daemon backup
r ipvsadm --stop-daemon foo
r ipvsadm --start-daemon foo
r ipvsadm --start-daemon master
r ipvsadm --start-daemon master --mcast-interface nosuchif0
r ipvsadm --start-daemon master --mcast-interface abcdefghijklmnopq
r ipvsadm --start-daemon master --mcast-interface abcdefghijklmno
r ipvsadm --start-daemon master --mcast-interface lo --syncid 256
r ipvsadm --start-daemon master --mcast-interface lo --syncid -1
r ipvsadm --start-daemon master --mcast-interface lo --syncid abc
r ipvsadm --start-daemon master --mcast-interface lo --mcast-port 0
r ipvsadm --start-daemon master --mcast-interface lo --mcast-port 65536
r ipvsadm --start-daemon master --mcast-interface lo --mcast-ttl 0
r ipvsadm --start-daemon master --mcast-interface lo --mcast-ttl 256
r ipvsadm --start-daemon master --mcast-interface lo --sync-maxlen 0
r ipvsadm --start-daemon master --mcast-interface lo --sync-maxlen 65508
r ipvsadm --start-daemon master --mcast-interface lo --mcast-group 198.18.0.9
r ipvsadm --start-daemon master --mcast-interface lo --mcast-group ff02::81x
r ipvsadm --start-daemon master --mcast-interface lo --mcast-group 2001:db8::1
r ipvsadm --start-daemon master --mcast-interface lo --mcast-group foo
r ipvsadm -L --daemon
r ipvsadm --stop-daemon master
r ipvsadm --start-daemon master --mcast-interface lo --syncid 7 --sync-maxlen 100 --mcast-group 224.0.0.99 --mcast-port 9000 --mcast-ttl 3
r ipvsadm --start-daemon backup --mcast-interface lo --syncid 0 --sync-maxlen 2000 --mcast-group ff02::99 --mcast-port 9001
r ipvsadm -L --daemon
r ipvsadm -L --daemon --syncid 3
r ipvsadm --stop-daemon master --syncid 9
r ipvsadm --stop-daemon backup
r ipvsadm --start-daemon backup --mcast-interface lo --sync-maxlen 10
r ipvsadm -L --daemon
r ipvsadm --stop-daemon backup
r ipvsadm --start-daemon master --mcast-interface lo --sync-maxlen 70000
r ipvsadm --start-daemon master --mcast-interface lo --mcast-group 224.0.0.81 --mcast-interface lo
r ipvsadm --start-daemon master --mcast-interface lo -n
r ipvsadm --start-daemon master --mcast-interface lo extra
r ipvsadm -L --daemon
r ipvsadm --stop-daemon master
r ipvsadm --start-daemon=backup --mcast-interface=lo --syncid=5
r ipvsadm -Ln --daemon
r ipvsadm -S
r ipvsadm --stop-daemon backup
dmesg | grep -i ipvs | tail -20
