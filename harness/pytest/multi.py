"""Multi-board tests: several boards with named roles on one network segment.

    @pytest.mark.roles("server", "client")
    def test_echo(duts):
        srv = duts.server.start("hil_echo.tcp_server", duts.server.port())
        srv.ready()
        cli = duts.client.start("hil_sock.echo_client", duts.server.ip, duts.server.port(), [100])
        assert cli.result() == (100, ...)

A test that uses ``duts`` runs once per pairing of the selected boards, in every order and with
repeats (``--board A --board B`` and two roles: A-A, A-B, B-A, B-B), its id the boards in role order
(``test_echo[mps2_an385-qemu_x86]``: server on mps2_an385, client on qemu_x86). A pairing whose
boards lack a ``requires`` capability or share no network is skipped at collection with the reason.

The QEMU boards of pairings are their own instances, leased from a second BoardPool (restarts as for
any board), all on one tap segment per pytest process (bridge "multi"): an instance is
``<board>.<n>`` (n = 1, 2: the n-th board of that kind in a pairing), booted once and kept for every
pairing that needs it; qemu_x86.1 and qemu_x86.2 are two guests with their own MAC and address. An
instance is its target's board with the network swapped for a tap on the segment, whatever the
target's own [network] mode (user-mode boards such as the default mps2_an385 and qemu_x86 join as
they are); a board without a NIC (mode "none") or that QEMU does not run (native, a host process)
cannot join, and its pairings skip where a network is needed (``requires`` net or tls).

Real devices (lab files, ``--hil-lab``) are leased from the run's own pool, locked as for any test:
one device takes one role (a pairing that names it twice skips). They cannot join a tap segment:
they sit on their bench's network, and their address comes from their own REPL (the active
network.LAN/WLAN interface). A pairing of lab devices runs the network cases on that network (the
lab file vouches for it with ``capabilities = { net = true }`` on each); a lab device paired with a
QEMU board shares no network with it, so only cases without one (CAN: python-can joins any links
in the host) run for such a pairing.

Under xdist (``-n``) the plugin's scheduling keeps all tests of a pairing on one worker: a
pairing's id starts with a board name, as a single-board test's does
(scheduling.board_of_nodeid); ``--dist loadgroup`` is served by an xdist_group mark per pairing.

Each role's code is started on its own board (``node.start`` -> a Role, the RunningCode design:
``role.ready()`` waits for its READY marker, ``role.wait(marker)``, ``role.signal(word)`` releases a
``WAIT word;`` barrier, ``role.result()`` its RESULT value); the host orders the boards: one role is
started once another printed READY. ``duts.results()`` gives each role's result; roles still running
when the test ends are interrupted. Each board's console text of the test is attached to the report
(one section per role) and JUnit gets a ``boards`` property listing role=board pairs (set at
collection: skipped pairings have it too, for the HTML report's pairs view).

Expected failures of a pairing: a suite's expected_failures.toml section named by the pairing's id
(``["mps2_an385-qemu_x86"]``), or ``["*"]``."""

from __future__ import annotations

import ast
import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path

import can
import pytest

from harness.board import Board
from harness.config.boards import BoardSpec
from harness.errors import BootError, ConfigError, InfrastructureError
from harness.io.repl import BoardException, RunningCode
from harness.lab.pool import BoardPool
from harness.net.boardnet import close_segment
from harness.net.canhub import CanHub
from harness.pytest import evidence
from harness.pytest.expectations import expectation_for
from harness.pytest.fixtures import ConsoleMark, board_properties, printable
from harness.pytest.selection import selected_boards
from harness.pytest.state import CONSOLE_SECTION, POOL

SEGMENT = "multi"  # the tap bridge every pairing's boards sit on (one per pytest process)
# Target files may leave [network] mac empty (QEMU's default MAC); two guests on one bridge need
# distinct ones: boards of such a kind get this base plus their place on the segment.
DEFAULT_MAC = "52:54:00:4d:50:00"
NETWORK_CAPS = ("net", "tls")  # a test requiring one of these needs its boards on one network
LAB_PORTS = (7000, 7100)  # a lab device's first TCP and UDP port (QEMU boards: their segment's)
# A lab device's address on its bench's network: the first active interface that has one
LAB_IP_CODE = """import network
def _hil_ip():
    for make in (lambda: network.LAN(), lambda: network.WLAN(network.STA_IF)):
        try:
            nic = make()
            if nic.active():
                a = nic.ipconfig('addr4')[0] if hasattr(nic, 'ipconfig') else nic.ifconfig()[0]
                if a and a != '0.0.0.0':
                    return a
        except Exception:
            pass
print('IP', _hil_ip())
"""
ROLE_TIMEOUT = 120.0  # a role's whole run (TCG under load; roles normally end far sooner)
INSTANCES_PER_KIND = 4  # fixed host numbers: .10-.13 for the first kind, .14-.17 for the next, ...
STOP_WAIT = 1.0  # an unread role that has not ended by then is interrupted
PAIRING = pytest.StashKey[tuple[str, ...]]()  # on an item: its boards in role order


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "roles(*names): a multi-board test; the duts fixture gives a board per role")


