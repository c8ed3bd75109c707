#!/usr/bin/env python3
"""Where the service's resident memory goes: bench/memory.py SMAPS [HEAP_STAT [STRINGS]]

SMAPS is a copy of /proc/<pid>/smaps; HEAP_STAT what `dotnet-dump analyze` prints for `dumpheap -stat` and
`eeheap -loader` on a heap dump taken just after it, and just after a full collection; STRINGS what it prints
for `dumpheap -strings` on the same dump (bench/run.sh writes all three with PROFILE=memory). Prints the
resident memory by kind of mapping (anonymous: the managed heap, native allocations and thread stacks; files:
the assemblies and native libraries; and the memfd called doublemapper, through which .NET maps what its W^X
policy keeps apart: the JIT's code and stubs, executable, and the runtime's type data, writable), the largest
anonymous mappings, the files resident the most, the runtime's loader and code heaps, the managed types that
hold the most bytes, and the strings kept in the most copies.
"""
import collections
import os
import re
import sys


def mappings(path):
    """(name, size KiB, resident KiB, permissions) per mapping of an smaps file."""
    current = None
    for line in open(path, encoding="utf-8", errors="replace"):
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            if current:
                yield current
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            current = [fields[5] if len(fields) > 5 else "[anon]", (end - start) // 1024, 0, fields[1]]
        elif line.startswith("Rss:") and current:
            current[2] = int(line.split()[1])
    if current:
        yield current


def kind(name, permissions):
    if "doublemapper" in name:
        if "x" in permissions:
            return "JIT'd code and stubs (memfd doublemapper, executable)"
        return "the runtime's type data: loader heaps (memfd doublemapper, writable)"
    if name.startswith("/"):
        return "files (assemblies, native libraries)"
    return "anonymous (managed heap, native allocations, stacks)"


def smaps_summary(path):
    maps = list(mappings(path))
    total = sum(m[2] for m in maps)
    print(f"resident: {total / 1024:.1f} MiB")
    by_kind = collections.Counter()
    by_file = collections.Counter()
    for name, _, rss, permissions in maps:
        by_kind[kind(name, permissions)] += rss
        if name.startswith("/") and "doublemapper" not in name:
            by_file[name.rsplit("/", 1)[-1]] += rss
    for name, rss in by_kind.most_common():
        print(f"  {rss / 1024:8.1f} MiB  {name}")
    print("largest anonymous mappings (the managed heap's is usually the first; 64 MiB-aligned ones are malloc's arenas):")
    for name, size, rss, _ in sorted((m for m in maps if m[0] == "[anon]"), key=lambda m: -m[2])[:8]:
        print(f"  {rss / 1024:8.1f} MiB resident of {size / 1024:.1f} MiB")
    print("files resident the most:")
    for name, rss in by_file.most_common(8):
        print(f"  {rss / 1024:8.1f} MiB  {name}")


def heap_summary(path):
    # `dotnet-dump analyze ... -c "dumpheap -stat"`: one row per type (method table, count, total bytes, name),
    # then "Total N objects, M bytes".
    rows = []
    for line in open(path, encoding="utf-8", errors="replace"):
        row = re.match(r"\s*[0-9a-f]{8,16}\s+([\d,]+)\s+([\d,]+)\s+(.+?)\s*$", line)
        if row:
            rows.append((int(row.group(2).replace(",", "")), int(row.group(1).replace(",", "")), row.group(3)))
    rows.sort(reverse=True)
    loader_summary(path)
    total = sum(r[0] for r in rows) / 1048576
    print(f"managed objects (live, and what died since the collection before the dump): {total:.1f} MiB; the types holding the most:")
    for size, count, name in rows[:25]:
        print(f"  {size / 1048576:7.2f} MiB {count:>9,}  {name[:110]}")


def loader_summary(path):
    # `eeheap -loader`: one line per loader heap ("HighFrequencyHeap:  <ranges> Size: 0x... (N) bytes total"),
    # and one per code heap of the JIT ("LoaderCodeHeap:", "HostCodeHeap:"); "Total size:" lines are skipped.
    heaps = collections.Counter()
    for line in open(path, encoding="utf-8", errors="replace"):
        heap = re.match(r"^(\w+):\s.*Size: 0x[0-9a-f]+ \((\d+)\) bytes total", line)
        if heap and heap.group(1) != "Total":
            heaps[heap.group(1)] += int(heap.group(2))
    if not heaps:
        return
    code = heaps.pop("LoaderCodeHeap", 0) + heaps.pop("HostCodeHeap", 0)
    print(f"the runtime's heaps (eeheap -loader, committed: resident once touched): loader heaps "
          f"{sum(heaps.values()) / 1048576:.1f} MiB, the JIT's code heaps {code / 1048576:.1f} MiB")
    for name, size in heaps.most_common(4):
        print(f"  {size / 1048576:8.1f} MiB  {name}")


def strings_summary(path):
    # `dumpheap -strings`: every string's address, then after "Statistics:" one row per value (count, total bytes,
    # the value), fewest bytes first.
    rows, statistics = [], False
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("Statistics:"):
            statistics = True
            continue
        row = re.match(r"^\s*([\d,]+)\s+([\d,]+) (.*)$", line) if statistics else None
        if row:
            rows.append((int(row.group(2).replace(",", "")), int(row.group(1).replace(",", "")), row.group(3)))
    if not rows:
        return
    total = sum(r[0] for r in rows)
    copied = sum(r[0] for r in rows if r[1] >= 1000)
    print(f"strings: {total / 1048576:.1f} MiB, of which {copied / 1048576:.1f} MiB in values kept 1,000 times or more; the most bytes:")
    for size, count, value in sorted(rows, reverse=True)[:12]:
        print(f"  {size / 1048576:7.2f} MiB {count:>9,}  {value[:80]}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    smaps_summary(sys.argv[1])
    # A dump that failed leaves no file: its part is left out.
    if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
        heap_summary(sys.argv[2])
    if len(sys.argv) > 3 and os.path.exists(sys.argv[3]):
        strings_summary(sys.argv[3])
