"""Model-zoo tests: keep the torchvision generator out of collection; block the outside network."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import torch

# Regenerating the torchvision facts needs torchvision; pytest must not import the script.
collect_ignore = ["data/make_torchvision_reference.py"]


def _loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model test downloads: connecting anywhere but 127.0.0.1 / ::1 fails loudly (the download
    tests' servers on the loopback keep working)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):  # type: ignore[index]
            raise AssertionError(f"a model test tried to connect to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: CI runs two xdist workers on two cores, where OpenMP's spinning
    threads make these forwards several times slower (measured: 3x the CPU time on the big nets)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
