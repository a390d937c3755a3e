"""The ``powergrid`` command line: plugins, validate, run, new, and pack sub-commands."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from powergrid import __version__
from powergrid.errors import DuplicatePluginError, PluginError, PowerGridError
from powergrid.evaluate import rule_actions, seed_action_spaces
from powergrid.first_party import FIRST_PARTY, provider_of
from powergrid.plugins import KINDS, get_registry
from powergrid.progress import progress


def _plugins(args: argparse.Namespace) -> int:
    registry = get_registry(allow_conflicts=True)
    if registry.conflicts:  # before any listing: one error naming both plugins and their files
        more = f" (and {len(registry.conflicts) - 1} more name(s) registered twice)" if len(registry.conflicts) > 1 else ""
        raise DuplicatePluginError(registry.conflicts[0] + more)
    if args.params:
        return _params(registry, args.params)
    broken = []
    print(_backend())
    for kind in KINDS:
        records = registry.records(kind)
        print(f"{'policies' if kind == 'policy' else kind + 's'} ({len(records)}):")
        for r in records:
            problem = r.problem()
            print(f"  {r.name:<18} {r.provider:<28} {f'BROKEN: {problem}' if problem else r.summary}")
            if problem:
                broken.append(f"{kind} {r.name!r} from {r.provider}: {problem}")
    for failed in registry.failed:
        print(f"failed to load: {failed.name} ({failed.distribution}): {failed.error}")
    if broken:
        more = f" (and {len(broken) - 1} more problem(s) above)" if len(broken) > 1 else ""
        raise PluginError(broken[0] + more)
    return 0


PARAM_KINDS = ("device", "protocol", "network", "dataset", "solver")


def _params(registry: Any, name: str) -> int:
    """Print the parameters (unit, default, expected values) of every plugin called ``name``."""
    from powergrid.params import describe_params, params_of

    found = [registry.get(kind, name) for kind in PARAM_KINDS if (kind, name) in registry]
    if not found:
        close = sorted({n for kind in PARAM_KINDS for n in registry.names(kind) if n.lower() == name.lower()})
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"no device, protocol, network, dataset or solver is called {name!r}{hint} "
                         "(powergrid plugins lists them)")
    for record in found:
        cls = params_of(record.load(), record.name)
        rows = describe_params(cls)
        print(f"{record.kind} {record.name} ({record.provider}): {len(rows)} parameter(s)")
        if rows:
            print(f"  {'name':<22} {'unit':<8} {'default':<14} expected")
        for (field, unit, default, expected), declared in zip(rows, attrs.fields(cls)):
            doc = declared.metadata.get("doc")
            print(f"  {field:<22} {unit or '-':<8} {default:<14} {expected}" + (f" — {doc}" if doc else ""))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from powergrid.builder import build_scenario
    from powergrid.config import EnvConfig

    _use_data_dir(args.data_dir)
    failed = []
    for path in args.config:  # every file, a bad one does not hide the next: one line each, errors on stderr
        try:
            scenario = build_scenario(EnvConfig.from_yaml(path))
            unchecked = _check_data(scenario)
        except Exception as exc:
            if args.debug:
                traceback.print_exc()
            print(f"powergrid: error: {error_line(exc)}", file=sys.stderr)
            failed.append(path)
            continue
        learned = [a for a in scenario.agents.values() if a.learned]
        print(f"{path}: ok — network {scenario.config.network.type} ({len(scenario.net.bus)} buses), "
              f"{len(scenario.agents)} agents ({len(learned)} learned), solver {scenario.solver.name}"
              + "".join(f"; datasets.{role}: download: true, the cache not checked (POWERGRID_OFFLINE=1 checks it)"
                        for role in unchecked))
    if len(args.config) > 1 and failed:
        print(f"powergrid: {len(failed)} of {len(args.config)} file(s) invalid: {', '.join(failed)}", file=sys.stderr)
    return 2 if failed else 0


def _check_data(scenario: Any) -> list[str]:
    """Draw one episode of every dataset the scenario names, offline: a missing folder or file is an error at its
    ``datasets.<role>`` now, not at the first reset of a run. Validate never downloads: a dataset with
    ``download: true`` is drawn only when the user has turned downloads off (POWERGRID_OFFLINE), as the run will
    then find its files in the cache or fail. Returns the roles not drawn (``download: true``, downloads allowed)."""
    import numpy as np

    from powergrid.builder import draw_episode

    config, before = scenario.config, os.environ.get("POWERGRID_OFFLINE")
    downloads = {role for role, spec in config.datasets.items() if spec.params.get("download") is True}
    if downloads:  # only powergrid-datasets' providers download (powergrid-core does not depend on it)
        from powergrid_datasets.cache import offline

        downloads = set() if offline() else downloads
    os.environ["POWERGRID_OFFLINE"] = "1"
    try:
        for role in config.datasets:
            if role not in downloads:
                draw_episode(config, role, scenario.providers[role], np.random.default_rng(0))
    finally:
        if before is None:
            os.environ.pop("POWERGRID_OFFLINE", None)
        else:
            os.environ["POWERGRID_OFFLINE"] = before
    return [role for role in config.datasets if role in downloads]


def _use_data_dir(data_dir: str | None) -> None:
    """``--data-dir``: the folder of dataset files, as POWERGRID_DATA_DIR (absolute) for this process."""
    if data_dir:
        if not Path(data_dir).is_dir():
            raise UsageError(f"--data-dir {data_dir}: no such folder (expected a folder of dataset files)")
        os.environ["POWERGRID_DATA_DIR"] = str(Path(data_dir).resolve())


def _run(args: argparse.Namespace) -> int:
    from powergrid.env import MultiAgentPowerGridEnv

    if args.plot and importlib.util.find_spec("matplotlib") is None:  # before the episodes, not after them
        raise UsageError('--plot needs matplotlib: pip install "powergrid-core[plot]"')
    _use_data_dir(args.data_dir)
    out = output_folder(args.out)
    env = MultiAgentPowerGridEnv.from_config(args.config, solver=args.solver)
    trajectory = output_file(out, f"{env.config.name}_trajectory.csv")
    # renamed to trajectory once every episode is written; the process id keeps two runs into one folder apart
    partial = output_file(out, f"{trajectory.name}.{os.getpid()}.partial")
    if args.plot:
        from powergrid.plots import EpisodeRecord

        record = EpisodeRecord(env)  # the first episode
    if not env.possible_agents:
        print(f"{env.config.name}: no agent has policy: learned; every agent runs its internal policy "
              f"(--policy {args.policy} does not apply)")
    made = [p for p in (out, *out.parents) if not p.exists()]  # the folders this run creates (removed if it writes nothing)
    out.mkdir(parents=True, exist_ok=True)
    every = list(env.scenario.agents)
    totals = {a: [0.0, 0.0, 0.0] for a in every}  # cost, safety, reward
    steps, short, started = 0, 0, time.perf_counter()  # short: episodes ended before their last tick
    failures: dict[str, int] = {}  # failed steps (env.failure: a diverged flow, a non-finite cost…) by reason
    first_failure = ""  # where the first failed step was, and its whole text
    # per device agent: its physics steps with a communication fault (state_dict()["comm_failures"] at the episode's
    # end, as HIL devices count them)
    comm_faults, physics_steps = dict.fromkeys((d.id for d in env.scenario.device_agents), 0), 0
    bar = progress(total=args.episodes * env.max_ticks, desc=env.config.name, unit="step")
    try:
        with bar, partial.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["episode", "tick", "agent", "reward", "cost_usd", "safety", "converged", "state"])
            for episode in range(args.episodes):
                env.reset(seed=args.seed + episode)
                seed_action_spaces(env, args.seed + episode)  # each agent its own stream: equal spaces draw apart
                before = steps
                while not env.ended:
                    if args.policy == "rule":
                        actions = rule_actions(env)
                    else:
                        actions = {a: env.action_space(a).sample() for a in env.agents}
                    tick, price = env.tick, env.ctx.price
                    _, rewards, _, _, _ = env.step(actions)
                    steps += 1
                    bar.update()
                    if args.plot and episode == 0:
                        record.record(env, tick * env.config.tick_s / 3600.0, price)
                    converged = not env.failure  # (infos are empty without learned agents)
                    if not converged:  # counted by reason; a diverged flow's details (its culprits) shown once
                        reason = env.failure.split("; ", 1)[0]
                        failures[reason] = failures.get(reason, 0) + 1
                        first_failure = first_failure or f"episode {episode}, tick {tick}: {env.failure}"
                    for agent_id, (cost, unsafe) in env.agent_costs().items():
                        totals[agent_id][0] += cost
                        totals[agent_id][1] += unsafe
                        totals[agent_id][2] += rewards.get(agent_id, 0.0)
                        agent = env.scenario.agents[agent_id]
                        state = agent.device.state_dict() if hasattr(agent, "device") else {}
                        writer.writerow([episode, tick, agent_id, rewards.get(agent_id, ""), f"{cost:.6g}",
                                         f"{unsafe:.6g}", converged, json.dumps({k: round(v, 6) for k, v in state.items()})])
                physics_steps += env.physics_steps
                short += steps - before < env.max_ticks
                for d in env.scenario.device_agents:
                    comm_faults[d.id] += int(d.device.state_dict().get("comm_failures", 0))
    except BaseException:  # Ctrl-C, a full disk, a failing plugin: the rows so far stay, under a name that says so
        if not steps:  # e.g. a dataset that fails at the first reset: its one-line error is all there is to say
            partial.unlink(missing_ok=True)
            for folder in made:  # innermost first; one another run wrote into is not empty and stays
                try:
                    folder.rmdir()
                except OSError:
                    break
        else:
            print(f"powergrid: stopped after {steps} step(s); the rows written so far are in {partial} "
                  f"({trajectory.name}, if any, is unchanged)", file=sys.stderr)
        raise
    os.replace(partial, trajectory)
    elapsed = time.perf_counter() - started
    policy = args.policy if env.possible_agents else "internal"
    planned = args.episodes * env.max_ticks
    played = (f" × {env.max_ticks} steps" if steps == planned
              else f", {steps} of {planned} steps ({'one' if short == 1 else short} ended early)")
    failed = f"{sum(failures.values())} failed step(s)" + (": " if failures else "") + \
        "; ".join(f"{reason} ({n})" for reason, n in failures.items())
    print(f"{env.config.name}: {args.episodes} episode(s){played}, policy {policy}, "
          f"solver {env.solver.name}, {steps / elapsed:.1f} steps/s, {failed}")
    print(f"{'agent':<16}{'kind':<8}{'learned':<9}{'cost $':>12}{'safety':>10}{'reward':>12}")
    for agent_id in every:
        agent = env.scenario.agents[agent_id]
        kind = type(agent).__name__.replace("Agent", "").lower()
        cost, unsafe, reward = totals[agent_id]
        print(f"{agent_id:<16}{kind:<8}{'yes' if agent.learned else 'no':<9}{cost:>12.2f}{unsafe:>10.4f}"
              f"{(f'{reward:12.2f}' if agent.learned else f'{chr(8212):>12}')}")
    if faulty := [f"{agent_id} {n}" for agent_id, n in comm_faults.items() if n]:
        print(f"communication faults (physics steps with one, of {physics_steps}): {', '.join(faulty)}")
    print(f"trajectory: {trajectory}")
    if args.plot:
        print("plots (episode 0): " + ", ".join(str(p) for p in record.save(out)))
    # a failed step is an event of the episode (settled, penalized, by default its end), not an error of the run: exit
    # code 0, and the last line says where the first one was and what stood out
    if first_failure:
        print(f"{sum(failures.values())} failed step(s) (rows with converged False); the first at {first_failure}")
    return 0


def _network_plot(args: argparse.Namespace) -> int:
    """Draw a network template, or a scenario's network with its agents marked, as a PNG."""
    if importlib.util.find_spec("matplotlib") is None:  # as run --plot: one line, not an ImportError
        raise UsageError('network plot needs matplotlib: pip install "powergrid-core[plot]"')
    from powergrid.plots import draw_network

    out = output_folder(args.out)
    if args.name.endswith((".yaml", ".yml")):
        from powergrid.builder import build_scenario
        from powergrid.config import EnvConfig

        scenario = build_scenario(EnvConfig.from_yaml(args.name))
        net, name = scenario.net, scenario.config.name
        agents = {a.id: [int(net.bus.index[b]) for b in ([a.bus] if hasattr(a, "bus") else a.zone)]
                  for a in scenario.agents.values()}  # a device's bus, a grid agent's zone
        title = f"{name}: network {scenario.config.network.type}, {len(agents)} agents"
    else:
        net, name, agents = get_registry().load("network", args.name)(), args.name, {}  # default parameters
        title = f"network {name}"
    path = output_file(out, f"{name}_network.png")
    out.mkdir(parents=True, exist_ok=True)
    draw_network(net, path, title=f"{title} ({len(net.bus)} buses)", agents=agents)
    print(f"network plot: {path}")
    return 0


SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def output_folder(text: str, option: str = "--out") -> Path:
    """``--out`` (or ``option``) as a folder: one that exists, or a path where one can be made (no file in the way),
    writable by this process (checked with ``os.access``, which creates nothing: a read-only mount or a folder
    without write permission is named now, not by an OSError at the first write)."""
    out = Path(text)
    for part in (out, *out.parents):
        if part.exists():
            if not part.is_dir():
                raise UsageError(f"{option} {text}: {part} is a file; expected a folder (existing or to be created)")
            if not os.access(part, os.W_OK | os.X_OK):
                made = "" if part == out else f" (where {out} would be created)"
                raise UsageError(f"{option} {text}: the folder {part}{made} is not writable (read-only, or no write "
                                 f"permission for this user); expected a folder this user can write to")
            break
    return out


def output_file(folder: Path, name: str) -> Path:
    """``folder / name`` for a plain file name (letters, digits, ``-_.``), never a path outside ``folder``
    (a symbolic link there, which would redirect the write, is refused)."""
    if not SAFE_FILE_NAME.fullmatch(name) or set(name) == {"."}:
        raise UsageError(f"output file name {name!r}: expected letters, digits, '-', '_' and '.' only")
    path = folder / name
    if path.is_symlink():
        raise UsageError(f"{path} is a symbolic link; refusing to write through it (remove it or choose another --out)")
    return path


