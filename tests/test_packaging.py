"""The conda environment of the rules lists the same dependencies as pyproject.toml."""

import re

import tomllib
import yaml
from conftest import ROOT


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["workflow"]
    return dict(_split(r) for r in reqs)


def _conda_env() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "lossland.yaml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            out.update(dict(_split(r) for r in dep.get("pip", [])))
        else:
            name, spec = _split(dep.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", dep) else dep)
            if name not in ("python", "pip"):
                out[name] = spec
    return out


def test_conda_env_matches_pyproject():
    assert _conda_env() == _pyproject()


def test_constraints_pin_a_pair_the_ranges_admit():
    pins = dict(_split(line) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    assert pins == {"torch": "==2.14.1", "torchvision": "==0.29.1"}
    ranges = _pyproject()
    assert ranges["torch"].startswith(">=") and ranges["torchvision"].startswith(">=")
    as_tuple = lambda v: tuple(int(x) for x in v.lstrip(">=").split("."))  # noqa: E731
    assert as_tuple(pins["torch"][2:]) >= as_tuple(ranges["torch"])
    assert as_tuple(pins["torchvision"][2:]) >= as_tuple(ranges["torchvision"])
