"""Downloads against an HTTP server on 127.0.0.1, and loading checkpoint files safely.

No test reaches the network: ``no_network`` (autouse) makes every connection or DNS lookup to a
non-loopback address fail, as on an offline machine.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import antialias
from antialias import _download as core
from antialias.checkpoint import CheckpointError
from antialias.models import _download, _weights
from antialias.models._download import (
    ChecksumError,
    DownloadError,
    UnsafeCheckpointError,
    candidate_urls,
    download_file,
    load_state_dict_file,
)
from antialias.models._weights import ResNet50_Weights, Weights

BLOCKED = "network access blocked by the test suite"


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False  # AF_UNIX paths and the like are not network; treat as allowed below
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Refuse connections and DNS lookups to anything but loopback; caches in a fresh folder; no
    waiting between retries."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):  # type: ignore[index]
            raise ConnectionRefusedError(f"{BLOCKED}: {address!r}")
        return real_connect(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is not None and not _is_loopback(host if isinstance(host, str) else str(host)):
            raise socket.gaierror(f"{BLOCKED}: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for var in (_download.MIRROR_ENV, core.WEIGHTS_ENV, core.DATA_ENV, "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(core.HOME_ENV, str(home / "antialias"))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setattr(core, "_wait", lambda seconds: None)


# --------------------------------------------------------------------------- the local server


class _Server:
    """Serves ``files`` under /good/, a cut body under /cut/, 403 under /forbidden/, and
    half a body then a stall under /stall/ (until ``release`` is set). Logs every request path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.log: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server.log.append(self.path)
                _, kind, name = self.path.split("/", 2)
                body = server.files.get(name)
                if kind == "forbidden" or body is None:
                    self.send_error(403 if kind == "forbidden" else 404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if kind == "good":
                    self.wfile.write(body)
                elif kind == "cut":  # promise the whole body, send half, close
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif kind == "stall":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(30)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, name: str, body: bytes) -> None:
        self.files[name] = body

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.close()


def _checkpoint_bytes(state: object) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(8, 3, 3, 3, generator=g),
        "bn.running_mean": torch.randn(8, generator=g),
        "bn.num_batches_tracked": torch.tensor(7),
    }


@pytest.fixture
def checkpoint(server: _Server) -> tuple[str, str, dict[str, torch.Tensor]]:
    """(file name, sha256 prefix, state_dict) of a synthetic checkpoint the server holds."""
    state = _state()
    body = _checkpoint_bytes(state)
    prefix = hashlib.sha256(body).hexdigest()[:8]
    name = f"net-{prefix}.pth"
    server.add(name, body)
    return name, prefix, state


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --------------------------------------------------------------------------- the fixture itself


def test_network_is_blocked() -> None:
    with pytest.raises(OSError, match=BLOCKED):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    with pytest.raises(OSError, match=BLOCKED):
        socket.getaddrinfo("example.com", 443)


# --------------------------------------------------------------------------- downloads


