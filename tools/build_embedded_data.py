"""Rebuild the embedded CIFAR-10 subset shipped in src/lossland/resources/.

    python tools/build_embedded_data.py [../shared/data/cifar10-jpeg.tar.gz]

The output is byte-for-byte reproducible; tests/test_data.py checks that a
rebuild matches the committed file.
"""

import sys
from pathlib import Path

from lossland.data import build_embedded_archive

ROOT = Path(__file__).resolve().parents[1]
source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
dest = ROOT / "src" / "lossland" / "resources" / "cifar10-embedded.tar.gz"
counts = build_embedded_archive(source, dest)
print(f"wrote {dest} ({dest.stat().st_size / 1e6:.2f} MB): {counts}")
