"""keep_freed_memory: freed buffers are reused, not faulted in again every batch."""

import subprocess
import sys

import pytest

FAULTS = """
import resource, sys
import numpy as np
from discover.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
np.ones(8 << 20).sum()  # one 64 MB buffer first, as the first batch of a run
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):  # then ten more, each freed before the next, as batch after batch
    np.ones(8 << 20).sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True, timeout=60)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_batch_buffers_are_reused_rather_than_faulted_in_again():
    default, kept = _page_faults("default"), _page_faults("keep")
    # by default every 64 MB buffer is mapped afresh and faulted in: 16,384 pages of 4 KiB, or
    # 32 of 2 MiB with transparent huge pages, each time
    assert default >= 10 * 32
    assert kept < default / 10  # kept: the freed buffer is reused as it is
