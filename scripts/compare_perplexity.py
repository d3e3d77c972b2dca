"""Checks that a `perplexity P nll N tokens T` line matches a reference file's line: same token count, and the
mean NLL within a tolerance (default 1e-3). Usage: compare_perplexity.py MEASURED REFERENCE [--tol X]"""
import re
import sys


def parse(path):
    for line in open(path):
        m = re.match(r"perplexity (\S+) nll (\S+) tokens (\d+)", line)
        if m:
            return float(m.group(1)), float(m.group(2)), int(m.group(3))
    sys.exit(f"{path}: no 'perplexity P nll N tokens T' line")


tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else 1e-3
got, ref = parse(sys.argv[1]), parse(sys.argv[2])
print(f"measured ppl {got[0]:.6f} nll {got[1]:.6f} tokens {got[2]}; reference ppl {ref[0]:.6f} nll {ref[1]:.6f} "
      f"tokens {ref[2]}; |dnll| = {abs(got[1] - ref[1]):.2e} (tol {tol})")
if got[2] != ref[2] or abs(got[1] - ref[1]) > tol or abs(got[0] - ref[0]) > tol * ref[0]:
    sys.exit("perplexity differs from the reference")
