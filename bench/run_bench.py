"""`make bench`: the emulator's packet budget (calibrated, against the kernel's own forwarding
limit measured with iperf3), the packet simulator's speed at 16, 128 and 1,024 hosts against its
two wall-time targets (bench/sim_bench.py, no root), and the analysis throughput, as figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    if os.geteuid() == 0:
        subprocess.run([sys.executable, str(HERE / "emulator_bench.py")], check=True)
    else:
        print("emulator budget: skipped (needs root: sudo make bench)")
    print()
    subprocess.run([sys.executable, str(HERE / "sim_bench.py")], check=True)
    print()
    subprocess.run([sys.executable, str(HERE / "analysis_bench.py")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
