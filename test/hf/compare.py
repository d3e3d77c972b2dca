"""Compares qrun's logits with onnxruntime's reference: compare.py GOT.npy REF.npy [ROWS] (ROWS: first n batch rows)."""
import sys

import numpy as np

got, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
if len(sys.argv) > 3:
    ref = ref[: int(sys.argv[3])]
if got.shape != ref.shape:
    sys.exit(f"shape {got.shape} != reference {ref.shape}")
diff = float(np.abs(got - ref).max())
print(f"max |qopt - onnxruntime| = {diff:.3g} (max |ref| {float(np.abs(ref).max()):.3g})")
sys.exit(0 if np.allclose(got, ref, rtol=1e-4, atol=1e-5) else 1)
