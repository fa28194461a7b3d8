set -x
cd /job
ip link set lo up
ip addr add 198.18.2.2/32 dev lo
ip addr add 198.18.2.3/32 dev lo
mkdir -p /job/newdev /job/tmp
mount -t tmpfs tmpfs /job/newdev
for n in null zero urandom random tty; do touch /job/newdev/$n; mount --bind /dev/$n /job/newdev/$n; done
mount --bind /job/newdev /dev
python3 /job/sink.py /dev/log /job/out/syslog.txt & SINK=$!
sleep 0.5
python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("198.18.2.2",80)); s.listen(50)
s.settimeout(0.2)
end=time.time()+9
while time.time()<end:
  try:
    c,_=s.accept(); c.close()
  except Exception: pass' & L2=$!
cp /job/chk.conf /job/cur.conf
TMPDIR=/job/tmp keepalived -n -C -D -f /job/cur.conf -p /job/k.pid -c /job/kc.pid -r /job/kr.pid &
sleep 5
ipvsadm -Ln > /job/out/ipvs-1.txt
python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("198.18.2.3",80)); s.listen(50)
s.settimeout(0.2)
end=time.time()+14
while time.time()<end:
  try:
    c,_=s.accept(); c.close()
  except Exception: pass' & L3=$!
sleep 6
ipvsadm -Ln > /job/out/ipvs-2.txt
kill -USR1 $(cat /job/k.pid); sleep 1
kill -USR2 $(cat /job/k.pid); sleep 1
kill -36 $(cat /job/k.pid); sleep 1
cp /job/tmp/* /job/out/ 2>/dev/null
cp /job/chk2.conf /job/cur.conf
kill -HUP $(cat /job/k.pid)
sleep 4
ipvsadm -Ln > /job/out/ipvs-3.txt
ipvsadm-save -n > /job/out/save.txt
kill -TERM $(cat /job/k.pid)
sleep 3
ipvsadm -Ln > /job/out/ipvs-4.txt
kill $SINK
ls -la /job/tmp
