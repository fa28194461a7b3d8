set -e
D=/tmp/ka-rec
mkdir -p $D/newdev
mount -t tmpfs tmpfs $D/newdev
for n in null zero urandom random tty; do touch $D/newdev/$n; mount --bind /dev/$n $D/newdev/$n; done
mount --bind $D/newdev /dev
python3 $D/sink.py /dev/log $D/syslog.txt & SINK=$!
sleep 0.5
ip netns exec kxb keepalived -n -P -f $D/b.conf -p $D/b.pid -r $D/b-vrrp.pid -c $D/b-chk.pid &
sleep 1
ip netns exec kxa keepalived -n -P -f $D/a.conf -p $D/a.pid -r $D/a-vrrp.pid -c $D/a-chk.pid &
sleep 6
kill -TERM $(cat $D/a.pid); sleep 3
kill -TERM $(cat $D/b.pid); sleep 2
kill $SINK
