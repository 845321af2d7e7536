"""Where the project's resources are: board files (targets/), board-side Python (firmware_py/),
firmware C (firmware_c/) and the conformance suites (suites/).

Found the same way from a checkout and from an installed wheel: an environment variable
(HIL_TARGETS, HIL_FIRMWARE_PY, ...) wins; then a project root above the working directory (a
folder holding targets/ and firmware_py/, e.g. a user's own copy); then the checkout this package
runs from; then the copies the wheel carries inside the package (harness/_data/)."""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path

from harness.errors import ConfigError

RESOURCES = ("targets", "firmware_py", "firmware_c", "suites")


def _is_root(path: Path) -> bool:
    return (path / "targets").is_dir() and (path / "firmware_py").is_dir()


@cache
def _roots(cwd: Path) -> tuple[Path, ...]:
    found = [p for p in (cwd, *cwd.parents) if _is_root(p)][:1]
    checkout = Path(__file__).resolve().parents[1]
    if _is_root(checkout):
        found.append(checkout)
    bundled = Path(str(resources.files("harness") / "_data"))
    if _is_root(bundled):
        found.append(bundled)
    return tuple(dict.fromkeys(found))


def resource(name: str) -> Path:
    """The folder ``name`` (one of RESOURCES)."""
    if name not in RESOURCES:
        raise ValueError(f"unknown resource {name!r}; one of {', '.join(RESOURCES)}")
    env = f"HIL_{name.upper()}"
    if os.environ.get(env):
        return Path(os.environ[env])
    for root in _roots(Path.cwd()):
        if (root / name).is_dir():
            return root / name
    raise ConfigError(
        f"cannot find the project's {name}/ folder (not above {Path.cwd()}, not in the installed package); "
        f"run from a checkout or set {env}"
    )
