"""Multi-board tests (harness/pytest/multi.py): which pairings a test runs for, the skips and
expected failures decided at collection, the board instances a pairing gets, and the role API.
No board is started."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.config.boards import BoardSpec, Capabilities, SerialLaunch, find_board, load_board
from harness.pytest.multi import (
    DEFAULT_MAC,
    Duts,
    MultiPool,
    Node,
    Role,
    call_code,
    instances,
    pairing_id,
    pairing_problem,
    pairings,
)
from harness.pytest.scheduling import board_of_nodeid
from tests.conftest import write_target

QUIET = ("-p", "no:cacheprovider", "-p", "no:labgrid")
PROCESS = '[image]\nbuilder = "none"\n[launch]\nkind = "process"\ncommand = ["true"]\n[capabilities]\nnet = true\n'
USER = ('[image]\nbuilder = "none"\n[launch]\nkind = "qemu"\nmachine = "q35"\n'
        '[network]\nmode = "user"\nconfigure = "repl"\n[capabilities]\nnet = true\n')
TAP = ('[image]\nbuilder = "none"\n[launch]\nkind = "qemu"\nmachine = "q35"\n'
       '[network]\nmode = "tap"\nconfigure = "repl"\n[capabilities]\nnet = true\n')

MULTI_TESTS = """
import pytest

@pytest.mark.roles("server", "client")
@pytest.mark.requires("net")
def test_pair(duts):
    pass

@pytest.mark.roles("server", "client")
@pytest.mark.requires("tls")
def test_tls(duts):
    pass

@pytest.mark.roles("a", "b", "c")
def test_three(duts):
    pass
