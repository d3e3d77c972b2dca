"""What the Hugging Face export checks (check_export.py, check_kv.py) share: running a tool, and one qrun run."""
import os
import subprocess
import sys

import numpy as np


class Runner:
    def __init__(self, stem, qrun, work):
        self.stem, self.qrun, self.work = stem, qrun, work

    def run(self, cmd, env=None):
        """Runs cmd; on failure exits naming the export, with the command's output."""
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"{self.stem}: {' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
        return p

    def logits(self, model, feeds, tag):
        """Runs model once on feeds (input name -> .npy path); returns its logits output."""
        out = os.path.join(self.work, tag)
        cmd = [self.qrun, model, "--output-dir", out]
        for k, v in feeds.items():
            cmd += ["--input", f"{k}={v}"]
        self.run(cmd)
        return np.load(os.path.join(out, "logits.npy"))
