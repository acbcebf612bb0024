"""Memory under floods: four concurrent 11000x11000 PNG uploads, then 120 concurrent
logins from four addresses (needs TRUST_PROXY=true); peak RSS of the server.
Usage: python3 bench/flood-rss.py PORT SERVER_PID"""
import json, socket, struct, sys, threading, time, urllib.request, zlib, uuid
port = int(sys.argv[1]); pid = int(sys.argv[2]); base = f"http://127.0.0.1:{port}"
def rss(): 
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) // 1024
def req(method, path, body=None, token=None, ctype="application/json", xff=None):
    h = {"Content-Type": ctype}
    if token: h["Authorization"] = f"Bearer {token}"
    if xff: h["X-Forwarded-For"] = xff
    r = urllib.request.Request(base + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(r, timeout=120) as res: return res.status, res.read()
    except urllib.error.HTTPError as e: return e.code, e.read()
email = f"m-{uuid.uuid4().hex[:8]}@example.com"
st, out = req("POST", "/api/auth/register", json.dumps({"email": email, "password": "correct horse 42", "displayName": "m"}).encode())
token = json.loads(out)["accessToken"]
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
w = h = 11000
raw = (b"\0" + b"\0" * (w * 3)) * h
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
del raw
print(f"pixel-flood PNG: {len(png)//1024} KB, {w}x{h}")
def upload(i, res):
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\ncover\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f{i}.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{b}--\r\n".encode()
    res.append(req("POST", "/api/files", body, token, f"multipart/form-data; boundary={b}")[0])
def peak_during(fn, n):
    res = []; peak = [rss()]; start = peak[0]; done = [False]
    def watch():
        while not done[0]: peak[0] = max(peak[0], rss()); time.sleep(0.02)
    wt = threading.Thread(target=watch); wt.start()
    ts = [threading.Thread(target=fn, args=(i, res)) for i in range(n)]
    [t.start() for t in ts]; [t.join() for t in ts]
    done[0] = True; wt.join()
    return start, peak[0], sorted(res)
s, p, res = peak_during(upload, 4)
print(f"4 concurrent pixel-flood uploads: RSS {s} -> peak {p} MiB (+{p-s}); answers {res}")
def login(i, res):
    body = json.dumps({"email": email, "password": "correct horse 42"}).encode()
    res.append(req("POST", "/api/auth/login", body, xff=f"10.9.{i % 4}.1")[0])
s, p, res = peak_during(login, 120)
from collections import Counter
print(f"120 concurrent logins from 4 IPs: RSS {s} -> peak {p} MiB (+{p-s}); answers {dict(Counter(res))}")
