"""The Ray executor, on a local Ray and on a real two-node cluster, over loopback only.

Ray binds the machine's interface address by itself, so every test here runs inside a
private network namespace whose only interface is loopback (see ``isolation.py``): the
head, the second node, the workers and the driver all talk over 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from greedylr.cli import main
from greedylr.studies.runner import load_results, result_path, run_trials
from greedylr.studies.trial import TrialSpec
from isolation import in_private_namespaces

ray = pytest.importorskip("ray")

TOY = f"{Path(__file__).with_name('toy_train.py')}:train"


def _spec(schedule: str, seed: int, **settings: object) -> TrialSpec:
    return TrialSpec.make(study="t", workload=TOY, schedule=schedule, seed=seed, steps=20,
                          eval_every=10, settings=settings)


def _listening() -> list[str]:
    """The local addresses of every listening TCP socket in this network namespace."""
    lines = subprocess.run(["ss", "-tlnH"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    return [line.split()[3].rsplit(":", 1)[0] for line in lines if line.strip()]


def _assert_loopback(addresses: list[str]) -> None:
    assert addresses, "nothing listens: the check would prove nothing"
    assert set(addresses) <= {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}, addresses


@pytest.mark.slow
@in_private_namespaces(timeout=400)
def test_ray_executor_gives_the_same_results_as_local_processes(tmp_path: Path) -> None:
    specs = [_spec(s, seed) for s in ("greedy", "cosine") for seed in (0, 1)]
    specs.append(_spec("linear", 0, workload_fail_at=4))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
        _assert_loopback(_listening())
        via_ray = run_trials(specs, tmp_path / "ray", executor="ray", jobs=2)
    finally:
        ray.shutdown()
    local = run_trials(specs, tmp_path / "local", jobs=2)
    assert [r["status"] for r in via_ray] == ["ok"] * 4 + ["failed"]
    for a, b in zip(via_ray, local):
        assert a["key"] == b["key"] and a["status"] == b["status"] and a["error"] == b["error"]
        assert a["losses"] == b["losses"] and a["lrs"] == b["lrs"]
        assert a["metrics"] == b["metrics"] and a["events"] == b["events"]
        assert a["machine"]["torch_threads"] == b["machine"]["torch_threads"] == 1
    assert len(load_results(tmp_path / "ray")) == 5


def _kill_worker_node_mid_trial(cluster: object, worker: object, worker_id: str, out: Path,
                                running: Path, killed: list[float]) -> None:
    """Kill the worker node (SIGKILL, no goodbye) once it has finished a trial and while it
    runs another one, started just now (so far from its end)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        finished_there = any(
            json.loads(p.read_text())["machine"].get("ray_node") == worker_id
            for p in out.glob("trials/*.json")
        )
        running_there = False
        for marker in running.glob(f"{worker_id}-*"):
            with contextlib.suppress(FileNotFoundError):  # it may end meanwhile
                running_there |= time.time() - marker.stat().st_mtime < 1.0  # of ~3 s
        if finished_there and running_there:
            cluster.remove_node(worker, allow_graceful=False)  # type: ignore[attr-defined]
            killed.append(time.monotonic())
            return
        time.sleep(0.05)


@pytest.mark.slow
@in_private_namespaces(timeout=500)
def test_a_compare_study_on_two_nodes_survives_losing_one(tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    out, running = tmp_path / "study", tmp_path / "running"
    running.mkdir()
    # two nodes, each its own raylet and object store with its own CPUs
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"})
    worker = cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        nodes = ray.nodes()
        assert len(nodes) == 2 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
        _assert_loopback(_listening())
        head_id = next(n["NodeID"] for n in nodes if n["Resources"]["CPU"] == 1)
        worker_id = next(n["NodeID"] for n in nodes if n["Resources"]["CPU"] == 2)

        killed: list[float] = []
        killer = threading.Thread(target=_kill_worker_node_mid_trial,
                                  args=(cluster, worker, worker_id, out, running, killed))
        killer.start()
        command = ["compare", TOY, "--schedules", "greedy,exponential", "--seeds", "4",
                   "--steps", "20", "--set", "workload_sleep=0.15",
                   "--set", f"workload_running_dir={json.dumps(str(running))}",
                   "--executor", "ray", "--address", cluster.address, "--out", str(out)]
        started = time.monotonic()
        assert main(command) == 0
        wall = time.monotonic() - started
        killer.join()
        assert killed, "the worker node was never killed mid-trial"

        results = load_results(out)
        keys = [r["key"] for r in results]
        files = sorted(p.name for p in (out / "trials").iterdir())
        # nothing lost, nothing twice: one complete file per trial, all ok
        assert len(keys) == len(set(keys)) == 8
        assert files == sorted(f"{k}.json" for k in keys)
        assert all(r["status"] == "ok" for r in results)
        # trials ran on both nodes; those after the kill on the head only
        ran_on = {r["machine"]["ray_node"] for r in results}
        assert ran_on == {head_id, worker_id}
        # the trial(s) the worker node took down with it were run again on the head
        lost = [p.name.rsplit("-", 1) for p in running.iterdir()]
        assert lost and all(node == worker_id for node, _ in lost)

        # the rerun finds every trial stored: it runs nothing and changes nothing
        before = {p.name: p.read_bytes() for p in (out / "trials").iterdir()}
        assert main(command) == 0
        assert {p.name: p.read_bytes() for p in (out / "trials").iterdir()} == before
        print(f"study of 8 trials on 2 nodes, one killed: {wall:.1f} s")
    finally:
        ray.shutdown()
        cluster.shutdown()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@in_private_namespaces(timeout=400)
def test_a_ray_trial_over_the_time_limit_is_stopped_and_stored_as_timeout(
    tmp_path: Path,
) -> None:
    running = tmp_path / "running"
    running.mkdir()
    slow = _spec("greedy", 0, workload_sleep=2.0, workload_running_dir=str(running))
    fast = _spec("greedy", 1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # 20 s: the fast trial's Ray worker starts and imports torch inside the limit,
        # which took over 8 s on two loaded cores
        results = run_trials([slow, fast], tmp_path / "study", executor="ray",
                             trial_timeout=20.0)
        # the Ray worker that ran it was killed (Ray still runs): its marker is left,
        # its process is gone
        (marker,) = running.iterdir()
        pid = int(marker.name.rsplit("-", 1)[1])
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        ray.shutdown()
    assert [r["status"] for r in results] == ["timeout", "ok"]
    assert "over the trial time limit of 20 s" in results[0]["error"]
    # counted from the trial's start: it ran about the limit, not its whole 40 s
    assert 20.0 <= results[0]["wall_time"] < 35
    stored = json.loads(result_path(tmp_path / "study", slow).read_text())
    assert stored["status"] == "timeout" and stored["trial_timeout"] == 20.0
