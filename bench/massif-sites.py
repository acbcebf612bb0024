#!/usr/bin/env python3
"""Heap per socket by allocation site: the difference of two massif detailed snapshots
(bench/heap-profile.sh), divided by the number of sockets. A site is named by the
first DEPTH frames of its stack that are not allocator or collection plumbing.
Sites under massif's threshold are summed as "(below threshold)".

    python3 bench/massif-sites.py before.massif connected.massif SOCKETS [DEPTH]
"""

import collections
import re
import sys
from pathlib import Path

SKIP = re.compile(
    r"^alloc$|^aligned_malloc$|^allocate$|^alloc_impl|^new<|^with_capacity|^from<|^clone<|^into<|alloc::|core::|RawVec|raw_vec|malloc|__rust|<alloc|realloc|calloc|hashbrown::raw|std::alloc|exchange_malloc|Box<|::new_uninit|box_new|smallvec::|try_grow|reserve|grow_one|bytes::bytes_mut|::with_capacity|do_reserve|::from_iter|::spec_|::extend|::push|::insert|::clone|::to_vec|::to_owned|::into_vec|Vec<|String::|::collect|::from\b|in /usr/lib|vec::|::into_boxed|slice::|str::|hash_map"
)


def parse(path):
    lines = Path(path).read_text().split("\n")
    # last snapshot's heap tree
    start = max(i for i, l in enumerate(lines) if l.startswith("heap_tree="))
    tree = lines[start + 1 :]
    res = collections.Counter()
    stack = []
    node = re.compile(r"^( *)n(\d+): (\d+) (.*)$")
    for l in tree:
        m = node.match(l)
        if not m:
            continue
        depth = len(m.group(1))
        nch = int(m.group(2))
        b = int(m.group(3))
        desc = m.group(4)
        stack = stack[:depth]
        stack.append(desc)
        if nch == 0:
            frames = stack[1:]
            res[tuple(frames)] += b
    return res


def key(frames, depth):
    names = []
    for f in frames:
        m = re.match(r"0x[0-9A-F]+: (.*?)(?: \(.*\))?$", f)
        name = m.group(1) if m else f
        if "below massif" in f:
            return ("(below threshold)",)
        if not names and SKIP.search(name):
            continue
        names.append(name[:110])
        if len(names) >= depth:
            break
    return tuple(names) or ("?",)


b, c, n = parse(sys.argv[1]), parse(sys.argv[2]), int(sys.argv[3])
depth = int(sys.argv[4]) if len(sys.argv) > 4 else 2
agg = collections.Counter()
for k, v in c.items():
    agg[key(k, depth)] += v
for k, v in b.items():
    agg[key(k, depth)] -= v
tot = sum(agg.values())
sqlite = sum(v for k, v in agg.items() if k[0].startswith("sqlite3"))
print(
    f"per socket by site: {tot / n / 1024:.2f} KiB (requested bytes, without the allocator's overhead); "
    f"without SQLite's page cache (bounded, filled by the handshakes' queries): {(tot - sqlite) / n / 1024:.2f} KiB"
)
# The 30 largest sites of at least 40 bytes per socket (either sign).
for k, v in sorted(agg.items(), key=lambda kv: -abs(kv[1]))[:30]:
    if abs(v) / n < 40:
        continue
    print(f"{v / n / 1024:7.2f} KiB  " + "  <-  ".join(k))
