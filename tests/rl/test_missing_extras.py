"""An adapter whose extra is missing raises ``ModuleNotFoundError`` naming the extra: ``pytest.importorskip`` (which skips
on that class only, pytest 9) skips it and a caller's ``except ModuleNotFoundError`` catches it (r46b F1)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# in a fresh interpreter whose first import finder refuses the library as a missing one does (ModuleNotFoundError naming
# it): the adapter's error, and what pytest.importorskip makes of it
PROBE = """
import json, sys
import pytest

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == sys.argv[2]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Missing())
try:
    __import__(sys.argv[1])
except BaseException as err:
    out = {"type": type(err).__name__, "name": err.name, "message": str(err)}
try:
    pytest.importorskip(sys.argv[1])
except pytest.skip.Exception:
    out["importorskip"] = "skipped"
except BaseException as err:
    out["importorskip"] = type(err).__name__
print(json.dumps(out))
"""


@pytest.mark.parametrize(("module", "library", "extra"), [
    ("powergrid.rl.rllib", "ray", "powergrid-core[rllib]"),
    ("powergrid.rl.rllib_vector", "ray", "powergrid-core[rllib]"),
    ("powergrid.rl.sb3", "stable_baselines3", "powergrid-core[sb3]"),
])
def test_a_missing_extra_is_a_module_not_found_error_naming_the_extra(module, library, extra):
    done = subprocess.run([sys.executable, "-c", PROBE, module, library], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert (out["type"], out["name"], out["importorskip"]) == ("ModuleNotFoundError", library, "skipped")
    assert out["message"].startswith(f"{module} needs ") and f'pip install "{extra}"' in out["message"]
    assert out["message"].endswith(f"(no module named {library!r})")
