"""Sessions: each distribution alone with core, everything together, wheels, lint, docs, demo, benchmarks.

``nox`` runs the default test sessions; ``nox -s demo`` runs the demo; ``nox -s docs`` builds the site; ``nox -s bench``
the benchmarks.
Every pytest session writes a JUnit report to ``.nox/reports/`` (summed up by ``.ci/run``).
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
CORE = "./powergrid-core"
PACKS = {
    "devices": "./powergrid-devices",
    "protocols": "./powergrid-protocols",
    "datasets": "./powergrid-datasets",
    "hil": "./powergrid-hil",
}
TEST_TOOLS = ("pytest>=8", "hypothesis>=6")
# the extras take torch>=2.3,<3; the sessions that train pin it in the same install command: the CPU build on disk, not
# what an unpinned resolver picks (a multi-GB CUDA build)
TORCH = "torch==2.13.0"
OPENDSS = "opendssdirect.py>=0.9,<0.10"  # OpenDSS, the independent solver tests/core cross-checks regulators against
REPORTS = ROOT / ".nox" / "reports"

nox.options.sessions = ["lint", "core", "devices", "protocols", "datasets", "hil", "integration", "wheels", "rl", "docs"]
nox.options.reuse_existing_virtualenvs = True


def _pytest(session: nox.Session, *paths: str) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    session.run("pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={REPORTS / session.name}.xml", *paths,
                *session.posargs, env={"POWERGRID_STRICT_PLUGINS": "1"})


@nox.session
def core(session: nox.Session) -> None:
    """powergrid-core alone in its own venv: proves the core needs no pack."""
    session.install(CORE, *TEST_TOOLS)
    _pytest(session, "tests/core")


@nox.session
def devices(session: nox.Session) -> None:
    """The device pack with core (and the protocol and dataset packs its example scenarios use)."""
    session.install(CORE, PACKS["devices"], PACKS["protocols"], PACKS["datasets"], *TEST_TOOLS)
    _pytest(session, "tests/devices")


@nox.session
def protocols(session: nox.Session) -> None:
    """The protocol pack with core (and the device and dataset packs its example scenarios use)."""
    session.install(CORE, PACKS["devices"], PACKS["protocols"], PACKS["datasets"], *TEST_TOOLS)
    _pytest(session, "tests/protocols")


@nox.session
def datasets(session: nox.Session) -> None:
    """The dataset pack with core."""
    session.install(CORE, f"{PACKS['datasets']}[plot,simbench,pvlib,xlsx]", *TEST_TOOLS)
    _pytest(session, "tests/datasets")


@nox.session
def hil(session: nox.Session) -> None:
    """The hardware-in-the-loop pack with core (a real Modbus server on 127.0.0.1)."""
    session.install(CORE, PACKS["devices"], PACKS["protocols"], PACKS["datasets"], PACKS["hil"], *TEST_TOOLS)
    _pytest(session, "tests/hil")


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
    _pytest(session, "tests/rl")
