"""One resumable HTTP(S) download, with urllib only (no extra dependency).

    path = download(url, dest, sha256="...", size=12345)   # -> dest; DownloadError with one line on any failure

The bytes go to `<dest>.part`; a later call resumes that file with a `Range` request (a server that ignores it and
answers 200 restarts the file). Size and SHA-256, when given, are checked before the file is renamed into place, so
`dest` is either absent or complete. An interrupted transfer keeps the `.part` for the next call; a checksum mismatch
deletes it (resuming a wrong file cannot make it right). An existing `dest` is replaced.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

CHUNK = 1 << 20
USER_AGENT = "talkface-download/1"


class DownloadError(RuntimeError):
    """A download failed; the message is one line starting with the URL."""


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _reason(exc: BaseException) -> str:
    """A short reason: URLError wraps the socket error that says what happened."""
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return "timed out"
    return _one_line(inner) or type(inner).__name__


def _content_range_start(value: str | None) -> int | None:
    """The first byte of `Content-Range: bytes START-END/TOTAL`, None when absent or malformed."""
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", value or "")
    return int(match.group(1)) if match else None


def _content_range_total(value: str | None) -> int | None:
    """TOTAL of `Content-Range: bytes .../TOTAL` (also the `bytes */TOTAL` form of a 416 answer)."""
    match = re.search(r"/(\d+)\s*$", value or "")
    return int(match.group(1)) if match else None


def _open(url: str, offset: int, timeout: float):
    """The server's response from `offset` on (a 416 answer is returned, not raised); DownloadError otherwise."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    host = urllib.parse.urlsplit(url).hostname or url
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return e  # the caller decides whether the .part is already complete
        raise DownloadError(f"{url} not available: HTTP {e.code} {_one_line(e.reason)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise DownloadError(f"{url} not available: cannot reach {host} ({_reason(e)})") from None


def _fetch_into(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Complete `part` from the server, resuming it when it already holds bytes."""
    offset = part.stat().st_size if part.is_file() else 0
    for _attempt in range(2):  # the second attempt is a restart from byte 0
        with _open(url, offset, timeout) as response:
            content_range = response.headers.get("Content-Range")
            if response.status == 416:  # nothing after `offset`: complete when the server's total says so
                if _content_range_total(content_range) == offset:
                    return
                offset = 0
                continue
            if offset and response.status != 206:
                offset = 0  # the server ignored Range and sends the whole file: write the .part again
            elif offset and _content_range_start(content_range) != offset:
                offset = 0  # another range than asked for: ask again for the whole file
                continue
            _stream(url, response, part, offset, progress)
            return
    raise DownloadError(f"{url}: the server refused to resume {part} and to send the file from its start")


def _stream(url: str, response, part: Path, offset: int, progress: bool) -> None:
    """Append the response body to `part` (truncated first when `offset` is 0)."""
    from tqdm import tqdm

    length = response.headers.get("Content-Length")
    expected_end = offset + int(length) if length and length.isdigit() else None
    try:
        f = open(part, "ab" if offset else "wb")
    except OSError as e:
        raise DownloadError(f"{url}: cannot write {part} ({_one_line(e)})") from None
    written = offset
    with f, tqdm(total=expected_end, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=part.name[:-len(".part")], disable=not progress, leave=False) as bar:
        while True:
            try:
                block = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                raise DownloadError(f"{url} interrupted after {written} bytes ({_reason(e)}); "
                                    f"run again to resume from {part}") from None
            if not block:
                break
            try:
                f.write(block)
            except OSError as e:
                raise DownloadError(f"{url}: cannot write {part} ({_one_line(e)})") from None
            written += len(block)
            bar.update(len(block))
    if expected_end is not None and written < expected_end:
        raise DownloadError(f"{url} interrupted after {written} of {expected_end} bytes; "
                            f"run again to resume from {part}")


def download(url: str, dest: str | Path, *, sha256: str | None = None, size: int | None = None,
             progress: bool = True, timeout: float = 30.0) -> Path:
    """Download `url` to `dest` (resuming `<dest>.part`), check `size`/`sha256` when given, and return `dest`.

    `timeout` is per network operation (connect, each read), not for the whole file. Raises DownloadError.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http:// and https:// URLs are downloaded")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"{url}: cannot create {dest.parent} ({_one_line(e)})") from None
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:  # longer than the file can be: not a prefix of it
        part.unlink()
        have = 0
    if size is None or have < size:
        _fetch_into(url, part, timeout, progress)

    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink()
        raise DownloadError(f"{url}: got {actual_size} bytes, expected {size}; deleted {part}")
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256.lower():
            part.unlink()
            raise DownloadError(f"{url}: SHA-256 {actual} does not match the expected {sha256.lower()}; "
                                f"deleted {part}")
    os.replace(part, dest)  # atomic on one file system: readers see the old file or the complete new one
    return dest
