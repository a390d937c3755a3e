"""Sessions: core alone, the dataset pack with core, the other packs together, everything together, wheels, lint, docs,
demo, benchmarks.

``nox`` runs the default test sessions; ``nox -s demo`` runs the demo; ``nox -s docs`` builds the site; ``nox -s bench``
the benchmarks; ``nox -s lowest`` the fast tests at the lowest versions the pyproject files allow; ``nox -s rl_sb3``
tests/rl with Stable-Baselines3 alone, at the newest gymnasium (which RLlib's pin keeps out of ``rl``).
Every pytest session writes a JUnit report to ``.nox/reports/`` (summed up by ``.ci/run``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent
CORE = "./powergrid-core"
PACKS = {
    "devices": "./powergrid-devices",
    "protocols": "./powergrid-protocols",
    "datasets": "./powergrid-datasets",
    "hil": "./powergrid-hil",
}
TEST_TOOLS = ("pytest>=8", "pytest-xdist>=3", "hypothesis>=6")
# the extras take torch>=2.3,<3; the sessions that train pin it in the same install command: the CPU build on disk, not
# what an unpinned resolver picks (a multi-GB CUDA build)
TORCH = "torch==2.13.0"
OPENDSS = "opendssdirect.py>=0.9,<0.10"  # OpenDSS, the independent solver tests/core cross-checks regulators against
REPORTS = ROOT / ".nox" / "reports"

nox.options.sessions = ["lint", "core", "datasets", "packs", "integration", "wheels", "rl", "docs"]
nox.options.reuse_existing_virtualenvs = True


def _pytest(session: nox.Session, *paths: str, dist: str = "loadfile", serial: str | None = None) -> None:
    """pytest on ``paths`` with one pytest-xdist worker per CPU, its JUnit report in REPORTS. ``dist``: how tests go to
    the workers: ``loadfile``, each test file whole on one worker (its module fixtures built once); ``load``, each test
    on its own. ``serial``: a marker whose tests run afterwards in one process, report ``<session>-<marker>.xml``
    (tests/rl: ``ray``, the tests that start Ray: one cluster at a time, and ~/ray_results left as found; pytest-xdist's
    ``xdist_group`` cannot keep them together, since pytest 9.2 ignores the group it appends to a test's id)."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    workers = ("-n", "auto", "--dist", dist)
    passes = [(workers, (), session.name, [0])]
    if serial is not None:  # the split goes after the posargs: a ``-n`` or ``-m`` there cannot undo it (``-n 0`` not
        # ``-p no:xdist``, which makes a ``-n`` among the posargs an error); exit code 5: a pass selected no test (the
        # serial one, or with posargs (``-k``) either)
        passes = [(workers, ("-m", f"not {serial}"), session.name, [0, 5] if session.posargs else [0]),
                  ((), ("-m", serial, "-n", "0"), f"{session.name}-{serial}", [0, 5])]
    for options, split, report, codes in passes:
        session.run("pytest", "-q", "-p", "no:cacheprovider", *options, f"--junitxml={REPORTS / report}.xml", *paths,
                    *session.posargs, *split, env={"POWERGRID_STRICT_PLUGINS": "1"}, success_codes=codes)


@nox.session
def core(session: nox.Session) -> None:
    """powergrid-core alone in its own venv: proves the core needs no pack."""
    session.install(CORE, *TEST_TOOLS)
    _pytest(session, "tests/core")


@nox.session
def packs(session: nox.Session) -> None:
    """The device, protocol and hardware-in-the-loop packs with core and the dataset pack, in one venv: their example
    scenarios use each other's plugins (the HIL tests run a real Modbus server on 127.0.0.1)."""
    session.install(CORE, *PACKS.values(), *TEST_TOOLS)
    _pytest(session, "tests/devices", "tests/protocols", "tests/hil")


@nox.session
def datasets(session: nox.Session) -> None:
    """The dataset pack with core."""
    session.install(CORE, f"{PACKS['datasets']}[plot,simbench,pvlib,xlsx]", *TEST_TOOLS)
    _pytest(session, "tests/datasets")


@nox.session
def integration(session: nox.Session) -> None:
    """Everything together: every example config, the PettingZoo API test, pandapower cross-checks."""
    session.install(f"{CORE}[plot]", *PACKS.values(), *TEST_TOOLS, OPENDSS)
    # tests/core again with every pack, lightsim2grid and OpenDSS: its tests that need one skip in the core session
    _pytest(session, "tests/integration", "tests/fuzz", "tests/bench", "tests/core")


@nox.session
def wheels(session: nox.Session) -> None:
    """Build the wheel of every distribution and check each installs its own import package."""
    session.install("build")
    out = ROOT / ".nox" / "dist"
    for path in (CORE, *PACKS.values()):
        session.run("python", "-m", "build", "--wheel", "--outdir", str(out), path)
    names = sorted(p.name for p in out.glob("*.whl"))
    session.log("built: " + ", ".join(names))
    for dist in ("powergrid_core", "powergrid_devices", "powergrid_protocols", "powergrid_datasets", "powergrid_hil"):
        if not any(n.startswith(dist + "-") for n in names):
            session.error(f"no wheel for {dist}")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a day of the three-microgrid IEEE 34 case on the shipped CAISO 2023 data (offline; a warning fails it)."""
    session.install(CORE, PACKS["devices"], PACKS["protocols"], PACKS["datasets"])
    session.run("powergrid", "plugins")
    session.run("powergrid", "run", "configs/ieee34_3mg.yaml", "--episodes", "1", "--out", ".nox/demo", *session.posargs,
                env={"POWERGRID_OFFLINE": "1", "PYTHONWARNINGS": "error"})


DOCS_TOOLS = ("mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10", "mkdocstrings[python]>=0.26,<2")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors (mkdocs build --strict), then the docs tests: every code
    block runs, each guide's example package installs and runs (setuptools: they build without isolation),
    the reference pages cover the code."""
    session.install(f"{CORE}[plot]", *PACKS.values(), *DOCS_TOOLS, "setuptools>=70.1", *TEST_TOOLS)
    # MPLCONFIGDIR: matplotlib, imported while the reference pages are built, keeps its font cache out of HOME
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1", "MPLCONFIGDIR": session.create_tmp()})
    _pytest(session, "tests/docs")


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks (medians); see docs/performance.md."""
    session.install(f"{CORE}[plot]", *PACKS.values())
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)
    # the benchmark tasks with training (long; docs/benchmarks.md), torch pinned to the CPU build on disk (TORCH)
    session.install(TORCH, f"{CORE}[plot,sb3,rllib,mappo]", PACKS["devices"], PACKS["protocols"], PACKS["datasets"])
    session.run("powergrid", "bench", "all", "--days", "12", "--out", ".nox/bench-tasks")
    for task in ("dispatch_mg", "p2p_trading"):  # the seven default libraries (docs/benchmarks.md): ≈ 3.5 h per task
        session.run("powergrid", "bench", task, "--days", "12", "--train-minutes", "30", "--out", f".nox/bench-{task}")


@nox.session
def rl(session: nox.Session) -> None:
    """The RL adapters against the real libraries: RLlib (PPO in a Ray worker) and Stable-Baselines3 (spawned workers)."""
    session.install(TORCH, f"{CORE}[rllib,sb3,mappo]", PACKS["devices"], PACKS["protocols"], PACKS["datasets"],
                    *TEST_TOOLS)
    _pytest(session, "tests/rl", dist="load", serial="ray")


# what rl_sb3 prints: the gymnasium the resolver chose; and it stops if something pulled Ray in after all
SB3_VERSIONS = """
import importlib.util, gymnasium, stable_baselines3
assert importlib.util.find_spec("ray") is None, "ray is installed: gymnasium is the one ray[rllib] pins"
print(f"gymnasium {gymnasium.__version__}, stable-baselines3 {stable_baselines3.__version__}")
"""


@nox.session
def rl_sb3(session: nox.Session) -> None:
    """tests/rl with Stable-Baselines3 alone, at the newest gymnasium (on demand, ≈ 7 min; Ray and TorchRL skip).

    ray[rllib] pins gymnasium (1.2.2 for Ray 2.60), so ``rl`` tests SB3 at that version, while a user of
    ``powergrid-core[sb3]`` alone gets the newest gymnasium the core allows."""
    session.install(TORCH, f"{CORE}[sb3]", PACKS["devices"], PACKS["protocols"], PACKS["datasets"], *TEST_TOOLS)
    session.run("python", "-c", SB3_VERSIONS)
    _pytest(session, "tests/rl", dist="load", serial="ray")


# ``lowest``'s parts, each in its own venv: (our distributions and extras, other requirements, the tests). The packs
# run at the core's numpy floor (1.x), apart from the rllib extra, which asks for numpy 2; TorchRL's MAPPO apart from
# Stable-Baselines3, as the mappo extra asks for gymnasium 1.1, which SB3 2.5 refuses (simbench and pvlib: the dataset
# tests that read them; no bounds of ours)
_WITH_PACKS = (PACKS["devices"], PACKS["protocols"], PACKS["datasets"])
LOWEST_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "packs": ((f"{CORE}[plot]", f"{PACKS['datasets']}[plot,simbench,pvlib,xlsx]", PACKS["devices"], PACKS["protocols"],
               PACKS["hil"]), (),
              ("tests/core", "tests/integration/test_scenarios.py", "tests/integration/test_contract.py", "tests/devices",
               "tests/protocols", "tests/datasets", "tests/hil")),
    # the benchmark tasks' training smokes: minutes each, TorchRL's the one that tests the mappo extra
    "rl": ((f"{CORE}[rllib,sb3]", *_WITH_PACKS), (TORCH,), ("tests/rl", "--ignore=tests/rl/test_bench_training.py")),
    "mappo": ((f"{CORE}[mappo]", *_WITH_PACKS), (TORCH,), ("tests/rl/test_bench_training.py", "-k", "torchrl_mappo")),
}
# matplotlib before 3.10.7 calls names pyparsing 3.3 deprecated: warnings on stderr, which the CLI tests refuse
LOWEST_PINS = ("pyparsing<3.3",)


def lower_bounds(installs: tuple[str, ...]) -> dict[str, str]:
    """The lowest version each direct dependency of ``installs`` (``./dir[extra,...]``) allows, read from their
    pyproject.toml files: name -> version, the highest lower bound where several files bound one name. Our own
    distributions, requirements whose marker is false here and requirements with no lower bound are left out."""
    import tomllib  # Python 3.11+: imported here, so that a nox on 3.10 still runs the other sessions

    ours = {canonicalize_name(Path(path).name) for path in (CORE, *PACKS.values())}
    lows: dict[str, str] = {}
    for install in installs:
        path, _, extras = install.partition("[")
        project = tomllib.loads((ROOT / path / "pyproject.toml").read_text())["project"]
        lines = list(project["dependencies"])
        for extra in filter(None, extras.rstrip("]").split(",")):
            lines += project["optional-dependencies"][extra]
        for line in lines:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if name in ours or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
                continue
            floors = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
            if any(s.operator == ">" for s in req.specifier):
                raise ValueError(f"{path}/pyproject.toml: {line!r}: a '>' bound has no lowest version; write '>='")
            for floor in floors:
                if name not in lows or Version(floor) > Version(lows[name]):
                    lows[name] = floor
    return lows


@nox.session
@nox.parametrize("part", list(LOWEST_PARTS))
def lowest(session: nox.Session, part: str) -> None:
    """The fast tests with every direct dependency at the lowest version our pyproject files allow (not in the default
    run, ≈ 15 min for the three parts): packs, HIL, the PettingZoo API test on every config; the RLlib and
    Stable-Baselines3 adapters; TorchRL's MAPPO. torch stays the CPU build on disk (TORCH), so its own lower bound is
    not tested here."""
    installs, others, tests = LOWEST_PARTS[part]
    torch = Requirement(TORCH)
    pins = [f"{name}=={version}" for name, version in sorted(lower_bounds(installs).items()) if name != torch.name]
    constraints = Path(session.create_tmp()) / "lowest.txt"
    constraints.write_text("\n".join([*pins, *LOWEST_PINS, TORCH]) + "\n")
    session.log("lower bounds: " + ", ".join(pins))
    session.install("-c", str(constraints), *installs, *others, *TEST_TOOLS)
    # Ray 2.46's socket paths must fit 107 bytes, and pytest's folder in the session's tmp is deeper than that allows
    basetemp = Path(tempfile.mkdtemp(prefix="pg-lowest-"))
    try:
        if part == "packs":
            _pytest(session, f"--basetemp={basetemp}", *tests)
        else:
            _pytest(session, f"--basetemp={basetemp}", *tests, dist="load", serial="ray")
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)
