# bulwark: LD_PRELOAD resilience shim. `make`, `make test`, `make demo`, `make install`.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   := build
VERSION := 0.1.0

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -Werror
DEFS    := -D_GNU_SOURCE -DBW_VERSION=\"$(VERSION)\"
ALLCFLAGS = $(WARN) $(DEFS) $(CFLAGS) -fPIC -fvisibility=hidden -Ipolicies -Ishim $(SANFLAGS)

LIBYAML_A := $(shell $(CC) -print-file-name=libyaml.a)

POLICY_SRC := $(wildcard policies/*.c)
SHIM_SRC   := $(wildcard shim/*.c)
TOOL_SRC   := $(wildcard tools/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

POLICY_OBJ := $(POLICY_SRC:%.c=$(BUILD)/obj/%.o)
SHIM_OBJ   := $(SHIM_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ   := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Helper programs for integration tests: clients (*.c) and test-only preloads (*.so.c).
ITEST_PROG := $(patsubst tests/integration/progs/%.c,$(BUILD)/itest/%,$(filter-out %.so.c,$(wildcard tests/integration/progs/*.c)))
ITEST_SO   := $(patsubst tests/integration/progs/%.so.c,$(BUILD)/itest/%.so,$(wildcard tests/integration/progs/*.so.c))

LIB  := $(BUILD)/libbulwark.so
TOOL := $(BUILD)/bulwark

.PHONY: all deps test check unit unit-bins integration conformance demo install clean bench \
	bench-instr check-asan check-tsan san-progs sanitizer-builds

all: deps-build $(LIB) $(TOOL)

# Debian packages: installed when missing (as root), otherwise named.
deps-build:
	@sh tools/deps.sh build
deps:
	@sh tools/deps.sh test

$(BUILD)/obj/%.o: %.c $(wildcard policies/*.h shim/*.h tools/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALLCFLAGS) -c $< -o $@

$(LIB): $(SHIM_OBJ) $(POLICY_OBJ) shim/exports.map
	@echo "  LD      $@"
	@$(CC) -shared -o $@ $(SHIM_OBJ) $(POLICY_OBJ) $(LIBYAML_A) $(SANFLAGS) \
	  -Wl,--version-script=shim/exports.map -Wl,--exclude-libs,ALL \
	  -Wl,-z,now -Wl,-z,relro -Wl,--no-undefined -ldl -lpthread

$(TOOL): $(TOOL_OBJ) $(POLICY_OBJ)
	@echo "  LD      $@"
	@$(CC) -o $@ $(TOOL_OBJ) $(POLICY_OBJ) $(SANFLAGS) -lyaml -ljansson -lm

$(BUILD)/tests/%: tests/unit/%.c $(POLICY_OBJ) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(ALLCFLAGS) -Itests/unit -o $@ $< $(POLICY_OBJ) $(TEST_LIBS) $(SANFLAGS) \
	  -lcmocka -lyaml -lm

# test_config_oom makes allocations fail: with libyaml linked in from its archive, its
# allocations go through the test's wrappers as the policy code's do.
$(BUILD)/tests/test_config_oom: TEST_LIBS = $(LIBYAML_A) \
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup

# Unit tests of shim code link only the shim objects they test: no preload, no constructor.
$(BUILD)/tests/test_fdtable: $(BUILD)/obj/shim/fdtable.o $(BUILD)/obj/shim/real.o
$(BUILD)/tests/test_pending: $(BUILD)/obj/shim/pending.o
$(BUILD)/tests/test_foreign: $(BUILD)/obj/shim/foreign.o
$(BUILD)/tests/test_fdtable $(BUILD)/tests/test_pending $(BUILD)/tests/test_foreign: \
	TEST_LIBS = $(filter $(BUILD)/obj/shim/%.o,$^) -ldl -lpthread

$(BUILD)/itest/%.so: tests/integration/progs/%.so.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(DEFS) -O2 -fPIC -shared -o $@ $< -ldl

$(BUILD)/itest/%: tests/integration/progs/%.c $(wildcard tests/integration/progs/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(DEFS) -O2 -o $@ $< -lpthread

# The differential conformance suite: one driver program holding the table of scenarios.
CONF_DRIVER := $(BUILD)/conformance/driver

$(CONF_DRIVER): tests/conformance/driver.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(DEFS) -O2 -g -o $@ $< -lpthread

conformance: deps all $(CONF_DRIVER)
	@python3 tests/conformance/run.py

unit-bins: $(UNIT_BIN)

unit: deps all $(UNIT_BIN)
	@sh tests/unit/run.sh $(UNIT_BIN)

integration: deps all $(ITEST_PROG) $(ITEST_SO)
	@python3 tests/integration/run.py

# The quick loop while working: unit, integration and conformance tests.
check: deps all $(UNIT_BIN) $(ITEST_PROG) $(ITEST_SO) $(CONF_DRIVER)
	@sh tests/run-all.sh $(UNIT_BIN)

# Everything, with one closing line: what CI runs.
test: deps all $(UNIT_BIN) $(ITEST_PROG) $(ITEST_SO) $(CONF_DRIVER) sanitizer-builds
	@sh tests/run-all.sh --sanitizers $(UNIT_BIN)

sanitizer-builds:
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g" SANFLAGS="$(ASAN_FLAGS)" \
	  build-asan/libbulwark.so unit-bins san-progs
	@$(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="-O1 -g" SANFLAGS="$(TSAN_FLAGS)" \
	  build-tsan/libbulwark.so unit-bins san-progs

demo: deps all
	@sh examples/demo.sh

bench: deps all
	@sh tests/bench/run.sh
	@sh tests/bench/sqlite_contention.sh

# Instructions per send/recv under callgrind: a count, steady under any load.
bench-instr: all
	@sh tests/bench/instr.sh --check

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/doc/bulwark/examples
	install -m 0644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libbulwark.so
	install -m 0755 $(TOOL) $(DESTDIR)$(PREFIX)/bin/bulwark
	install -m 0644 docs/bulwark.1 $(DESTDIR)$(PREFIX)/share/man/man1/bulwark.1
	install -m 0644 docs/bulwark.yaml.5 $(DESTDIR)$(PREFIX)/share/man/man5/bulwark.yaml.5
	cp -r examples/. $(DESTDIR)$(PREFIX)/share/doc/bulwark/examples/

# Sanitizer builds live in their own build trees; the programs that exercise the library
# link the sanitizer runtime themselves (see tests/sanitize/run.py for why).
SAN_PROGS := $(addprefix $(BUILD)/san/,sockopt_client errno_check pingpong limiter16)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TSAN_FLAGS := -fsanitize=thread

$(BUILD)/san/%: tests/integration/progs/%.c
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) -O1 -g $(SANFLAGS) -o $@ $< -lpthread

$(BUILD)/san/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) -O1 -g $(SANFLAGS) -o $@ $< -lpthread

san-progs: $(SAN_PROGS)

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g" SANFLAGS="$(ASAN_FLAGS)" \
	  build-asan/libbulwark.so unit-bins san-progs
	@ASAN_OPTIONS=detect_leaks=1 sh tests/unit/run.sh build-asan/tests/test_*
	@python3 tests/sanitize/run.py build-asan asan

check-tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="-O1 -g" SANFLAGS="$(TSAN_FLAGS)" \
	  build-tsan/libbulwark.so unit-bins san-progs
	@setarch -R sh tests/unit/run.sh build-tsan/tests/test_*
	@python3 tests/sanitize/run.py build-tsan tsan

clean:
	rm -rf $(BUILD) build-asan build-tsan

# ---- fuzzing: `make fuzz FUZZ_SECONDS=N` ----
# libFuzzer targets in tests/fuzz/ with ASan and UBSan, built by clang from objects of their
# own in build/fuzz/ (the gcc objects are left alone). Each target runs N seconds over a
# scratch copy of its seed corpus in build/fuzz/corpus/ (what it finds stays out of git);
# any crash, leak, timeout or failed check fails the target, its input saved in
# build/fuzz/crashes/. Needs clang and libclang-rt-14-dev.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := $(WARN) $(DEFS) -g -O1 -fno-omit-frame-pointer -Ipolicies \
		-fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ     := $(POLICY_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB     := $(FUZZ_DIR)/libpolicies.a
FUZZ_TARGETS := config event
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-toolchain deps-fuzz
.SECONDARY: $(FUZZ_OBJ) $(FUZZ_LIB)

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard policies/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# An archive, so a target links only the objects it uses.
$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	@ar rcs $@ $(FUZZ_OBJ)

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	@echo "  CCLD    $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) -lyaml -lm

fuzz-toolchain:
	@mkdir -p $(FUZZ_DIR)
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n > 9; }' \
	  > $(FUZZ_DIR)/probe.c
	@$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $(FUZZ_DIR)/probe $(FUZZ_DIR)/probe.c \
	  2>/dev/null || { echo "make fuzz needs clang with libFuzzer:" \
	  "apt-get install clang libclang-rt-14-dev" >&2; exit 1; }

deps-fuzz:
	@sh tools/deps.sh fuzz

fuzz-build: deps-fuzz fuzz-toolchain $(FUZZ_BIN)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crashes || exit 1; \
	  cp tests/fuzz/corpus/$$t/* $(FUZZ_DIR)/corpus/$$t/ || exit 1; \
	  dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	  echo "  FUZZ    $$t: $(FUZZ_SECONDS) s, log in $(FUZZ_DIR)/$$t.log"; \
	  if ! $(FUZZ_DIR)/fuzz_$$t $$dict -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	      -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- \
	      $(FUZZ_DIR)/corpus/$$t > $(FUZZ_DIR)/$$t.log 2>&1; then \
	    tail -n 60 $(FUZZ_DIR)/$$t.log; \
	    a=$$(sed -n 's/.*Test unit written to //p' $(FUZZ_DIR)/$$t.log | tail -n 1); \
	    echo "fuzz: $$t FAILED; reproduce with $(FUZZ_DIR)/fuzz_$$t $$a"; \
	    exit 1; \
	  fi; \
	  grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_DIR)/$$t.log | sed "s/^/  $$t: /"; \
	  grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' $(FUZZ_DIR)/$$t.log \
	    | sed "s/^/  $$t: /"; \
	done; echo "fuzz: no crash in $(FUZZ_TARGETS)"