def _new(args: argparse.Namespace) -> int:
    from powergrid.scaffold import new_package

    try:
        target = new_package(args.what, args.name, output_folder(args.dir, "--dir"))
    except ValueError as exc:  # a name that cannot be a plugin's: a usage error, not a failure
        raise UsageError(str(exc)) from None
    print(f"created {target}; next: pip install -e {target} && pytest {target}")
    return 0


class UsageError(PowerGridError):
    """A bad command line (unknown option, missing argument, bad value)."""


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are a :class:`UsageError` (one line, exit code 2 from :func:`main`)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def count(minimum: int) -> Any:
    """An argparse type: an integer ≥ ``minimum``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {minimum}, got {value}")
        return value

    return convert


def number(minimum: float) -> Any:
    """An argparse type: a finite number > ``minimum``."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value <= minimum:
            raise argparse.ArgumentTypeError(f"expected a finite number > {minimum:g}, got {text!r}")
        return value

    return convert


def _backend() -> str:
    from powergrid.solvers.newton import backend_summary

    return f"fast solver backend: {backend_summary()}"


class _Version(argparse.Action):
    """``--version``: the version and the fast solver's backend (imported only when asked)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        parser.exit(message=f"powergrid {__version__}\n{_backend()}\n")


def _pack_commands(commands: Mapping[str, Any]) -> str:
    """The ``--help`` epilog: first-party pack commands that are not installed, with their pip line."""
    missing = [(name, dist) for dist, kinds in FIRST_PARTY.items() for name in kinds.get("command", ())
               if name not in commands]
    if not missing:
        return ""
    return "commands of packs not installed: " + "; ".join(f"{name} (pip install {dist})" for name, dist in missing)


def build_parser(commands: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """The parser of the built-in commands, listing ``commands`` (pack commands by name) in ``--help``."""
    commands = commands if commands is not None else _commands()
    parser = ArgumentParser(prog="powergrid", description="Multi-agent RL on AC power systems.",
                            epilog=_pack_commands(commands))
    parser.add_argument("--version", action=_Version, nargs=0, help="the version and the power-flow backend in use")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (any position)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list every registered plugin by kind, with its distribution and version")
    p.add_argument("--params", metavar="NAME", default=None,
                   help="the parameters of the plugin NAME instead: units, defaults, expected values")
    p.set_defaults(func=_plugins)
    p = sub.add_parser("validate", help="check scenario files without running them")
    p.add_argument("config", nargs="+")
    p.add_argument("--data-dir", default=None, help="folder with dataset files (sets POWERGRID_DATA_DIR), as for run")
    p.set_defaults(func=_validate)
    p = sub.add_parser("run", help="run episodes of a scenario and print a per-agent summary")
    p.add_argument("config")
    p.add_argument("--episodes", type=count(1), default=1)
    p.add_argument("--policy", choices=("random", "rule"), default="random", help="policy of the learned agents")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--solver", default=None, help="override the solver (e.g. pandapower, fast)")
    p.add_argument("--data-dir", default=None, help="folder with dataset files (sets POWERGRID_DATA_DIR)")
    p.add_argument("--out", default="runs", help="folder for the trajectory CSV and plots, the only place written (default: ./runs)")
    p.add_argument("--plot", action="store_true",
                   help="also write PNGs of the first episode: voltages with the reward's band, dispatch and SOC, prices and trades")
    p.set_defaults(func=_run)
    p = sub.add_parser("network", help="network tools: network plot NAME|SCENARIO.yaml")
    network = p.add_subparsers(dest="action", required=True)
    p = network.add_parser("plot", help="draw a network template, or a scenario's network with its agents marked (PNG)")
    p.add_argument("name", help="a network template name (powergrid plugins) or a scenario YAML file")
    p.add_argument("--out", default="runs", help="folder for <name>_network.png (default: ./runs)")
    p.set_defaults(func=_network_plot)
    p = sub.add_parser("new", help="scaffold a plugin package")
    p.add_argument("what", choices=("device", "protocol"), help="a device type or a vertical protocol")
    p.add_argument("name", help="the class name in CamelCase, e.g. HeatStorage or TimeOfUse (a protocol is named time_of_use in scenarios)")
    p.add_argument("--dir", default=".", help="where to create the package folder (default: the current folder)")
    p.set_defaults(func=_new)
    for name, record in commands.items():  # run by _dispatch; listed here for --help
        sub.add_parser(name, help=f"{record.summary} [{record.provider}]", add_help=False)
    from powergrid.bench.cli import add_parser as add_bench
    add_bench(sub, count)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; bad input ends with one line ``powergrid: error: …`` and exit code 2 (``--debug``: traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            code = _dispatch(argv, debug)
            sys.stdout.flush()  # here, not at exit: a reader that left (powergrid plugins | head) is caught below
            return code
        except KeyboardInterrupt:
            print("powergrid: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # the reader of stdout left: not an error of the command (128 + SIGPIPE, as a shell's)
            try:  # no second error when Python flushes stdout at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 141
        except Exception as exc:  # every error becomes one line; --debug shows where it came from
            if debug:
                traceback.print_exc()
            print(f"powergrid: error: {error_line(exc)}", file=sys.stderr)
            return 2
        finally:
            for warning in caught:  # one line each, without source lines
                print(f"powergrid: warning: {warning_line(warning)}", file=sys.stderr)


#: The commands of core's parser (:func:`build_parser`); a pack command of one of these names is ignored with a warning.
BUILT_IN_COMMANDS = frozenset({"plugins", "validate", "run", "network", "new", "bench"})


def _commands() -> dict[str, Any]:
    """The pack commands by name; one named like a built-in command is left out with a warning."""
    commands = {}
    for record in get_registry(allow_conflicts=True).records("command"):
        if record.name in BUILT_IN_COMMANDS:
            warnings.warn(f"command {record.name!r} of {record.provider} is ignored: a built-in command has that name "
                          f"(rename it in its powergrid_register_commands)", stacklevel=2)
        else:
            commands[record.name] = record
    return commands


def _dispatch(argv: list[str], debug: bool = False) -> int:
    commands = _commands()
    if argv and argv[0] in commands:  # pack commands run inside the same error handling
        return int(commands[argv[0]].load()(argv[1:]) or 0)
    dist = provider_of("command", argv[0]) if argv else None
    if dist:
        raise UsageError(f"{argv[0]!r} is a command of {dist}, which is not installed: pip install {dist}")
    args = build_parser(commands).parse_args(argv)
    args.debug = debug
    return int(args.func(args) or 0)


def error_line(exc: BaseException) -> str:
    """One line for ``exc``: PowerGrid's own messages as they are, others prefixed with their type."""
    if isinstance(exc, (PowerGridError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError)):
        text = str(exc)
    elif isinstance(exc, KeyError) and exc.args:
        text = f"KeyError: {exc.args[0]}"
    else:
        text = f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
    return _one_line(text)


def warning_line(warning: warnings.WarningMessage) -> str:
    """One line for a caught warning: ``file:line: message`` when it points outside PowerGrid's own code (a plugin's
    declaration, e.g. a unit typo in its Params class), else the message; without a leading ``powergrid:`` (the line's
    prefix already says it)."""
    text = _one_line(str(warning.message))
    text = text[len("powergrid: "):] if text.startswith("powergrid: ") else text
    file = warning.filename or ""
    own = Path(__file__).resolve().parent
    try:
        inside = Path(file).resolve().is_relative_to(own)
    except (OSError, ValueError):
        inside = True
    if file and not file.startswith("<") and not inside:
        return f"{file}:{warning.lineno}: {text}"
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


if __name__ == "__main__":
    sys.exit(main())
