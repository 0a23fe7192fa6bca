"""Network namespaces standing in for hosts: each on one bridge, its own address, links that drop.

Every address lives inside the namespaces made here (a private /24 on a bridge in the first
namespace's neighbour); nothing is routed to or from the machine's own interfaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

SUBNET = "10.231.77"  # /24 inside the namespaces only


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (CI runs as root)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` to create network namespaces"
    probe = f"rollout-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Hosts:
    """`count` hosts named h1..hN on one switch; host k has address SUBNET.k."""

    def __init__(self, count: int, *, tag: str | None = None) -> None:
        self.tag = tag or f"r{os.getpid() % 100000}"
        self.switch = f"{self.tag}sw"
        self.names = [f"{self.tag}h{k}" for k in range(1, count + 1)]
        self._made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        for ns in [self.switch, *self.names]:
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for k, ns in enumerate(self.names, 1):
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", self.port(k), "netns", self.switch)
            _ip("-n", ns, "addr", "add", f"{self.address(k)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", self.switch, "link", "set", self.port(k), "master", "br0")
            _ip("-n", self.switch, "link", "set", self.port(k), "up")

    @staticmethod
    def address(k: int) -> str:
        return f"{SUBNET}.{k}"

    def endpoint(self, k: int, port: int = 7447) -> str:
        return f"tcp/{self.address(k)}:{port}"

    @staticmethod
    def port(k: int) -> str:
        return f"p{k}"

    def shape(self, k: int, netem: str) -> bool:
        """Delay / rate-limit host k's link (`tc netem` arguments, e.g. "delay 5ms rate 100mbit");
        False when this kernel has no netem (a container without the sch_netem module)."""
        if shutil.which("tc") is None:
            return False
        done = subprocess.run(["ip", "netns", "exec", self.names[k - 1], "tc", "qdisc", "replace", "dev", "eth0",
                               "root", "netem", *netem.split()], capture_output=True, text=True)  # fmt: skip
        return done.returncode == 0

    def link(self, k: int, up: bool) -> None:
        """Cut or restore host k's link to the switch (its cable, as seen from the switch)."""
        _ip("-n", self.switch, "link", "set", self.port(k), "up" if up else "down")

    def popen(self, k: int, argv: Sequence[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen:
        """Start a program on host k."""
        return subprocess.Popen(["ip", "netns", "exec", self.names[k - 1], *argv], env=env, **kwargs)  # type: ignore[call-overload]

    def rollout(self, k: int, args: Sequence[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen:
        return self.popen(k, [sys.executable, "-m", "rollout.cli", *args], env, **kwargs)

    def close(self) -> None:
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._made.clear()

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
