"""Open the report HTML in headless Chromium and check that it renders with its images.

    python benchmarks/report_render.py [reports/report.html]

Checks: (1) the DOM Chromium builds holds every <img> with a data:image/png URI and nothing loads from the network
(no http(s) src/href); (2) a 1200x3000 screenshot is not blank and contains pixels of matplotlib's default blue line
colour (#1f77b4), which only the embedded figures draw: the images were decoded and painted, not just present.
Needs the Debian package `chromium` (/usr/bin/chromium); prints the figures it measured.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
MPL_BLUE = np.array([31, 119, 180])  # RGB of matplotlib's first default colour


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def check_render(html: Path, timeout: int = 120, window: str = "1200,3000") -> dict:
    """Render `html` in headless Chromium; returns the measurements and raises AssertionError when a check fails."""
    import cv2

    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium not found (apt-get install -y chromium)")
    html = Path(html).resolve()
    url = html.as_uri()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shot = tmp / "shot.png"
        dom = _run([exe, *FLAGS, f"--user-data-dir={tmp / 'profile-dom'}", "--dump-dom", url], timeout)
        if dom.returncode != 0 or "<html" not in dom.stdout:
            raise AssertionError(f"chromium --dump-dom failed (rc {dom.returncode}): {dom.stderr.strip()[-300:]}")
        shot_run = _run([exe, *FLAGS, f"--user-data-dir={tmp / 'profile-shot'}", f"--screenshot={shot}",
                         f"--window-size={window}", url], timeout)
        if not shot.is_file():
            raise AssertionError(f"chromium wrote no screenshot (rc {shot_run.returncode}): "
                                 f"{shot_run.stderr.strip()[-300:]}")
        img = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB)

    imgs = re.findall(r"<img\b[^>]*>", dom.stdout)
    data_imgs = [t for t in imgs if 'src="data:image/png;base64,' in t]
    external = re.findall(r"""(?:src|href)\s*=\s*["']https?://""", dom.stdout)
    blue = int((np.abs(img.astype(int) - MPL_BLUE).sum(axis=-1) < 30).sum())
    non_white = float((img.astype(int).sum(axis=-1) < 720).mean())
    result = {"img_tags": len(imgs), "data_uri_imgs": len(data_imgs), "external_refs": len(external),
              "screenshot_shape": list(img.shape), "screenshot_std": float(img.std()),
              "non_white_fraction": non_white, "matplotlib_blue_pixels": blue}
    assert imgs and len(data_imgs) == len(imgs), f"images without a data: URI: {len(imgs) - len(data_imgs)} of {len(imgs)}"
    assert not external, f"the report references the network: {external[:3]}"
    assert img.std() > 5 and non_white > 0.01, f"blank screenshot (std {img.std():.2f}, non-white {non_white:.4f})"
    assert blue > 50, f"no figure pixels painted (matplotlib blue pixels: {blue})"
    return result


def main() -> None:
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/report.html")
    if not html.is_file():
        sys.exit(f"{html} not found: run `dvc repro report` (or python stages/report.py) first")
    for k, v in check_render(html).items():
        print(f"{k}: {v}")
    print("ok: the report renders offline with its embedded images")


if __name__ == "__main__":
    main()
