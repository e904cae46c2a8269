"""The package as users get it: a light core, layered imports, extras named in one line.

The slow tests build the wheel and the sdist and install the wheel into fresh virtual
environments: one with torch only (the core, then the ``compare`` extra added to it; what
these require is this environment's, linked in, see :func:`_link_what_greedylr_requires`)
and one without torch (``greedylr.rule``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import textwrap
import venv
from pathlib import Path

import pytest

from greedylr._extras import MissingExtra, requires_extra

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *, python: str = sys.executable, cwd: Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([python, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=cwd, timeout=600, check=False)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


# -- fast: in this environment ------------------------------------------------------------


def test_the_message_names_the_distribution_and_the_extra() -> None:
    blocked = "import sys; sys.modules['sklearn'] = None\n"  # as if not installed
    done = _python(blocked + textwrap.dedent("""
        from greedylr._extras import MissingExtra, requires_extra
        try:
            with requires_extra("compare", "greedylr compare"):
                import sklearn.datasets
        except MissingExtra as exc:
            assert isinstance(exc, ImportError)
            raise
    """), check=False)
    assert done.stderr.strip().splitlines()[-1] == (
        "greedylr._extras.MissingExtra: greedylr compare needs scikit-learn: "
        "pip install 'greedylr[compare]'"
    )


def test_an_unknown_missing_module_propagates_unchanged() -> None:
    with pytest.raises(ModuleNotFoundError) as caught, requires_extra("plot", "greedylr plot"):
        import no_such_module_here  # noqa: F401
    assert not isinstance(caught.value, MissingExtra)


def test_the_cli_prints_the_missing_extra_in_one_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    _python(f"""
        from greedylr import Trace
        trace = Trace(1)
        for step in range(1, 30):
            trace.record(step, 1.0 / step, 1.0 / step, [0.1])
        trace.save({str(trace)!r})
    """)
    done = _python(f"""
        import sys
        sys.modules["matplotlib"] = None  # as if not installed
        from greedylr.cli import main
        sys.exit(main(["plot", {str(trace)!r}, "-o", {str(tmp_path / "p.png")!r}]))
    """, check=False)
    assert done.returncode == 1
    assert done.stderr == "greedylr plot needs matplotlib: pip install 'greedylr[plot]'\n"


# torch blocked: importing it raises, as in an environment without it
_NO_TORCH = "import sys; sys.modules['torch'] = None\n"


def test_the_package_and_the_rule_import_without_torch() -> None:
    _python(_NO_TORCH + textwrap.dedent("""
        import greedylr, greedylr.rule
        from greedylr import GreedyConfig
        assert GreedyConfig().patience == 10
        try:
            greedylr.GreedyLR
        except ImportError:
            pass  # the scheduler needs torch, and says so when used
        else:
            raise AssertionError("GreedyLR without torch")
    """))


def test_the_optax_port_imports_without_torch() -> None:
    pytest.importorskip("optax")
    _python(_NO_TORCH + textwrap.dedent("""
        from greedylr.integrations.optax import greedy_lr
        greedy_lr(0.1)
    """))


def test_import_defers_dynamo_until_device_mode() -> None:
    _python("""
        import sys
        import torch
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
        by_torch = "torch._dynamo" in sys.modules  # some torch versions' optimizers import it
        from greedylr import GreedyLR
        GreedyLR(opt)  # float mode
        assert ("torch._dynamo" in sys.modules) == by_torch, "float mode imported dynamo"
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=torch.tensor(0.1))
        GreedyLR(opt, device_mode=True)  # the trace's recording is kept out of torch.compile
        assert "torch._dynamo" in sys.modules
    """)


def test_no_tracked_file_is_one_gitignore_lists() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "ls-files", "-ci", "--exclude-standard"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert done.stdout == ""


# -- slow: built and installed as users get it --------------------------------------------


def _venv(path: Path) -> str:
    """A fresh virtual environment, without pip (:func:`_pip` drives this one's); its python."""
    venv.create(path, with_pip=False)
    return str(path / "bin" / "python")


def _link_what_greedylr_requires(python: str, folder: Path, wheel: Path,
                                 extras: str = "") -> None:
    """What ``greedylr[extras]`` requires, as the ``wheel``'s metadata says, and the
    environment of ``python`` lacks, each distribution as this environment installed it,
    importable there as if pip had installed it: their files linked into ``folder``, which
    a ``.pth`` file adds to that environment's path, metadata included, so that pip takes
    them as installed (and checks their versions against what it resolves). Unpacking and
    compiling torch's 700 MB, then scipy, scikit-learn and matplotlib for the ``compare``
    extra, took most of a two-minute test."""
    import importlib.metadata as md
    import zipfile

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    listed = _python("""
        import importlib.metadata as md, site
        print(site.getsitepackages()[0])
        print(" ".join(d.metadata["Name"] for d in md.distributions()))
    """, python=python).stdout.splitlines()
    # greedylr itself is what pip installs, from the wheel
    site, present = listed[0], {"greedylr", *map(canonicalize_name, listed[1].split())}
    [info] = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()
              if n.split("/")[0].endswith(".dist-info")}
    built = md.PathDistribution(zipfile.Path(wheel, f"{info}/"))
    folder.mkdir()
    todo = [Requirement(f"greedylr[{extras}]" if extras else "greedylr")]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in expanded:
            continue
        expanded.add((name, frozenset(requirement.extras)))
        dist = built if name == "greedylr" else md.distribution(name)
        if name not in present:
            present.add(name)
            # (not the bytecode of top-level modules: nothing of it is needed)
            for top in {f.parts[0] for f in dist.files or ()} - {"..", "__pycache__"}:
                _link(Path(str(dist.locate_file(top))), folder / top)
        todo += [r for r in map(Requirement, dist.requires or ())
                 if r.marker is None or any(r.marker.evaluate({"extra": extra})
                                            for extra in {"", *requirement.extras})]
    Path(site, f"{folder.name}.pth").write_text(f"{folder}\n")


