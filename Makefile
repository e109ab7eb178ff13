# aiostack — make demo (sets up and runs the main job), make test (sets up and runs the suite),
# make bench / make bench-quick (the side-by-side comparison in benchmarks/, as root).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

# Debian packages the tests and the demo drive from the kernel side.
DEB_PACKAGES := iproute2 tcpdump iputils-ping curl wrk apache2-utils redis-tools redis-server
# ... and what the benchmarks drive besides (taskset is util-linux's, always there).
BENCH_DEB_PACKAGES := $(DEB_PACKAGES) iperf3 valgrind

.PHONY: setup build sysdeps benchdeps bench bench-quick demo test test-pure lint clean fuzz soak

setup: sysdeps $(STAMP) build

# The compiled build of the hot path (Cython, pure-Python mode: the .py files are the source, the
# .pxd files beside them the types), in place beside the sources. Cython recompiles only modules
# whose .py or .pxd changed, so this runs before every test and demo. Without a C compiler the
# pure build stays and setup.py says so.
build: $(STAMP)
	@$(PY) setup.py -q build_ext --inplace -j2 2>&1 | grep -v -E '^(running|building|gcc|creating|copying|\[)' || true
	@$(PY) -c "from aiostack.build import build_name; print('aiostack build:', build_name())"

# Installs missing Debian packages when we are root on a Debian-like system; elsewhere the tests
# that need them skip with a reason (or fail under AIOSTACK_REQUIRE_NET=1).
# $(call deb_install,PACKAGES): apt-get install those not installed yet (when root on Debian).
define deb_install
	@missing=""; for p in $(1); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages:$$missing (need root to install)"; fi; \
	fi
endef

sysdeps:
	$(call deb_install,$(DEB_PACKAGES))

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77' wheel 'Cython>=3.0.11'
	# the editable install itself stays pure (AIOSTACK_NO_EXTENSIONS at build time): the build
	# target compiles in place right after, once
	AIOSTACK_NO_EXTENSIONS=1 $(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The benchmarks' own needs: iperf3 from Debian, and the optional 'bench' extra (rich, matplotlib,
# pmd-pytcp) in the venv. make test does not depend on either.
benchdeps: setup $(BENCH_STAMP)
	$(call deb_install,$(BENCH_DEB_PACKAGES))

$(BENCH_STAMP): pyproject.toml $(STAMP)
	AIOSTACK_NO_EXTENSIONS=1 $(PY) -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

# The whole comparison (<= 10 minutes; results in benchmarks/results/, table in benchmarks/README.md).
bench: benchdeps
	$(PY) -m benchmarks.run

# A <= 2 minute subset: aiostack-tap vs uvloop-veth vs uvloop-loopback, req/s and bulk.
bench-quick: benchdeps
	$(PY) -m benchmarks.run --quick

demo: setup
	$(PY) -m aiostack.demo

# The suite on the compiled build; test-pure runs it again on the pure build of the same source
# (AIOSTACK_NO_EXTENSIONS=1 selects it at run time). .ci/run runs both.
test: setup
	$(PY) -m pytest -q

test-pure: setup
	AIOSTACK_NO_EXTENSIONS=1 $(PY) -m pytest -q

# Coverage-guided fuzzing with atheris (tests/fuzz/): each target for FUZZ_TIME seconds on the
# pure build (coverage of the whole stack guides it) and on the compiled one (crashes found
# through the compiled code, less guidance), growing tests/fuzz/corpus/<target>/; a crash leaves
# its reproducer in tests/fuzz/crashes/ and stops here. The corpus is then minimized (the seeds and
# the fewest inputs covering every edge), replayed on both builds, and
# FUZZ_FRAMES seeded random and mutated frames go through the stack in FUZZ_PROCS processes.
FUZZ_TIME   ?= 60
FUZZ_FRAMES ?= 10000000
FUZZ_PROCS  ?= 2
fuzz: setup
	AIOSTACK_NO_EXTENSIONS=1 $(PY) tests/fuzz/run.py frame --time $(FUZZ_TIME)
	AIOSTACK_NO_EXTENSIONS=1 $(PY) tests/fuzz/run.py segments --time $(FUZZ_TIME)
	$(PY) tests/fuzz/run.py frame --time $(FUZZ_TIME)
	$(PY) tests/fuzz/run.py segments --time $(FUZZ_TIME)
	$(PY) tests/fuzz/run.py frame --minimize
	$(PY) tests/fuzz/run.py segments --minimize
	$(PY) -m pytest -q tests/fuzz
	AIOSTACK_NO_EXTENSIONS=1 $(PY) -m pytest -q tests/fuzz
	$(PY) tests/fuzz/frame_generator.py --frames $(FUZZ_FRAMES) --procs $(FUZZ_PROCS)

# Integrity and churn at length (tests/soak/): SOAK_BYTES each way through the fault wrapper with
# SHA-256 equal, then SOAK_CONNECTIONS connections at once with churn for SOAK_TIME seconds, RSS
# flat and counters reconciled. make test runs 20 MB and a 60-second churn (tests/soak/test_soak.py).
SOAK_BYTES       ?= 1000000000
SOAK_TIME        ?= 180
SOAK_CONNECTIONS ?= 10000
soak: setup
	$(PY) tests/soak/soak_integrity.py --bytes $(SOAK_BYTES)
	$(PY) tests/soak/soak_churn.py --time $(SOAK_TIME) --connections $(SOAK_CONNECTIONS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find aiostack tcp ip drivers -name '*.so' -delete
	find aiostack tcp ip drivers -name '*.c' -delete