# --- which pairings ----------------------------------------------------------------------------
def pairings(boards: list[str], roles: int) -> list[tuple[str, ...]]:
    """Every ordered choice of a board per role, repeats included (A-A, A-B, B-A, B-B)."""
    return list(itertools.product(boards, repeat=roles))


def pairing_id(pairing: tuple[str, ...]) -> str:
    return "-".join(pairing)


def instances(pairing: tuple[str, ...]) -> list[str]:
    """The board instance of each role: the n-th board of a kind in the pairing is <kind>.<n>."""
    seen: dict[str, int] = {}
    out = []
    for name in pairing:
        seen[name] = seen.get(name, 0) + 1
        out.append(f"{name}.{seen[name]}")
    return out


def roles_of(item_or_metafunc) -> tuple[str, ...]:
    getter = getattr(item_or_metafunc, "get_closest_marker", None) or item_or_metafunc.definition.get_closest_marker
    marker = getter("roles")
    if marker is None or not marker.args or len(set(marker.args)) != len(marker.args):
        raise pytest.UsageError("a test using duts needs @pytest.mark.roles('a', 'b', ...) with distinct role names")
    return tuple(marker.args)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "duts" not in metafunc.fixturenames:
        return
    roles = roles_of(metafunc)
    combos = pairings(selected_boards(metafunc.config), len(roles))
    metafunc.parametrize("duts", combos, indirect=True, ids=[pairing_id(c) for c in combos])


def segment_problem(spec: BoardSpec) -> str | None:
    """Why a board cannot be put on the tap segment, or None: the QEMU launcher gives a board's NIC
    a tap; a board needs a NIC for that ([network] mode "user" or "tap")."""
    if spec.launch.kind != "qemu":
        return f"it is a {spec.launch.kind} board, not QEMU (only QEMU boards get a tap)"
    if spec.network.mode == "none":
        return 'it has no NIC ([network] mode = "none")'
    return None


