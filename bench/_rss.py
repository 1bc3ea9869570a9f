"""Peak resident memory of this process (VmHWM). Not ru_maxrss: Linux carries that over from the
parent across execve, so a child started by a big parent would report the parent's peak."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
