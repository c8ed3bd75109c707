#!/usr/bin/env python3
"""Where the service's resident memory goes: bench/memory.py SMAPS [HEAP_STAT]

SMAPS is a copy of /proc/<pid>/smaps; HEAP_STAT what `dotnet-dump analyze` prints for `dumpheap -stat` on a
heap dump taken just after it, and just after a full collection (bench/run.sh writes both with
PROFILE=memory). Prints the resident memory by kind of mapping (anonymous: the managed heap, native
allocations and thread stacks; the JIT's code, which .NET maps through a memfd called doublemapper; files:
the assemblies and native libraries), the largest anonymous mappings, the files resident the most, and the
managed types that hold the most bytes.
"""
import collections
import re
import sys


def mappings(path):
    """(name, size KiB, resident KiB) per mapping of an smaps file."""
    current = None
    for line in open(path, encoding="utf-8", errors="replace"):
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            if current:
                yield current
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            current = [fields[5] if len(fields) > 5 else "[anon]", (end - start) // 1024, 0]
        elif line.startswith("Rss:") and current:
            current[2] = int(line.split()[1])
    if current:
        yield current


def kind(name):
    if "doublemapper" in name:
        return "JIT'd code and stubs (memfd doublemapper)"
    if name.startswith("/"):
        return "files (assemblies, native libraries)"
    return "anonymous (managed heap, native allocations, stacks)"


def smaps_summary(path):
    maps = list(mappings(path))
    total = sum(m[2] for m in maps)
    print(f"resident: {total / 1024:.1f} MiB")
    by_kind = collections.Counter()
    by_file = collections.Counter()
    for name, _, rss in maps:
        by_kind[kind(name)] += rss
        if kind(name).startswith("files"):
            by_file[name.rsplit("/", 1)[-1]] += rss
    for name, rss in by_kind.most_common():
        print(f"  {rss / 1024:8.1f} MiB  {name}")
    print("largest anonymous mappings (the managed heap's is usually the first; 64 MiB-aligned ones are malloc's arenas):")
    for name, size, rss in sorted((m for m in maps if m[0] == "[anon]"), key=lambda m: -m[2])[:8]:
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
    total = sum(r[0] for r in rows) / 1048576
    print(f"managed objects (live, and what died since the collection before the dump): {total:.1f} MiB; the types holding the most:")
    for size, count, name in rows[:25]:
        print(f"  {size / 1048576:7.2f} MiB {count:>9,}  {name[:110]}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    smaps_summary(sys.argv[1])
    if len(sys.argv) > 2:
        heap_summary(sys.argv[2])
