"""talkface.download, talkface.weights_registry and `talkface weights`, against a local HTTP server (no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import threading

import pytest

from talkface import weights_registry
from talkface.cli import main
from talkface.download import DownloadError, download, sha256_file
from talkface.weights_registry import REGISTRY, RECORD_FILE, select

CONTENT = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes, every offset distinguishable
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()


class Server:
    """http.server in a thread serving CONTENT at /file, with Range support and switches for misbehaviour."""

    def __init__(self):
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.ignore_range = False  # answer 200 with the whole file even to a Range request
        self.cut_next_after: int | None = None  # send this many body bytes of the next answer, then close
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                if self.path != "/file":
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                header = self.headers.get("Range")
                if header and not server.ignore_range:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    if start >= len(CONTENT):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(CONTENT)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = CONTENT[start:]
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(CONTENT) - 1}/{len(CONTENT)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_next_after is not None:
                    body, server.cut_next_after = body[:server.cut_next_after], None
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        # a short poll interval: shutdown() waits for it at each test's teardown
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def closed_url():
    """A URL on a port nothing listens on: what an offline machine gets."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/x"


# ---------------------------------------------------------------- download()
def test_full_download_with_checksums(server, tmp_path):
    dest = tmp_path / "sub" / "f.bin"
    assert download(server.url, dest, sha256=CONTENT_SHA, size=len(CONTENT), progress=True) == dest
    assert dest.read_bytes() == CONTENT
    assert not dest.with_name("f.bin.part").exists()
    assert server.requests == [("/file", None)]
    assert sha256_file(dest) == CONTENT_SHA


