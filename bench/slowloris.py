"""Slowloris check: opens N half-sent requests from 127.0.0.1 and reports how many the
server holds, its descriptor count, and whether /health/live answers another IP.
Usage: python3 bench/slowloris.py PORT SERVER_PID N (run with a high `ulimit -n`)."""
import socket, sys, time, os, urllib.request
port = int(sys.argv[1]); pid = int(sys.argv[2]); n = int(sys.argv[3])
conns = []; T0 = time.time()
for i in range(n):
    try:
        s = socket.socket(); s.setblocking(True); s.settimeout(2)
        s.connect(("127.0.0.1", port)); s.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        conns.append(s)
    except Exception as e:
        pass
def alive():
    k = 0
    for s in conns:
        try:
            s.settimeout(0.001)
            d = s.recv(1)
            if d == b"": continue
            k += 1
        except socket.timeout:
            k += 1
        except Exception:
            pass
    return k
def fds(): return len(os.listdir(f"/proc/{pid}/fd"))
def live():
    try:
        src = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0), timeout=5)
        src.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return src.recv(64).split(b" ")[1].decode()
    except Exception as e:
        return f"fail {e}"
print("opening took", round(time.time()-T0,1), "s"); time.sleep(1)
print(f"opened {len(conns)}; after 1 s: held open {alive()}, server fds {fds()}, /health/live from another IP: {live()}")
for s in conns:
    try: s.settimeout(0.001); s.send(b"X")
    except Exception: pass
time.sleep(12)
print(f"after 13 s (trickling): held open {alive()}, server fds {fds()}, /health/live: {live()}")
