#!/usr/bin/env python3
"""Writes the GNU ld script that puts strata's executed code together (cmake/hot_text.ld).

usage: hot_text.py START_UP_OUT RUNNING_OUT LINK_MAP BINARY OUT_LD

START_UP_OUT, RUNNING_OUT: `callgrind --demangle=no` dumps of strata (scripts/profile-hot-text.sh),
one of its start-up and one of it working; LINK_MAP: `ld -Map` of the link that made BINARY.

Every input section that holds a function that ran while strata worked goes to .text.strata_hot,
hottest first (self instructions); those that ran only at start-up go to .text.strata_init, which
strata unmaps once it runs (agent/init_text.c). One pattern per line, so that ld keeps the order:
`*libgrpc.a:call.cc.o(.text)` for an object's code, `*(.text.NAME)` for a section of its own
(C++ inline and template functions, COMDAT)."""
import bisect, collections, re, subprocess, sys

startup_path, running_path, map_path, binary, out_path = sys.argv[1:6]


def executed(cg_path):
    """{function: self instructions} of the profiled binary in one callgrind dump."""
    cost = collections.Counter()
    cur_ob = cur_fn = None
    skip_next = False
    for line in open(cg_path):  # written with --compress-strings=no: names in full
        line = line.rstrip('\n')
        if line.startswith('ob='):
            cur_ob = line[3:]
            continue
        if line.startswith('fn='):
            cur_fn = (cur_ob, line[3:])
            cost[cur_fn] += 0
            continue
        if line.startswith('calls='):
            skip_next = True  # the next cost line is the call's inclusive cost
            continue
        if line and (line[0].isdigit() or line[0] in '+-*') and cur_fn:
            if skip_next:
                skip_next = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                cost[cur_fn] += int(parts[1])
    # valgrind names strata's object "???" for some of its code (the sections this script adds?):
    # take those too; a name that is not strata's own is dropped by the symbol lookup below.
    out = collections.Counter()
    for (o, f), c in cost.items():
        if o and (o == '???' or o.split('/')[-1] == 'strata'):
            out[f] += c
    return out


running = executed(running_path)
startup = executed(startup_path)
hot = sorted(((c, f) for f, c in running.items()), key=lambda x: -x[0])
init = sorted(((c, f) for f, c in startup.items() if f not in running), key=lambda x: -x[0])

# --- input sections of .text, from the link map ---------------------------------------------
lines = open(map_path).read().split('\n')
secs = []
in_text = False
i = 0
while i < len(lines):
    l = lines[i]
    m = re.match(r'^(\.\S+)', l)  # an output section: .text, or ours from an earlier link
    if m:
        in_text = m.group(1) in ('.text', '.text.strata_hot', '.text.strata_init')
    if in_text:
        m = re.match(r'^ (\.text\S*)\s*$', l)
        if m and i + 1 < len(lines):
            m2 = re.match(r'^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$', lines[i + 1])
            if m2:
                secs.append((int(m2.group(1), 16), int(m2.group(2), 16), m.group(1), m2.group(3)))
                i += 2
                continue
        m = re.match(r'^ (\.text\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$', l)
        if m:
            secs.append((int(m.group(2), 16), int(m.group(3), 16), m.group(1), m.group(4)))
    i += 1
secs = sorted(s for s in secs if s[1] > 0)
starts = [s[0] for s in secs]

syms = {}
for l in subprocess.run(['nm', '-S', '--defined-only', binary], capture_output=True, text=True, check=True).stdout.splitlines():
    p = l.split()
    if len(p) == 4 and p[2] in 'tTwW':
        syms[p[3]] = int(p[0], 16)

ok = re.compile(r'^[A-Za-z0-9_.$+-]+$')  # what ld takes unquoted in a pattern
# Names every object may have: they need the object's name too.
SHARED = {'.text', '.text.unlikely', '.text.startup', '.text.exit', '.text.hot'}


def pattern(sec, obj):
    if sec not in SHARED:  # a section of its own (COMDAT, -ffunction-sections): its name says it
        return '*(%s)' % sec if ok.match(sec) else None
    m = re.match(r'^(?:.*/)?([^/(]+\.a)\(([^)]+)\)$', obj)
    if m:
        return '*%s:%s(%s)' % (m.group(1), m.group(2), sec) if ok.match(m.group(2)) else None
    base = obj.split('/')[-1]
    return '*%s(%s)' % (base, sec) if ok.match(base) else None


# The code that unmaps the start-up section, and main(), which calls it, stay mapped.
PINNED = ['*init_text.c.o(.text)', '*main.c.o(.text)', '*main.c.o(.text.startup)']

seen = set()


def sections(funcs):
    out, total = [], 0
    for c, f in funcs:
        a = syms.get(f)
        if a is None:
            continue
        k = bisect.bisect_right(starts, a) - 1
        if k < 0 or not (secs[k][0] <= a < secs[k][0] + secs[k][1]) or k in seen:
            continue
        seen.add(k)
        p = pattern(secs[k][2], secs[k][3])
        if p:
            out.append(p)
            total += secs[k][1]
    return out, total


hot_out, hot_total = sections(hot)
init_out, init_total = sections(init)
init_out = [p for p in init_out if not any(x in p for x in ('init_text.c.o', 'main.c.o'))]
hot_out += [p for p in PINNED if p not in hot_out]
all_kib = sum(s[1] for s in secs) // 1024
with open(out_path, 'w') as f:
    f.write('/* Generated by scripts/profile-hot-text.sh: do not edit. Why: cmake/hot_text.cmake.\n')
    f.write(' * .text.strata_hot: %d input sections, %d KiB of %d KiB of text, what ran while strata worked.\n' %
            (len(hot_out), hot_total // 1024, all_kib))
    f.write(' * .text.strata_init: %d input sections, %d KiB, what ran only at start-up (unmapped after it). */\n' %
            (len(init_out), init_total // 1024))
    f.write('SECTIONS\n{\n  .text.strata_hot :\n  {\n')
    for p in hot_out:
        f.write('    %s\n' % p)
    # 64 KiB-aligned, as the kernel's fault-around windows: a fault on either side never maps the other.
    f.write('  }\n  .text.strata_init ALIGN(0x10000) :\n  {\n    PROVIDE_HIDDEN(__strata_init_text_start = .);\n')
    for p in init_out:
        f.write('    %s\n' % p)
    f.write('    . = ALIGN(0x10000);\n    PROVIDE_HIDDEN(__strata_init_text_end = .);\n  }\n}\nINSERT BEFORE .text;\n')
print('hot: %d sections, %d KiB; start-up only: %d sections, %d KiB' %
      (len(hot_out), hot_total // 1024, len(init_out), init_total // 1024), file=sys.stderr)
