"""Run a test's body in private Linux namespaces: network (loopback only), mounts, pids.

Servers a test starts (Ray above all, which binds the machine's interface address by
itself) must talk over 127.0.0.1 only. Inside a new network namespace the only
interface is loopback, so nothing can bind or reach anything else. A mount namespace
lets a test mount a tiny or read-only file system without touching the machine's. A
pid namespace ends every process the test started when it ends, even if it failed.

Usage: decorate the test with :func:`in_private_namespaces`. Outside the namespaces it
reruns exactly this test (``pytest <node id>``) under ``unshare``, fails with the inner
run's output if that fails, and skips (saying why) where ``unshare`` cannot make the
namespaces (not Linux, no ``unshare``/``ip``, no privilege for user namespaces), or
fails there if :data:`REQUIRE` is set.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_INSIDE = "GREEDYLR_TEST_IN_NAMESPACES"
REQUIRE = "GREEDYLR_REQUIRE_NAMESPACES"
"""Set (to anything) where these tests must run, as in CI: then not being able to make
the namespaces fails the test instead of skipping it."""
_ROOT = Path(__file__).resolve().parents[1]


def inside() -> bool:
    """True in the process that runs a test's body inside the namespaces."""
    return os.environ.get(_INSIDE) == "1"


def _unshare() -> list[str]:
    # a pid namespace too: when the test ends, however it ends, the kernel kills every
    # process it left (a Ray node of a failed test); --kill-child: also if we are killed
    command = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if os.geteuid() != 0:
        command.append("--map-root-user")  # an unprivileged user namespace
    return command


def _why_not() -> str | None:
    """Why the namespaces cannot be made here; None if they can."""
    if sys.platform != "linux":
        return "private network namespaces need Linux"
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found (util-linux, iproute2)"
    probe = subprocess.run([*_unshare(), "ip", "link", "set", "lo", "up"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare cannot make the namespaces here: {probe.stderr.strip()}"
    return None


def loopback_only() -> list[str]:
    """The addresses of this network namespace; raises unless they are loopback only."""
    shown = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True,
                           check=True).stdout.split("\n")
    addresses = [line.split()[3] for line in shown if line.strip()]
    assert set(addresses) <= {"127.0.0.1/8", "::1/128"}, addresses
    return addresses


def _rerun_inside(node_id: str, timeout: float) -> None:
    why = _why_not()
    if why is not None:
        if os.environ.get(REQUIRE):  # CI: a test that cannot run here is a failure
            pytest.fail(f"{REQUIRE} is set and {why}", pytrace=False)
        pytest.skip(why)
    script = 'ip link set lo up && exec "$@"'
    command = [*_unshare(), "sh", "-c", script, "sh", sys.executable, "-m", "pytest", "-q",
               "-p", "no:cacheprovider", f"--timeout={int(timeout)}", node_id]
    environment = {**os.environ, _INSIDE: "1", "RAY_USAGE_STATS_ENABLED": "0"}
    environment.pop("PYTEST_CURRENT_TEST", None)
    try:
        done = subprocess.run(command, cwd=_ROOT, env=environment, capture_output=True,
                              text=True, timeout=timeout + 60)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{node_id} inside the namespaces did not finish in {timeout} s:\n"
                    f"{exc.stdout}\n{exc.stderr}")
    if done.returncode != 0:
        pytest.fail(f"{node_id} failed inside the namespaces (exit {done.returncode}):\n"
                    f"{done.stdout[-8000:]}\n{done.stderr[-4000:]}", pytrace=False)
    if " passed" not in done.stdout:  # skipped or deselected inside: say so, do not pass
        pytest.skip(f"inside the namespaces: {done.stdout.strip().splitlines()[-1]}")


def in_private_namespaces(timeout: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated test inside new network (loopback only) and mount namespaces.

    Args:
        timeout: seconds the inner run may take.
    """

    def decorate(test: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            if inside():
                loopback_only()
                return test(*args, **kwargs)
            node_id = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
            _rerun_inside(node_id, timeout)
            return None

        return run

    return decorate
