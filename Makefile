# Portcullis: the two commands of README.md and their helpers.
#   make        build build/portcullis
#   make run    set up, create a local instance in ./data and start it (with a demo upstream)
#   make test   set up and run every check: format, lint, layering, unit and integration tests
#               (ASan/UBSan build), and the unit tests plus a concurrency subset under TSan
#   make screenshots  the console's screenshots in docs/console/ (the browser test, on SQLite)
# Everything installs its own dependencies (scripts/deps.sh) on a Debian 12 machine.

BUILD      ?= build
TEST_BUILD ?= build-test
TSAN_BUILD ?= build-tsan
DATA       ?= data
PY         := /usr/bin/python3

.PHONY: all deps deps-build build run test test-build screenshots format format-check lint unit integration bench clean

all: build

deps-build:
	@scripts/deps.sh build

deps:
	@scripts/deps.sh all

build: deps-build
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) --buildtype=release -Dtests=false >/dev/null
	@ninja -C $(BUILD) >/dev/null
	@echo "built $(BUILD)/portcullis"

run: deps build
	@scripts/run.sh $(BUILD)/portcullis $(DATA)

test-build: deps
	@test -f $(TEST_BUILD)/build.ninja || meson setup $(TEST_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(TEST_BUILD) >/dev/null
	@test -f $(TSAN_BUILD)/build.ninja || meson setup $(TSAN_BUILD) -Db_sanitize=thread -Db_lundef=false >/dev/null
	@ninja -C $(TSAN_BUILD) >/dev/null

test: test-build
	@scripts/test.sh $(TEST_BUILD) $(TSAN_BUILD)

# The browser test writes its screenshots to a temporary directory unless told where.
screenshots: deps
	@test -f $(TEST_BUILD)/build.ninja || meson setup $(TEST_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(TEST_BUILD) >/dev/null
	PORTCULLIS_SCREENSHOT_DIR=$(CURDIR)/docs/console PORTCULLIS_TEST_PG_URL= \
	  PORTCULLIS_BIN=$(CURDIR)/$(TEST_BUILD)/portcullis $(PY) -m pytest -q -p no:cacheprovider \
	  tests/integration/test_console_browser.py::test_console_flows_in_chromium

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c')

bench: deps build
	@bench/verify.sh $(BUILD)/portcullis

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(TSAN_BUILD)