def _link(source: Path, target: Path) -> None:
    """``target`` a link to ``source``; where a folder of that name is linked already (a
    namespace package several distributions share, as CUDA builds of torch have ``nvidia``),
    a folder of links to the entries of both. A file linked already stays."""
    if not os.path.lexists(target):
        target.symlink_to(source)
        return
    if target.resolve() == source.resolve():  # one folder, as each nvidia-* locates it
        return
    if not (source.is_dir() and target.is_dir()):
        return
    if target.is_symlink():
        linked = target.resolve()
        target.unlink()
        target.mkdir()
        for entry in linked.iterdir():
            _link(entry, target / entry.name)
    for entry in source.iterdir():
        _link(entry, target / entry.name)


def _pip(python: str, *args: str) -> None:
    """``pip install`` into the environment of ``python``."""
    done = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                           *args], capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and, built from it, the wheel (with this environment's setuptools)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_sdist_holds_the_package_license_and_changelog_not_tests(dist: Path) -> None:
    [sdist] = dist.glob("greedylr-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml",
            "src/greedylr/scheduler.py", "src/greedylr/py.typed"} <= names
    assert not [n for n in names if n.startswith(("tests/", "results/", "examples/"))]


@pytest.mark.slow
def test_the_wheel_with_torch_only(dist: Path, tmp_path: Path) -> None:
    [wheel] = dist.glob("greedylr-*.whl")
    python = _venv(tmp_path / "venv")
    _link_what_greedylr_requires(python, tmp_path / "core", wheel)
    _pip(python, str(wheel))
    bin_ = tmp_path / "venv" / "bin"
    work = tmp_path / "work"
    work.mkdir()

    # the core is torch and numpy: nothing of the extras came along
    installed = _python("""
        import importlib.metadata as md
        print(" ".join(sorted(d.metadata["Name"].lower() for d in md.distributions())))
    """, python=python).stdout.split()
    for extra_only in ("rich", "matplotlib", "scikit-learn", "scipy", "transformers"):
        assert extra_only not in installed, installed

    # the scheduler and the trace
    _python("""
        import torch
        from greedylr import GreedyLR
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        sched = GreedyLR(opt, patience=2)
        x, y = torch.randn(64, 4), torch.randn(64, 1)
        for _ in range(200):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step(); sched.step(loss)
        assert len(sched.trace) == 200 and sched.events
        sched.trace.save("run.jsonl")
    """, python=python, cwd=work)

    # diagnose is core; plot and compare name their extra in one line
    done = _run([str(bin_ / "greedylr"), "diagnose", "run.jsonl"], work)
    assert done.returncode == 0 and "episode" in done.stdout, done.stdout + done.stderr
    done = _run([str(bin_ / "greedylr"), "plot", "run.jsonl"], work)
    assert (done.returncode, done.stderr) == (
        1, "greedylr plot needs matplotlib: pip install 'greedylr[plot]'\n"), done.stderr
    (work / "tiny.py").write_text(textwrap.dedent("""
        import torch

        def train(trial):
            model = torch.nn.Linear(4, 1)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
            trial.scheduler(opt)
            x, y = torch.randn(64, 4), torch.randn(64, 1)
            for _ in range(trial.steps):
                loss = torch.nn.functional.mse_loss(model(x), y)
                opt.zero_grad(); loss.backward(); opt.step(); trial.step(loss)
            trial.report(mse=float(loss))
    """))
    compare = [str(bin_ / "greedylr"), "compare", "tiny.py:train", "--seeds", "1",
               "--steps", "30", "--out", "ab"]
    done = _run(compare, work)
    assert (done.returncode, done.stderr) == (
        1, "greedylr compare needs rich: pip install 'greedylr[compare]'\n"), done.stderr

    # with the documented extra, compare runs its default schedules (greedy, cosine),
    # transformers still absent
    _link_what_greedylr_requires(python, tmp_path / "compare", wheel, "compare")
    _pip(python, f"{wheel}[compare]")
    _python("import importlib.util; assert not importlib.util.find_spec('transformers')",
            python=python)
    done = _run(compare, work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"│ greedy\s*│.*│ 1/0/0/0/0\s*│", done.stdout), done.stdout
    assert re.search(r"│ cosine\s*│.*│ 1/0/0/0/0\s*│", done.stdout), done.stdout
    assert (work / "ab" / "report.md").is_file()


@pytest.mark.slow
def test_the_wheel_without_torch(dist: Path, tmp_path: Path) -> None:
    [wheel] = dist.glob("greedylr-*.whl")
    python = _venv(tmp_path / "venv")
    _pip(python, "--no-deps", str(wheel))
    _python("""
        import importlib.util, greedylr.rule
        assert importlib.util.find_spec("torch") is None
        from greedylr.rule import GreedyConfig, init, update
        config = GreedyConfig(patience=0, smoothing="none")
        state = init(config, [0.1])
        update(config, state, 1.0)
        update(config, state, 0.5)
        assert state.lrs[0] > 0.1
    """, python=python, cwd=tmp_path)
