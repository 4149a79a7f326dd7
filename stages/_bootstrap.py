"""Put this checkout's src/ first on sys.path.

`dvc exp run --queue` runs each experiment in a temporary copy of the repo; an editable install would point every
experiment at the main workspace's code instead of the copy's, so stages import the library from their own checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