def test_good_hash_downloads_verifies_and_caches(server, checkpoint, tmp_path) -> None:
    name, prefix, state = checkpoint
    cache = tmp_path / "cache"
    path = download_file(f"{server.base}/good/{name}", prefix, cache_dir=cache, progress=False)
    assert path == cache / name
    assert _files(cache) == [name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(server.files[name]).hexdigest()
    loaded = load_state_dict_file(path)
    assert list(loaded) == list(state)
    for key in state:
        assert torch.equal(loaded[key], state[key])
    # A second call is served from the cache: no new request.
    assert download_file(f"{server.base}/good/{name}", prefix, cache_dir=cache, progress=False) == path
    assert server.log == [f"/good/{name}"]


def test_full_sha256_is_accepted_and_case_ignored(server, checkpoint, tmp_path) -> None:
    name, _, _ = checkpoint
    full = hashlib.sha256(server.files[name]).hexdigest().upper()
    path = download_file(f"{server.base}/good/{name}", full, cache_dir=tmp_path, progress=False)
    assert path.exists()


def test_progress_goes_to_stderr(server, checkpoint, tmp_path, capsys) -> None:
    name, prefix, _ = checkpoint
    download_file(f"{server.base}/good/{name}", prefix, cache_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert name in err and "100%" in err


def test_bad_hash_is_refused_and_leaves_nothing(server, checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    wrong = "0" * 8 if prefix != "0" * 8 else "1" * 8
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match=f"SHA-256 mismatch: expected a digest starting with {wrong}"):
        download_file(f"{server.base}/good/{name}", wrong, cache_dir=cache, progress=False)
    assert _files(cache) == []


def test_cut_connection_leaves_nothing(server, checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    cache = tmp_path / "cache"
    size = len(server.files[name])
    cut = rf"IncompleteRead\({size // 2} bytes read, {size - size // 2} more expected\)"
    with pytest.raises(DownloadError, match=cut):
        download_file(f"{server.base}/cut/{name}", prefix, cache_dir=cache, progress=False)
    assert _files(cache) == []
    assert server.log == [f"/cut/{name}"] * (1 + core.RETRIES)  # a cut connection is retried


def test_interrupted_download_cleans_its_temp_file(server, checkpoint, tmp_path, monkeypatch) -> None:
    name, prefix, _ = checkpoint
    cache = tmp_path / "cache"

    class Interrupt:
        total = None

        def update(self, n: int) -> None:
            assert len(_files(cache)) == 1 and _files(cache)[0].endswith(".part")  # mid-download
            raise KeyboardInterrupt

        def close(self) -> None:
            pass

    monkeypatch.setattr(core, "_progress_bar", lambda name: Interrupt())
    with pytest.raises(KeyboardInterrupt):
        download_file(f"{server.base}/good/{name}", prefix, cache_dir=cache, progress=True)
    assert _files(cache) == []


def test_stalled_download_times_out_and_leaves_nothing(server, checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="timed out"):
        download_file(f"{server.base}/stall/{name}", prefix, cache_dir=cache, progress=False, timeout=0.5)
    assert _files(cache) == []


def test_killed_process_never_leaves_the_final_name(server, checkpoint, tmp_path) -> None:
    """SIGKILL mid-download (no cleanup can run): only a dot-prefixed ``.part`` file remains,
    and the next download succeeds regardless."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    name, prefix, _ = checkpoint
    cache = tmp_path / "cache"
    code = (
        "import sys; from antialias.models._download import download_file; "
        "download_file(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3], progress=False, timeout=60)"
    )
    args = [f"{server.base}/stall/{name}", prefix, str(cache)]
    proc = subprocess.Popen([sys.executable, "-c", code, *args])
    try:
        deadline = time.monotonic() + 60
        while f"/stall/{name}" not in server.log:  # wait until the body is being received
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the download never started")
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None and len(list(cache.glob("*.part"))) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = _files(cache)
    assert name not in left
    assert len(left) == 1 and left[0].startswith(f".{name}.") and left[0].endswith(".part")
    path = download_file(f"{server.base}/good/{name}", prefix, cache_dir=cache, progress=False)
    assert path.name == name and hashlib.sha256(path.read_bytes()).hexdigest().startswith(prefix)


def test_mirrors_are_tried_in_order_then_the_original(server, checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    mirrors = [f"{server.base}/forbidden", f"{server.base}/cut/"]
    path = download_file(
        f"{server.base}/good/{name}", prefix, cache_dir=tmp_path, mirrors=mirrors, progress=False, retries=1
    )
    assert path.exists()
    # 403 is final (not retried); the cut connection is retried once; then the original.
    assert server.log == [f"/forbidden/{name}", f"/cut/{name}", f"/cut/{name}", f"/good/{name}"]


def test_a_transient_failure_is_retried_after_a_growing_wait(server, checkpoint, tmp_path, monkeypatch) -> None:
    name, prefix, _ = checkpoint
    waits: list[float] = []
    monkeypatch.setattr(core, "_wait", waits.append)
    real = server.files[name]
    server.files[name] = b"garbage"  # a corrupted transfer: pooch retries those too
    with pytest.raises(ChecksumError):
        download_file(f"{server.base}/good/{name}", prefix, cache_dir=tmp_path, progress=False, retries=3)
    assert waits == [1, 2, 3] and len(server.log) == 4
    server.files[name] = real
    server.log.clear()
    assert download_file(f"{server.base}/good/{name}", prefix, cache_dir=tmp_path, progress=False).exists()
    assert server.log == [f"/good/{name}"]


def test_http_404_is_not_retried(server, checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    with pytest.raises(DownloadError, match="404"):
        download_file(f"{server.base}/good/missing-{name}", prefix, cache_dir=tmp_path, progress=False)
    assert server.log == [f"/good/missing-{name}"]


def test_mirror_from_environment_and_local_directory(server, checkpoint, tmp_path, monkeypatch) -> None:
    name, prefix, _ = checkpoint
    local = tmp_path / "mirror"
    local.mkdir()
    (local / name).write_bytes(server.files[name])
    monkeypatch.setenv(_download.MIRROR_ENV, f"{server.base}/forbidden , {local}")
    original = f"https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/{name}"
    path = download_file(original, prefix, cache_dir=tmp_path / "cache", progress=False)
    assert path.read_bytes() == server.files[name]
    assert server.log == [f"/forbidden/{name}"]  # then the directory; the original is never tried


def test_candidate_urls_order_and_dedup(monkeypatch) -> None:
    monkeypatch.setenv(_download.MIRROR_ENV, "https://env.example/w https://arg.example/m")
    urls = candidate_urls("https://orig.example/a/b/f-12345678.pth", ["https://arg.example/m/"])
    assert urls == [
        "https://arg.example/m/f-12345678.pth",
        "https://env.example/w/f-12345678.pth",
        "https://orig.example/a/b/f-12345678.pth",
    ]
    with pytest.raises(TypeError, match="`mirrors` must be strings or paths, got 3"):
        candidate_urls("https://orig.example/f.pth", [3])


def test_offline_error_says_what_to_download_and_where(tmp_path) -> None:
    url = "https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/resnet18_lpf4-8c77af40.pth"
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        download_file(url, "8c77af40", cache_dir=cache, progress=False)
    message = str(info.value)
    assert f"download it from\n  {url}\nand put it at\n  {cache / 'resnet18_lpf4-8c77af40.pth'}\n" in message
    assert BLOCKED in message  # the attempt really failed on the (blocked) network
    assert _download.MIRROR_ENV in message
    assert _files(cache) == []


def test_every_source_with_a_bad_hash_is_a_checksum_error(server, checkpoint, tmp_path) -> None:
    name, _, _ = checkpoint
    with pytest.raises(ChecksumError, match="put it at"):
        download_file(
            f"{server.base}/good/{name}",
            "deadbeef",
            cache_dir=tmp_path,
            mirrors=[f"{server.base}/good"],
            progress=False,
        )


def test_corrupt_cached_file_is_reported_not_loaded(checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    (tmp_path / name).write_bytes(b"not the file")
    with pytest.raises(ChecksumError, match=r"cached file .*net-.*\.pth.* delete it and retry"):
        download_file(f"http://127.0.0.1:9/good/{name}", prefix, cache_dir=tmp_path, progress=False)
    assert (tmp_path / name).read_bytes() == b"not the file"  # the user's file is not deleted


@pytest.mark.parametrize(
    ("prefix", "url", "match"),
    [
        ("xyz", "http://127.0.0.1/f.pth", "`sha256_prefix` must be 8 to 64 hex digits, got 'xyz'"),
        ("0123abcd", "http://127.0.0.1/", "`url` must end with a file name"),
    ],
)
def test_malformed_arguments(prefix, url, match, tmp_path) -> None:
    with pytest.raises(ValueError, match=match):
        download_file(url, prefix, cache_dir=tmp_path, progress=False)


def test_cache_folders(monkeypatch, tmp_path) -> None:
    for var in ("TORCH_HOME", "XDG_CACHE_HOME", core.HOME_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert core.cache_root() == tmp_path / "home" / ".cache" / "antialias"
    assert core.torch_hub_dir() == tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert core.cache_root() == tmp_path / "xdg" / "antialias"
    assert core.torch_hub_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert core.torch_hub_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.setenv(core.HOME_ENV, str(tmp_path / "root"))
    assert core.weights_dir() == tmp_path / "root" / "weights"
    assert core.data_dir() == tmp_path / "root" / "data"
    assert core.weights_dir(tmp_path / "arg") == tmp_path / "arg"
    assert ResNet50_Weights.DEFAULT.cache_path() == tmp_path / "root" / "weights" / ResNet50_Weights.DEFAULT.file_name


@pytest.mark.parametrize("var", ["ANTIALIAS_CACHE", "ANTIALIAS_DATA_DIR"])
def test_old_variables_still_work_with_a_deprecation_warning(var, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(var, str(tmp_path / "old"))
    folder = core.weights_dir if var == "ANTIALIAS_CACHE" else core.data_dir
    with pytest.warns(DeprecationWarning, match=f"\\${var} is deprecated; set \\$ANTIALIAS_HOME"):
        assert folder() == tmp_path / "old"


def test_a_verified_copy_in_torch_hub_is_used_in_place(server, checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    hub = core.torch_hub_dir()
    hub.mkdir(parents=True)
    (hub / name).write_bytes(server.files[name])
    assert download_file(f"{server.base}/good/{name}", prefix, progress=False) == hub / name
    assert server.log == [] and not core.weights_dir().exists()


def test_a_different_file_in_torch_hub_is_ignored(server, checkpoint, tmp_path) -> None:
    name, prefix, _ = checkpoint
    hub = core.torch_hub_dir()
    hub.mkdir(parents=True)
    (hub / name).write_bytes(b"another file")
    path = download_file(f"{server.base}/good/{name}", prefix, progress=False)
    assert path == core.weights_dir() / name and path.read_bytes() == server.files[name]
    assert (hub / name).read_bytes() == b"another file"  # not ours: left alone


def test_one_error_type_for_every_download_failure() -> None:
    assert antialias.DownloadError is core.DownloadError is DownloadError
    assert issubclass(DownloadError, OSError) and issubclass(ChecksumError, DownloadError)
    assert issubclass(UnsafeCheckpointError, CheckpointError) and not issubclass(CheckpointError, OSError)


@pytest.mark.parametrize(
    ("known_hash", "match"),
    [("sha256:xyz", "got 'sha256:xyz'"), ("md5:" + "0" * 40, "at most the digest's length"), ("nope:12345678", "nope")],
)
def test_malformed_hashes(known_hash, match, tmp_path) -> None:
    with pytest.raises(ValueError, match=match):
        core.fetch(["http://127.0.0.1:9/f"], tmp_path / "f", known_hash)


# --------------------------------------------------------------------------- loading files


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "module_prefix"])
def test_bare_and_wrapped_files_load(wrap, tmp_path) -> None:
    state = _state()
    saved: object = {
        "bare": state,
        "state_dict": {"state_dict": state, "epoch": 90},
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    path = tmp_path / "w.pth"
    torch.save(saved, path)
    loaded = load_state_dict_file(path)
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


class _Evil:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(1), "payload": _Evil(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"found code in the pickle \(\S*system\)"):
        load_state_dict_file(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("truncated", "truncated or corrupt"),
        ("junk", "corrupt or not a weights-only PyTorch checkpoint"),
        ("empty", "corrupt"),
        ("not_tensors", "must map names to tensors, got non-tensor entries \\['epoch'\\]"),
        ("a_list", "must hold a state_dict .* got list"),
    ],
)
def test_corrupt_files_are_clear_errors(content, match, tmp_path) -> None:
    body = _checkpoint_bytes(_state())
    data = {
        "truncated": body[: len(body) // 2],
        "junk": bytes(range(256)) * 8,
        "empty": b"",
        "not_tensors": _checkpoint_bytes({"w": torch.zeros(1), "epoch": 3}),
        "a_list": _checkpoint_bytes([torch.zeros(1)]),
    }[content]
    path = tmp_path / "bad.pth"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about unknown pickle protocols in junk
        with pytest.raises(CheckpointError, match=match):
            load_state_dict_file(path)


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file at '/nonexistent/w\.pth'"):
        load_state_dict_file("/nonexistent/w.pth")


# --------------------------------------------------------------------------- Weights end to end


def _weights_for(server: _Server, name: str, prefix: str) -> Weights:
    meta = dict(ResNet50_Weights.DEFAULT.meta, license="TEST LICENCE")
    return Weights(f"https://unreachable.example/w/{name}", prefix, "resnet50", 4, True, meta)


def test_weights_get_state_dict_via_mirror_shows_licence_once(server, checkpoint, tmp_path, monkeypatch) -> None:
    name, prefix, state = checkpoint
    server.add(name, _checkpoint_bytes({"state_dict": state}))  # the wrapper, as published
    prefix = hashlib.sha256(server.files[name]).hexdigest()[:8]
    server.add(f"net-{prefix}.pth", server.files[name])
    weights = _weights_for(server, f"net-{prefix}.pth", prefix)
    monkeypatch.setattr(_weights, "_LICENSE_SHOWN", set())
    with pytest.warns(UserWarning, match="licensed TEST LICENCE"):
        loaded = weights.get_state_dict(False, cache_dir=tmp_path, mirrors=f"{server.base}/good")
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights.get_state_dict(False, cache_dir=tmp_path)  # cached now; no second licence warning


def test_registered_weights_offline_error_names_the_cache_path(tmp_path) -> None:
    w = ResNet50_Weights.IMAGENET1K_TRI4_FT
    with pytest.raises(DownloadError) as info:
        w.get_state_dict(progress=False, cache_dir=tmp_path)
    assert str(w.cache_path(tmp_path)) in str(info.value)
    assert w.url in str(info.value)
    assert _files(tmp_path) == []


def test_get_model_loads_a_reference_layout_checkpoint_through_the_cache(server, tmp_path, monkeypatch) -> None:
    """End to end: a synthetic checkpoint in the reference's layout (``.filt`` buffers, the
    ``{"state_dict": ...}`` wrapper), served by the local server, fetched into $ANTIALIAS_HOME/weights,
    verified, and loaded strictly by the builder."""
    from antialias.models import get_model

    source = get_model("resnet18", filter_size=4).eval()
    row = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    state = {}
    for name, module in source.named_modules():  # the reference stores each blur's filter
        channels = getattr(module, "channels", None)
        if type(module).__name__ == "BlurPool2d" and channels:
            state[f"{name}.filt"] = torch.outer(row, row).expand(channels, 1, 4, 4).clone()
    state.update(source.state_dict())
    assert len([k for k in state if k.endswith(".filt")]) == 7  # stem + 3 blocks x (conv, shortcut)
    body = _checkpoint_bytes({"state_dict": state})
    prefix = hashlib.sha256(body).hexdigest()[:8]
    name = f"resnet18_synthetic-{prefix}.pth"
    server.add(name, body)
    weights = Weights(f"{server.base}/good/{name}", prefix, "resnet18", 4, False, dict(ResNet50_Weights.DEFAULT.meta))
    monkeypatch.setenv(core.HOME_ENV, str(tmp_path))
    monkeypatch.setattr(_weights, "_LICENSE_SHOWN", {weights.meta["license"]})
    model = get_model("resnet18", weights=weights).eval()
    assert _files(tmp_path / "weights") == [name]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
