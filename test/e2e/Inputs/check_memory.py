"""Reads qopt's "memory per session" line from its stderr (FILE) and checks that the activation arena plus the state
are below LIMIT bytes and the state is at least MIN_STATE bytes (the KV cache is held as state).
Usage: check_memory.py FILE LIMIT MIN_STATE"""
import re
import sys

text = open(sys.argv[1]).read()
m = re.search(r"memory per session \(entry '[^']+'\): activation arena (\d+) bytes, state (\d+) bytes", text)
if not m:
    sys.exit("no memory line in qopt's output:\n" + text)
arena, state = int(m.group(1)), int(m.group(2))
limit, min_state = int(sys.argv[2]), int(sys.argv[3])
print(f"arena {arena} + state {state} = {arena + state} bytes (limit {limit})")
if arena + state >= limit or state < min_state:
    sys.exit(f"arena {arena} + state {state} bytes: expected a sum below {limit} and a state of at least {min_state}")