"""


def collect(pytester, *args: str, tests: str = MULTI_TESTS):
    pytester.makepyfile(test_multi_case=tests)
    items, _ = pytester.inline_genitems(*QUIET, *args)
    return {item.name: item for item in items}


def skip_reasons(item) -> list[str]:
    return [m.kwargs["reason"] for m in item.iter_markers("skip")]


def test_every_ordered_pairing_with_repeats():
    assert pairings(["a", "b"], 2) == [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]
    assert len(pairings(["a", "b", "c"], 3)) == 27
    assert pairing_id(("mps2_an385_tap", "qemu_x86_tap")) == "mps2_an385_tap-qemu_x86_tap"


def test_the_nth_board_of_a_kind_is_its_own_instance():
    assert instances(("q", "q")) == ["q.1", "q.2"]
    assert instances(("m", "q")) == ["m.1", "q.1"]
    assert instances(("q", "m", "q")) == ["q.1", "m.1", "q.2"]


def test_a_test_runs_once_per_pairing_with_the_boards_in_role_order_as_id(pytester, targets):
    write_target(targets, "ta", TAP)
    write_target(targets, "tb", TAP)
    items = collect(pytester, "--board=ta", "--board=tb")
    assert sorted(n for n in items if n.startswith("test_pair")) == [
        "test_pair[ta-ta]", "test_pair[ta-tb]", "test_pair[tb-ta]", "test_pair[tb-tb]"]
    assert sum(n.startswith("test_three") for n in items) == 8
    assert [m.args for m in items["test_pair[ta-tb]"].iter_markers("xdist_group")] == [("pair:ta-tb",)]
    assert skip_reasons(items["test_pair[tb-ta]"]) == []
    assert ("board", "tb-ta") in items["test_pair[tb-ta]"].user_properties  # report rows per pairing
    assert ("boards", "server=tb,client=ta") in items["test_pair[tb-ta]"].user_properties  # also when skipped


def test_pairings_that_cannot_share_a_segment_or_lack_a_capability_are_skipped_with_the_reason(pytester, targets):
    write_target(targets, "tap1", TAP)
    write_target(targets, "user1", USER)  # a user-mode QEMU board (the default boards): it joins
    write_target(targets, "proc", PROCESS)
    items = collect(pytester, "--board=tap1", "--board=proc", "--board=user1")
    assert skip_reasons(items["test_pair[tap1-tap1]"]) == []
    assert skip_reasons(items["test_pair[user1-tap1]"]) == [] and skip_reasons(items["test_pair[user1-user1]"]) == []
    assert skip_reasons(items["test_pair[tap1-proc]"]) == [
        "pairing tap1-proc: board proc (client) cannot join the multi-board segment: it is a process board, "
        "not QEMU (only QEMU boards get a tap)"]
    assert skip_reasons(items["test_tls[tap1-tap1]"]) == [
        "pairing tap1-tap1: board tap1 (server) lacks capability: tls"]


def spec(name: str, body: str, tmp_path) -> BoardSpec:
    return load_board(write_target(tmp_path, name, body))


def device(name: str, caps: dict) -> BoardSpec:
    return BoardSpec(name=name, path=Path("lab.toml"), launch=SerialLaunch(port=f"/dev/{name}"),
                     capabilities=Capabilities(**caps))


def test_which_pairings_share_a_network(tmp_path):
    """Tests needing a network (net, tls) need every board on the tap segment, or every board a lab
    device (their bench's network); CAN cases pair anything with a CAN link; one device, one role."""
    roles = ("server", "client")
    qemu = spec("q", USER + "can = true\n", tmp_path)
    nonic = spec("m", USER.replace('mode = "user"', 'mode = "none"') + "can = true\n", tmp_path)
    nonic.capabilities.net = False
    a, b = device("dev-a", {"net": True, "can": True}), device("dev-b", {"net": True, "can": True})
    assert pairing_problem(roles, [a, b], ["net"]) is None  # both on the bench's network
    assert pairing_problem(roles, [a, a], ["can"]) == (
        "lab device dev-a cannot take two roles (server, client): it is one device")
    assert pairing_problem(roles, [a, qemu], ["net"]) == (
        "lab device dev-a (server) is on its bench's network and q (client) on the harness's tap segment: "
        "they share no network")
    assert pairing_problem(roles, [qemu, a], ["can"]) is None  # CAN: the links are joined in the host
    assert pairing_problem(roles, [nonic, qemu], ["can"]) is None
    assert pairing_problem(roles, [qemu, nonic], ["net"]) == "board m (client) lacks capability: net"
    nonic.capabilities.net = True
    assert pairing_problem(roles, [qemu, nonic], ["net"]) == (
        'board m (client) cannot join the multi-board segment: it has no NIC ([network] mode = "none")')


def test_expected_failures_are_per_pairing(pytester, targets):
    write_target(targets, "ta", TAP)
    write_target(targets, "tb", TAP)
    (pytester.path / "expected_failures.toml").write_text(
        '["ta-tb,tb-tb"]\ntest_pair = "tb as client drops it"\n["*"]\ntest_three = "nobody can"\n')
    items = collect(pytester, "--board=ta", "--board=tb")

    def xfail(name):
        return [m.kwargs["reason"] for m in items[name].iter_markers("xfail")]

    assert xfail("test_pair[ta-tb]") == ["ta-tb: tb as client drops it"]
    assert xfail("test_pair[tb-tb]") == ["tb-tb: tb as client drops it"]
    assert xfail("test_pair[tb-ta]") == [] and xfail("test_pair[ta-ta]") == []
    assert xfail("test_three[ta-tb-ta]") == ["ta-tb-ta: nobody can"]


def test_a_duts_test_without_roles_is_a_usage_error(pytester, targets):
    write_target(targets, "ta", TAP)
    pytester.makepyfile(test_bad="def test_x(duts):\n    pass\n")
    result = pytester.runpytest(*QUIET, "--board=ta", "--collect-only")
    assert "needs @pytest.mark.roles" in result.stdout.str() + result.stderr.str()


def test_pair_ids_schedule_deterministically_under_xdist():
    """All tests of a pairing go to one worker: the scheduler's scope of a pairing's id is fixed."""
    names = ["mps2_an385_tap", "qemu_x86_tap"]
    for pair in pairings(names, 2):
        ident = pairing_id(pair)
        scopes = {board_of_nodeid(f"suites/multi/test_multi_{t}.py::test_x[{p}{ident}]", names)
                  for t in ("tcp", "udp") for p in ("", "len-")}
        assert len(scopes) == 1 and scopes.pop() in names, (pair, scopes)


def test_instances_are_renamed_copies_on_one_segment_with_distinct_macs(targets):
    write_target(targets, "plain", TAP)
    write_target(targets, "withmac", TAP.replace('mode = "tap"', 'mode = "tap"\nmac = "52:54:00:aa:00:10"'))
    parent = SimpleNamespace(candidates=lambda name: [find_board(name, targets)], log_dir=targets,
                             lock_timeout=1.0, lock_directory=None, log=lambda m: None, board_factory=None)
    pool = MultiPool(parent, segment="seg", kinds=["withmac", "plain"])
    plain, mac = pool.spec("plain.2"), pool.spec("withmac.1")
    assert (plain.name, plain.network.segment, plain.network.mac) == ("plain.2", "seg", DEFAULT_MAC)
    assert (mac.name, mac.network.mac) == ("withmac.1", "52:54:00:aa:00:10")
    # fixed host numbers (kinds sorted, 4 each): the same address, and snapshot, every run
    assert (plain.network.host, pool.spec("plain.1").network.host, mac.network.host) == (11, 10, 14)
    assert find_board("plain", targets).network.segment == ""  # the target's own spec is untouched
    write_target(targets, "user", USER)  # a user-mode board's instance is on the segment's tap
    user = pool.spec("user.1")
    assert (user.network.mode, user.network.segment, user.capabilities.tap) == ("tap", "seg", True)
    assert find_board("user", targets).network.mode == "user"
    assert pool.pool.log_dir == targets / "multi"


def test_role_calls_are_board_code_with_literal_arguments():
    assert call_code("hil_multi.echo_client", ("10.0.0.1", 7000, [1, 2]), {"timeout": 5}) == (
        "import hil_multi\nhil_multi.echo_client('10.0.0.1', 7000, [1, 2], timeout=5)")
    with pytest.raises(ValueError, match=r"module\.function"):
        call_code("echo", (), {})


class FakeRunning:
    def __init__(self, output: str) -> None:
        self.text, self.done, self.waited = output, False, []

    def wait_for(self, marker, timeout):
        self.waited.append(marker)
        return marker

    def finish(self, timeout=None):
        self.done = True
        return self.text


def node(role: str, name: str) -> Node:
    board = SimpleNamespace(name=name, net=SimpleNamespace(guest_ip="192.168.77.10", tcp_port=lambda i: 7000 + i),
                            spec=SimpleNamespace(launch=SimpleNamespace(physical=False)))
    return Node(role, board)


def test_duts_map_roles_to_nodes_and_collect_each_roles_result():
    server, client = node("server", "qemu_x86_tap.1"), node("client", "qemu_x86_tap.2")
    duts = Duts({"server": server, "client": client}, ("qemu_x86_tap", "qemu_x86_tap"))
    assert duts.server is duts["server"] and list(duts) == ["server", "client"]
    assert duts.id == "qemu_x86_tap-qemu_x86_tap"
    assert (server.name, server.ip, server.port(1)) == ("qemu_x86_tap", "192.168.77.10", 7001)
    with pytest.raises(AttributeError):
        _ = duts.observer
    server.roles.append(Role(server, "m.f", FakeRunning("READY;\nRESULT (1, b'x')\n")))
    client.roles.append(Role(client, "m.g", FakeRunning("noise\nRESULT 'a'\nRESULT [2]\n")))
    assert duts.results() == {"server": (1, b"x"), "client": [2]}  # the last RESULT line


def test_a_role_that_ends_without_result_fails_with_its_output():
    role = Role(node("server", "b.1"), "m.f", FakeRunning("READY;\nsomething else\n"))
    with pytest.raises(AssertionError, match=r"server \(b\): m.f ended without RESULT"):
        role.result()


def test_signal_waits_for_the_barrier_then_releases_it():
    sent = []
    n = node("client", "b.1")
    n.board.console = SimpleNamespace(send=sent.append)
    running = FakeRunning("")
    Role(n, "m.f", running).signal("GO")
    assert running.waited == ["WAIT GO;"] and sent == [b"GO\n"]
