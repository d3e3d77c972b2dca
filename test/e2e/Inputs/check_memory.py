"""Reads qopt's per-entry lines from its stderr (FILE) and checks that the session's activation arena (the largest
entry's) plus the state are below LIMIT bytes and the state is at least MIN_STATE bytes (the KV cache is held as state).
Usage: check_memory.py FILE LIMIT MIN_STATE"""
import re
import sys

text = open(sys.argv[1]).read()
rows = re.findall(r"entry '[^']+': \d+ launches per run, activation arena (\d+) bytes, state (\d+) bytes", text)
if not rows:
    sys.exit("no entry line in qopt's output:\n" + text)
# One arena serves every entry: the largest; the state is shared.
arena, state = max(int(a) for a, _ in rows), max(int(s) for _, s in rows)
limit, min_state = int(sys.argv[2]), int(sys.argv[3])
print(f"arena {arena} + state {state} = {arena + state} bytes (limit {limit})")
if arena + state >= limit or state < min_state:
    sys.exit(f"arena {arena} + state {state} bytes: expected a sum below {limit} and a state of at least {min_state}")
