"""The one table validator (harness/config/schema.py) that board and lab files share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from harness.config.schema import check_table, fill, one_of, type_ok, want
from harness.errors import ConfigError


@dataclass
class Sample:
    mode: Literal["a", "b", "c"] = "a"
    pair: Literal["x", "y"] = "x"
    count: int = 0
    ratio: float = 1.0
    names: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    maybe: int | None = None


def test_fill_applies_the_table_over_defaults_or_a_base():
    assert fill(Sample, {"mode": "b", "ratio": 2, "names": ["n"]}, "f.toml", "s.") == Sample(
        mode="b", ratio=2, names=["n"])  # fmt: skip
    base = Sample(count=5, pair="y")
    assert fill(Sample, {"mode": "c"}, "f.toml", "s.", base=base) == Sample(mode="c", count=5, pair="y")
    assert base.mode == "a"  # the base is not changed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": 1}, "f.toml: unknown key 's.colour' (known: count, env, maybe, mode, names, pair, ratio); "
                        "remove or rename it"),
        ({"mode": "d"}, "f.toml: key 's.mode' is 'd'; use one of a, b, c"),
        ({"pair": "z"}, "f.toml: key 's.pair' is 'z'; use \"x\" or \"y\""),
        ({"pair": 1}, "f.toml: key 's.pair' is 1; use \"x\" or \"y\""),
        ({"count": True}, "f.toml: key 's.count' must be int, got bool True"),
        ({"count": 1.5}, "f.toml: key 's.count' must be int, got float 1.5"),
        ({"ratio": "1"}, "f.toml: key 's.ratio' must be float, got str '1'"),
        ({"names": ["a", 2]}, "f.toml: key 's.names' must be list[str], got list ['a', 2]"),
        ({"env": {"A": 1}}, "f.toml: key 's.env' must be dict[str, str], got dict {'A': 1}"),
        ({"maybe": "x"}, "f.toml: key 's.maybe' must be int | None, got str 'x'"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_errors_naming_where_and_key(data, message):
    with pytest.raises(ConfigError) as info:
        fill(Sample, data, "f.toml", "s.")
    assert str(info.value) == message


def test_check_table_limits_keys_and_wants_a_table():
    assert check_table(Sample, {"count": 2}, "w", "s.", keys=("count",)) == {"count": 2}
    with pytest.raises(ConfigError, match=r"^w: unknown key 's.mode' \(known: count\)"):
        check_table(Sample, {"mode": "a"}, "w", "s.", keys=("count",))
    with pytest.raises(ConfigError, match=r"^w: key 's' must be a table, got int 3$"):
        check_table(Sample, 3, "w", "s.")


def test_helpers():
    assert type_ok(3, float) and not type_ok(True, int) and type_ok(None, int | None)
    assert type_ok("b", Literal["a", "b"]) and not type_ok(True, Literal[1])
    assert one_of(["p", "q"]) == 'use "p" or "q"' and one_of(["p", "q", "r"]) == "use one of p, q, r"
    assert want(3, int, "w", "k", "an int") == 3
    with pytest.raises(ConfigError, match=r"^w: key 'k' must be an int, got bool True$"):
        want(True, int, "w", "k", "an int")