def pairing_problem(roles: tuple[str, ...], specs: list[BoardSpec], requires: list[str]) -> str | None:
    """Why these boards (one per role) cannot run the test together, or None."""
    for role, spec in zip(roles, specs, strict=True):
        missing = [cap for cap in requires if not spec.capabilities.has(cap)]
        if missing:
            return f"board {spec.name} ({role}) lacks capability: {', '.join(missing)}"
    devices = [(role, spec) for role, spec in zip(roles, specs, strict=True) if spec.launch.physical]
    for (role, spec), (other, twin) in itertools.combinations(devices, 2):
        if spec.name == twin.name:
            return f"lab device {spec.name} cannot take two roles ({role}, {other}): it is one device"
    if not any(cap in NETWORK_CAPS for cap in requires) or len(devices) == len(specs):
        return None  # no network needed (CAN: joined in the host), or all on the bench's network
    if devices:
        (role, spec), (other, qemu) = devices[0], next(
            (r, s) for r, s in zip(roles, specs, strict=True) if not s.launch.physical)
        return (f"lab device {spec.name} ({role}) is on its bench's network and {qemu.name} ({other}) on "
                f"the harness's tap segment: they share no network")
    for role, spec in zip(roles, specs, strict=True):
        if problem := segment_problem(spec):
            return f"board {spec.name} ({role}) cannot join the multi-board segment: {problem}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip pairings that cannot run (at collection: no boot wasted); expected failures per pairing;
    an xdist_group per pairing."""
    pool = config.stash[POOL]
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "duts" not in callspec.params:
            continue
        pairing = tuple(callspec.params["duts"])
        item.stash[PAIRING] = pairing
        ident = pairing_id(pairing)
        item.add_marker(pytest.mark.xdist_group(f"pair:{ident}"))
        item.user_properties.append(("board", ident))  # the report's per-board rows: one per pairing
        # its boards by role, on skipped pairings too (the report's pairs view has a row for each)
        item.user_properties.append(("boards", ",".join(f"{r}={b}" for r, b in zip(roles_of(item), pairing,
                                                                                   strict=True))))  # fmt: skip
        try:
            specs = [pool.candidates(name)[0] for name in pairing]
        except ConfigError:
            continue  # the duts fixture reports it on the test, as the board fixture does
        requires = [cap for marker in item.iter_markers("requires") for cap in marker.args]
        problem = pairing_problem(roles_of(item), specs, requires)
        if problem:
            item.add_marker(pytest.mark.skip(reason=f"pairing {ident}: {problem}"))
            continue
        try:
            expected = expectation_for(Path(str(item.fspath)), ident, item.originalname)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        if expected:
            reason, strict = expected
            item.add_marker(pytest.mark.xfail(reason=f"{ident}: {reason}", strict=strict))


# --- the boards ----------------------------------------------------------------------------------
class MultiPool:
    """Board instances for pairings: a BoardPool of its own whose boards are copies of the target
    files' boards, renamed <board>.<n> and put on one tap segment; lab devices come from the run's
    pool (one device, one lock: the same board a single-board test gets)."""

    def __init__(self, pool: BoardPool, segment: str = SEGMENT, boot_retries: int = 1, kinds: list[str] = ()) -> None:
        self.parent, self.segment, self.boot_retries = pool, segment, boot_retries
        self.kinds = sorted(kinds)  # the run's boards: each kind's instances get fixed host numbers
        self.pool = BoardPool(pool.log_dir / "multi", lock_timeout=pool.lock_timeout,
                              lock_directory=pool.lock_directory, log=pool.log, board_factory=pool.board_factory)
        self.buses: dict[str, tuple[object, can.BusABC]] = {}  # instance -> (its launcher, host bus)

    def spec(self, instance: str) -> BoardSpec:
        """The instance's board: its target's, renamed, its NIC (if it has one) on a tap on the segment."""
        name = instance.rsplit(".", 1)[0]
        base = self.parent.candidates(name)[0]
        if base.network.mode == "none":
            return dataclasses.replace(base, name=instance)  # no NIC to put anywhere (CAN-only cases)
        net = dataclasses.replace(base.network, mode="tap", segment=self.segment,
                                  mac=base.network.mac or DEFAULT_MAC, host=self.host_number(instance))
        caps = dataclasses.replace(base.capabilities, tap=True)
        return dataclasses.replace(base, name=instance, network=net, capabilities=caps)

    def is_device(self, instance: str) -> bool:
        return self.parent.candidates(instance.rsplit(".", 1)[0])[0].launch.physical

    def host_number(self, instance: str) -> int:
        """A fixed address on the segment per instance (0: in boot order, for a kind outside the
        run's list): the same address every run keeps a board's snapshot valid (its address is
        part of what was saved)."""
        name, _, n = instance.rpartition(".")
        if name not in self.kinds or not n.isdigit() or not 0 < int(n) <= INSTANCES_PER_KIND:
            return 0
        return 10 + self.kinds.index(name) * INSTANCES_PER_KIND + int(n) - 1

    def get(self, instance: str) -> Board:
        """The instance, booted (once) and restarted if it died or broke; a lab device: the run's
        pool's lease of it (locked until the run ends)."""
        if self.is_device(instance):
            return self.parent.ensure_fresh(instance.rsplit(".", 1)[0])
        if instance not in self.pool.extra:
            self.pool.extra[instance] = self.spec(instance)
        for attempt in range(self.boot_retries + 1):
            try:
                return self.pool.ensure_fresh(instance)
            except BootError as exc:  # a cold boot that timed out on a loaded host: as --hil-retries says
                if attempt == self.boot_retries:
                    raise
                self.pool.log(f"{instance}: {str(exc).splitlines()[0][:200]}; booting it again")
                self.pool.release(instance)
        raise AssertionError("unreachable")

    def mark_stale(self, instance: str) -> None:
        if self.is_device(instance):
            self.parent.mark_stale(instance.rsplit(".", 1)[0])
        else:
            self.pool.mark_stale(instance)

    def can_bus(self, board: Board) -> can.BusABC:
        """The host's python-can Bus on the board's CAN link, kept open while the board runs
        (mps2's SLCAN speaker drains its UART only while hil_can runs: a connection closed between
        tests would go unnoticed and frames would go to a dead one); opened again after a restart."""
        held = self.buses.get(board.name)
        if held is not None and held[0] is not board.launcher:
            del self.buses[board.name]
            held[1].shutdown()
            held = None
        if held is None:
            held = self.buses[board.name] = (board.launcher, board.host_can_bus())
        return held[1]

    def stop_all(self) -> None:
        for _, bus in self.buses.values():
            bus.shutdown()
        self.buses.clear()
        try:
            self.pool.stop_all()
        finally:
            close_segment(self.segment)


@pytest.fixture(scope="session")
def multi_pool(request: pytest.FixtureRequest, board_pool: BoardPool) -> Iterator[MultiPool]:
    pool = MultiPool(board_pool, boot_retries=request.config.getoption("hil_retries"),
                     kinds=selected_boards(request.config))
    yield pool
    pool.stop_all()


class Role:
    """Code started on one board for one role (see the module docstring)."""

    def __init__(self, node: Node, call: str, running: RunningCode) -> None:
        self.node, self.call, self.running = node, call, running
        self.value = None

    def wait(self, marker: str, timeout: float = 60.0) -> str:
        return self.running.wait_for(marker, timeout)

    def ready(self, timeout: float = 60.0) -> Role:
        """Until the role printed READY (it listens, or is set up): the other boards may act."""
        self.wait("READY", timeout)
        return self

    def signal(self, word: str, timeout: float = 60.0) -> None:
        """Barrier: wait until the role prints ``WAIT word;`` and blocks on its console, then release it."""
        self.wait(f"WAIT {word};", timeout)
        self.node.board.console.send(f"{word}\n".encode())

    def output(self, timeout: float = ROLE_TIMEOUT) -> str:
        return self.running.finish(timeout)

    def result(self, timeout: float = ROLE_TIMEOUT):
        """The value of the role's last ``RESULT <repr>`` line (the role's exception is raised here)."""
        if self.value is None:
            out = self.running.finish(timeout)
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            assert lines, f"{self.node.role} ({self.node.name}): {self.call} ended without RESULT; output: {out!r}"
            self.value = ast.literal_eval(lines[-1][len("RESULT ") :])
        return self.value

    @property
    def done(self) -> bool:
        return self.running.done

    def stop(self) -> bool:
        """End the role if the test ended before reading it: collect it if it has ended, else
        interrupt it (the REPL's own timeout recovery). False when the board did not come back
        to its prompt cleanly (it is restarted before its next use)."""
        if self.running.done:
            return True
        self.node.board.console_note(f"multi: stopping unfinished role {self.node.role}: {self.call}")
        try:
            self.running.finish(STOP_WAIT)
        except BoardException:
            return True  # the role's own exception, or KeyboardInterrupt: the prompt is back
        except Exception:
            return False
        return True


def call_code(call: str, args: tuple, kwargs: dict) -> str:
    """``module.function(args)`` as board code (arguments as Python literals)."""
    module, _, function = call.rpartition(".")
    if not module or not function.isidentifier():
        raise ValueError(f"call {call!r}: write module.function")
    text = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    return f"import {module}\n{call}({text})"


class Node:
    """One role's board in a multi-board test: where it is on the segment, and its code."""

    def __init__(self, role: str, board: Board, name: str = "") -> None:
        self.role, self.board = role, board
        self.name = name or board.name.rsplit(".", 1)[0]  # its kind (target file or lab device), no instance number
        self.roles: list[Role] = []
        self._ip = ""

    @property
    def on_segment(self) -> bool:
        return not self.board.spec.launch.physical

    @property
    def ip(self) -> str:
        """The board's address on the segment (a lab device: on its bench's network, asked of its
        REPL): where the other boards reach it."""
        if self.on_segment:
            return self.board.net.guest_ip
        if not self._ip:
            lines = [x for x in self.board.exec(LAB_IP_CODE).splitlines() if x.startswith("IP ")]
            ip = lines[-1][3:].strip() if lines else "None"
            if ip == "None":
                raise InfrastructureError(f"{self.board.name}: no active network interface with an address "
                                          f"(network.LAN / WLAN): connect it to the bench's network")  # fmt: skip
            self._ip = ip
        return self._ip

    def port(self, index: int = 0) -> int:
        return self.board.net.tcp_port(index) if self.on_segment else LAB_PORTS[0] + index

    def udp_port(self, index: int = 0) -> int:
        return self.board.net.udp_port(index) if self.on_segment else LAB_PORTS[1] + index

    def start(self, call: str, *args, **kwargs) -> Role:
        """Start ``module.function(*args, **kwargs)`` on the board and return at once."""
        code = call_code(call, args, kwargs)
        role = Role(self, call, self.board.spawn(code))
        self.roles.append(role)
        return role

    def run(self, call: str, *args, timeout: float = ROLE_TIMEOUT, **kwargs):
        """Run ``module.function(...)`` to its end; its RESULT value."""
        return self.start(call, *args, **kwargs).result(timeout)

    def __repr__(self) -> str:
        return f"Node({self.role}={self.board.name})"


class Duts(Mapping[str, Node]):
    """Role -> Node of a multi-board test (``duts["server"]`` or ``duts.server``)."""

    def __init__(self, nodes: dict[str, Node], pairing: tuple[str, ...]) -> None:
        self._nodes, self.pairing = nodes, pairing

    def __getitem__(self, role: str) -> Node:
        return self._nodes[role]

    def __iter__(self):
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __getattr__(self, role: str) -> Node:
        try:
            return self.__dict__["_nodes"][role]
        except KeyError:
            raise AttributeError(role) from None

    @property
    def boards(self) -> dict[str, Board]:
        return {role: node.board for role, node in self._nodes.items()}

    @property
    def id(self) -> str:
        return pairing_id(self.pairing)

    def results(self, timeout: float = ROLE_TIMEOUT) -> dict[str, object]:
        """Each role's result (of the last code started on its board)."""
        return {role: node.roles[-1].result(timeout) for role, node in self._nodes.items() if node.roles}

    def stop(self) -> list[str]:
        """Stop every unfinished role; the boards that did not come back cleanly."""
        return [node.board.name for node in self._nodes.values() for role in node.roles if not role.stop()]


@pytest.fixture
def duts(request: pytest.FixtureRequest, multi_pool: MultiPool) -> Iterator[Duts]:
    """One booted board per role of @pytest.mark.roles, all on one tap segment (see the module
    docstring); each soft-reset to a clean interpreter."""
    item = request.node
    evidence.begin(item)  # the test's evidence timeline starts before its boards are leased
    pairing = tuple(request.param)
    roles = roles_of(item)
    names = instances(pairing)
    if worker := getattr(request.config, "workerinput", {}).get("workerid"):
        item.user_properties.append(("worker", worker))  # which xdist worker had the pairing's boards
    instance_of = dict(zip(roles, names, strict=True))
    nodes: dict[str, Node] = {}
    marks: dict[str, ConsoleMark] = {}
    for role, instance in zip(roles, names, strict=True):
        board = multi_pool.get(instance)
        if board.spec.console.reset == "soft" and not board.fresh:
            try:
                board.soft_reset()
            except InfrastructureError as exc:  # left wedged by the last test: a fresh board instead
                board.console_note(f"multi: soft reset failed ({str(exc).splitlines()[0][:200]}); restarting")
                multi_pool.mark_stale(instance)
                board = multi_pool.get(instance)
        board.fresh = False
        evidence.attach(item, board, label=role)
        marks[role] = ConsoleMark.of(board)
        nodes[role] = Node(role, board, instance.rsplit(".", 1)[0])
        # each board's facts, under its role's name (the report's single-board "board" stays unset)
        item.user_properties.extend((f"{role}.{k}", v) for k, v in board_properties(board).items())
    result = Duts(nodes, pairing)
    try:
        yield result
    finally:
        broken = result.stop()
        for role, node in nodes.items():
            if node.board.name in broken or not node.board.alive():
                multi_pool.mark_stale(instance_of[role])
            text = marks[role].text_since(node.board)
            if text:
                item.add_report_section("call", CONSOLE_SECTION,
                                        f"--- {role}: {node.board.name} ---\n{printable(text)}\n")


@pytest.fixture
def can_hub(duts: Duts, multi_pool: MultiPool) -> Iterator[CanHub]:
    """The boards' CAN links joined into one bus in the host (harness/net/canhub.py: what it cannot
    emulate); the host is a node on it too. Nodes are named by role."""
    buses = {role: multi_pool.can_bus(node.board) for role, node in duts.items()}
    for bus in buses.values():  # nothing left over from an earlier test crosses into this one
        while bus.recv(0) is not None:
            pass
    hub = CanHub(buses)
    yield hub
    hub.close()
