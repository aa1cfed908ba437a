# fabric — the README's two commands: `sudo make demo` and `sudo make test`.
VENV    := .venv
FABRIC  := $(VENV)/bin/fabric
PYTEST  := $(VENV)/bin/pytest
PYTHON  := $(VENV)/bin/python
DEMO_OUT ?= demo

.PHONY: setup demo test unit-test bench clean help

help:
	@echo "make setup   install OS packages + venv (root)"
	@echo "make demo    set up, then compare the shipped designs on mixed inference traffic (root)"
	@echo "make test    set up, then run unit and emulation tests (root)"
	@echo "make bench   emulator packet budget and analysis throughput"

setup:
	bash vagrant/provision.sh $(CURDIR)

demo: setup
	bash scripts/demo.sh $(DEMO_OUT)

# Emulation tests need the whole machine, one at a time; unit and simulator tests run two
# processes at once (a test file stays in one process: its shared simulations run once; the
# simulator files, the longest, first).
test: setup
	$(VENV)/bin/ruff check .
	status=0; \
	$(PYTEST) -q --durations=15 tests/emulation || status=1; \
	$(PYTEST) -q --durations=15 -n 2 --dist loadfile tests/sim tests/unit || status=1; \
	exit $$status

unit-test:
	$(PYTEST) -q tests/unit

bench: setup
	$(PYTHON) bench/run_bench.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