def test_resume_from_partial_file(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(CONTENT[:3000])
    download(server.url, dest, sha256=CONTENT_SHA, progress=False)
    assert server.requests == [("/file", "bytes=3000-")]
    assert dest.read_bytes() == CONTENT


def test_server_ignoring_range_restarts_the_file(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(b"x" * 500)  # would corrupt the file if appended to
    download(server.url, dest, progress=False)
    assert server.requests == [("/file", "bytes=500-")]
    assert dest.read_bytes() == CONTENT


def test_interrupted_transfer_keeps_part_and_resumes(server, tmp_path):
    dest = tmp_path / "f.bin"
    server.cut_next_after = 4000
    with pytest.raises(DownloadError, match=r"interrupted after 4000 of 10244 bytes; run again to resume"):
        download(server.url, dest, progress=False)
    assert not dest.exists() and dest.with_name("f.bin.part").read_bytes() == CONTENT[:4000]
    download(server.url, dest, sha256=CONTENT_SHA, progress=False)
    assert server.requests[-1] == ("/file", "bytes=4000-")
    assert dest.read_bytes() == CONTENT


def test_complete_part_without_known_size(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(CONTENT)
    download(server.url, dest, progress=False)  # the server answers 416 with the total: nothing left to fetch
    assert server.requests == [("/file", f"bytes={len(CONTENT)}-")]
    assert dest.read_bytes() == CONTENT


def test_wrong_sha256_deletes_the_file(server, tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError) as info:
        download(server.url, dest, sha256="0" * 64, progress=False)
    assert f"SHA-256 {CONTENT_SHA} does not match the expected {'0' * 64}" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_wrong_size_deletes_the_file(server, tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=r"got 10244 bytes, expected 10000"):
        download(server.url, dest, size=10_000, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_url_is_one_line(closed_url, tmp_path):
    with pytest.raises(DownloadError) as info:
        download(closed_url, tmp_path / "x", progress=False, timeout=5)
    message = str(info.value)
    assert message.startswith(f"{closed_url} not available: cannot reach 127.0.0.1 (")
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_http_error_has_its_status(server, tmp_path):
    url = server.url.replace("/file", "/missing")
    with pytest.raises(DownloadError, match=r"^http://127\.0\.0\.1:\d+/missing not available: HTTP 404 Not Found$"):
        download(url, tmp_path / "x", progress=False)


def test_only_http_urls(tmp_path):
    with pytest.raises(DownloadError, match="only http:// and https://"):
        download("file:///etc/hostname", tmp_path / "x")


# ---------------------------------------------------------------- the registry
def test_registry_names_and_filenames_match_the_loaders():
    from talkface.models.inception import FID_WEIGHTS_FILE
    from talkface.models.lse_syncnet import SYNCNET_V2_FILE
    from talkface.models.vgg import VGG19_FILENAME

    by_name = {e.name: e for e in REGISTRY}
    assert len(by_name) == len(REGISTRY) == len({e.filename for e in REGISTRY})
    assert by_name["vgg19"].filename == VGG19_FILENAME == "vgg19-dcbb9e9d.pth"
    assert by_name["fid_inception"].filename == FID_WEIGHTS_FILE
    assert by_name["syncnet_v2"].filename == SYNCNET_V2_FILE
    for e in REGISTRY:
        assert e.url.rsplit("/", 1)[-1] == e.filename, e.name  # the cache name is the published name
        assert e.url.startswith(("http://", "https://"))
    assert all(e.url_note for e in REGISTRY if "avhubert" in e.url)
    assert select(["vgg19", "s3fd-619a316812.pth"]) == [by_name["vgg19"], by_name["s3fd"]]
    assert select(["all"]) == list(REGISTRY)
    with pytest.raises(ValueError, match="unknown weights nope; known: all, syncnet_v2"):
        select(["nope"])


def test_registry_vgg19_is_torchvisions_file():
    torchvision = pytest.importorskip("torchvision")
    entry = select(["vgg19"])[0]
    assert entry.url == torchvision.models.VGG19_Weights.IMAGENET1K_V1.url


def test_registry_fan_files_are_the_ones_face_alignment_expects():
    pytest.importorskip("face_alignment")
    from talkface.faces.detect import fan_weight_files

    expected = {path.name for path in fan_weight_files().values()}
    assert {e.filename for e in select(["s3fd", "2dfan4"])} == expected


# ---------------------------------------------------------------- `talkface weights`
def _point(monkeypatch, name: str, url: str, **changes) -> None:
    """Make registry entry `name` download from `url` (and change its known checksums)."""
    registry = tuple(dataclasses.replace(e, url=url, **changes) if e.name == name else e for e in REGISTRY)
    monkeypatch.setattr(weights_registry, "REGISTRY", registry)


def test_cli_download_verify_and_corruption(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # default --dir: the hub checkpoint folder
    _point(monkeypatch, "sfd_face", server.url)
    assert main(["weights", "download", "sfd_face", "--quiet"]) == 0
    path = tmp_path / "torch" / "hub" / "checkpoints" / "sfd_face.pth"
    assert path.read_bytes() == CONTENT
    record = json.loads((path.parent / RECORD_FILE).read_text())
    assert record["sfd_face.pth"]["sha256"] == CONTENT_SHA and record["sfd_face.pth"]["size"] == len(CONTENT)
    assert f"SHA-256 {CONTENT_SHA}" in capsys.readouterr().out

    assert main(["weights", "download", "sfd_face", "--quiet"]) == 0  # present and matching: no new request
    assert len(server.requests) == 1
    assert "already present: SHA-256 matches (recorded at download" in capsys.readouterr().out

    assert main(["weights", "verify"]) == 0
    out = capsys.readouterr().out
    assert "sfd_face  ok  SHA-256 matches" in out and "vgg19  missing" in out

    path.write_bytes(CONTENT[:-1] + b"X")  # same size, different bytes
    assert main(["weights", "verify"]) == 1
    captured = capsys.readouterr()
    assert f"sfd_face  MISMATCH  SHA-256 {hashlib.sha256(CONTENT[:-1] + b'X').hexdigest()}, expected {CONTENT_SHA}" \
        in captured.out
    assert captured.err.count("\n") == 1 and "1 file(s) do not match" in captured.err

    assert main(["weights", "download", "sfd_face", "--quiet"]) == 0  # a mismatching copy is replaced
    assert path.read_bytes() == CONTENT
    assert "downloaded again" in capsys.readouterr().out


def test_cli_download_all_and_known_checksums(server, tmp_path, monkeypatch, capsys):
    small = (dataclasses.replace(REGISTRY[0], url=server.url, size=len(CONTENT), sha256=CONTENT_SHA),
             dataclasses.replace(REGISTRY[1], url=server.url))
    monkeypatch.setattr(weights_registry, "REGISTRY", small)
    assert main(["weights", "download", "all", "--dir", str(tmp_path), "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([RECORD_FILE, "sfd_face.pth", "syncnet_v2.model"])
    assert (tmp_path / "syncnet_v2.model").read_bytes() == CONTENT
    capsys.readouterr()
    assert main(["weights", "verify", "--dir", str(tmp_path)]) == 0
    assert "syncnet_v2  ok  SHA-256 matches (from a mirror's model card" in capsys.readouterr().out


def test_cli_wrong_known_checksum_names_its_source(server, tmp_path, monkeypatch, capsys):
    _point(monkeypatch, "syncnet_v2", server.url)  # keeps the mirror's size, which CONTENT does not have
    assert main(["weights", "download", "syncnet_v2", "--dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "got 10244 bytes, expected 54573114" in err and "from a mirror's model card" in err
    assert not (tmp_path / "syncnet_v2.model").exists()


def test_cli_vgg19_hash_prefix_is_checked(server, tmp_path, monkeypatch, capsys):
    _point(monkeypatch, "vgg19", server.url)
    assert main(["weights", "download", "vgg19", "--dir", str(tmp_path), "--quiet"]) == 1
    assert "does not start with dcbb9e9d" in capsys.readouterr().err
    assert not (tmp_path / "vgg19-dcbb9e9d.pth").exists()


def test_cli_list_shows_every_entry(tmp_path, capsys):
    (tmp_path / "vgg19-dcbb9e9d.pth").write_bytes(b"x")
    assert main(["weights", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for e in REGISTRY:
        assert f"    url:    {e.url}" in out
    assert "vgg19  vgg19-dcbb9e9d.pth  present" in out
    assert "s3fd  s3fd-619a316812.pth  missing" in out
    assert "961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442 (from a mirror's model card" in out
    assert out.count("[unverified:") == sum("avhubert" in e.name for e in REGISTRY) == 4


def test_cli_offline_is_one_line(closed_url, tmp_path, monkeypatch, capsys):
    _point(monkeypatch, "vgg19", closed_url)
    assert main(["weights", "download", "vgg19", "--dir", str(tmp_path), "--quiet", "--timeout", "5"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"talkface weights: error: vgg19: {closed_url} not available: cannot reach")
    assert "Traceback" not in captured.err + captured.out


def test_cli_unknown_name(tmp_path, capsys):
    assert main(["weights", "download", "nope", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("talkface weights: error: unknown weights nope") and err.count("\n") == 1
