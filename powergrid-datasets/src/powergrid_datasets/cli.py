"""``powergrid datasets``: list the dataset providers, describe one, plot an episode, download data.

    powergrid datasets list
    powergrid datasets info caiso
    powergrid datasets plot caiso --role load -p area=AVA --steps 96 --step-minutes 15 --seed 1 --out load.png
    powergrid datasets fetch caiso --role load -p area=AVA -p year=2023

``-p/--param KEY=VALUE`` values are read as YAML scalars, as in a scenario (``-p year=2023``, ``-p scale=1e3`` are numbers).
Run through ``powergrid``: an error is one line ``powergrid: error: …`` and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from powergrid import get_registry
from powergrid.cli import ArgumentParser, UsageError, count, number, output_folder
from powergrid.config import load_yaml_with_lines
from powergrid.params import build_params, describe_params


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="powergrid datasets", description="Dataset providers (profile sources).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every installed dataset provider")
    info = sub.add_parser("info", help="parameters and roles of one provider")
    info.add_argument("name")
    plot = sub.add_parser("plot", help="plot one episode of a provider to a PNG (needs matplotlib)")
    plot.add_argument("name")
    plot.add_argument("--role", default="load", help="profile role: load, solar, wind, price, temperature")
    plot.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="a provider parameter")
    plot.add_argument("--steps", type=count(1), default=96 * 7, help="number of steps (default one week at 15 min)")
    plot.add_argument("--step-minutes", type=number(0), default=15.0)
    plot.add_argument("--seed", type=count(0), default=0)
    plot.add_argument("--out", required=True, help="PNG file to write, ending in .png (its folder is created if missing)")
    fetch = sub.add_parser("fetch", help="download a provider's data into the cache (the only way besides download: true)")
    fetch.add_argument("name")
    fetch.add_argument("--role", default="load", help="profile role: load, solar, wind, price")
    fetch.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="a provider parameter")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The sub-command; errors propagate to ``powergrid``'s handler (one line, exit code 2)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "list":
        return _list()
    if args.command == "info":
        return _info(args.name)
    if args.command == "fetch":
        return _fetch(args)
    return _plot(args)


def _provider(name: str, role: str, items: Sequence[str], **forced: Any) -> Any:
    raw = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}")
        raw[key.strip()] = load_yaml_with_lines(value, f"--param {key.strip()}")[0] if value.strip() else None
    cls = get_registry().load("dataset", name)
    params = build_params(cls.Params, raw | forced, path=f"datasets.{role}")
    return cls(params, role)


def _fetch(args: argparse.Namespace) -> int:
    cls = get_registry().load("dataset", args.name)
    if "download" not in {f.name for f in attrs.fields(cls.Params)}:
        raise UsageError(f"dataset {args.name!r} has nothing to download (its data are local files or built in)")
    provider = _provider(args.name, args.role, args.param, download=True)
    files = provider.files()
    print(f"{args.name} {args.role}: {len(files)} file(s) in {files[0].parent if files else '-'}")
    return 0


def _list() -> int:
    registry = get_registry()
    records = registry.records("dataset")
    width = max((len(r.name) for r in records), default=4)
    for record in records:
        print(f"{record.name:<{width}}  {record.provider:<26}  {record.summary}")
    return 0


def _info(name: str) -> int:
    registry = get_registry()
    record = registry.get("dataset", name)
    cls = record.load()
    print(f"{record.name} ({record.provider}): {record.summary}")
    roles = getattr(cls, "ROLES", None)
    if roles:
        print(f"roles: {', '.join(roles)}")
    doc = (cls.__doc__ or "").strip()
    if doc and doc.splitlines()[0] != record.summary:
        print(doc)
    params = getattr(cls, "Params", None)
    if params is not None:
        rows = describe_params(params)
        if rows:
            print("parameters:")
            docs = {f.name: f.metadata.get("doc", "") for f in attrs.fields(params)}
            for pname, unit, default, expected in rows:
                unit_text = f" [{unit}]" if unit and unit != "1" else ""
                print(f"  {pname}{unit_text} = {default}  — {docs.get(pname) or expected}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("plotting needs matplotlib: pip install 'powergrid-datasets[plot]'") from None
    out = Path(args.out)  # checked before any data are read: matplotlib would add .png to a folder's or a bare name
    if out.is_dir():
        raise UsageError(f"--out {args.out} is a folder; expected the PNG file to write (e.g. {out / 'plot.png'})")
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {args.out}: expected a file name ending in .png (matplotlib would write {args.out}.png)")
    if out.is_symlink():
        raise UsageError(f"--out {args.out} is a symbolic link; refusing to write through it (remove it or choose another --out)")
    output_folder(str(out.parent))  # a file in the way or a folder this user cannot write to: one error now
    provider = _provider(args.name, args.role, args.param)
    values = provider.episode(args.steps, args.step_minutes, np.random.default_rng(args.seed))
    hours = np.arange(len(values)) * args.step_minutes / 60.0
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(hours, values, lw=1)
    unit = {"load": "pu", "solar": "pu", "wind": "pu", "price": "$/MWh", "temperature": "°C"}.get(args.role, "")
    start = getattr(provider, "last_start", None)
    ax.set_title(f"{args.name} {args.role}" + (f" from {start}" if start is not None else ""))
    ax.set_xlabel("hours into the episode")
    ax.set_ylabel(f"{args.role} ({unit})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)  # only now: a failed read leaves no folder behind
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"wrote {out} ({len(values)} values)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from powergrid.cli import main as powergrid_main

    raise SystemExit(powergrid_main(["datasets", *sys.argv[1:]]))
