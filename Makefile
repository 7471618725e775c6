# bulwark: LD_PRELOAD resilience shim. `make`, `make test`, `make demo`, `make install`.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   := build
VERSION := 0.1.0

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -Werror
DEFS    := -D_GNU_SOURCE -DBW_VERSION=\"$(VERSION)\"
# -MMD -MP: each object records the headers it includes (build/obj/**/.NAME.o.d), so a header
# change rebuilds what uses it and nothing else.
DEPFLAGS = -MMD -MP -MT $@ -MF $(@D)/.$(@F).d
ALLCFLAGS = $(WARN) $(DEFS) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden $(INCLUDES) \
	$(SANFLAGS)

# libyaml goes into the library as a static archive, so its symbols stay private and a
# program's own libyaml is left alone. Looked up when the library is linked, not when this
# file is read: on a fresh machine `make demo` installs libyaml-dev in between.
LIBYAML_A ?= $(shell $(CC) -print-file-name=libyaml.a)

# The layers (docs/design.md, 2): config/ compiles a policy, engine/ decides, shim/
# interposes, with one folder of hooks per family (shim/net, shim/resolve, shim/db).
# tools/ and the unit tests link config/ and engine/ (CORE), never shim/.
INCLUDES   := -Iconfig -Iengine -Ishim -Ishim/net -Ishim/resolve -Ishim/db
CORE_SRC   := $(wildcard config/*.c engine/*.c)
SHIM_SRC   := $(wildcard shim/*.c shim/*/*.c)
TOOL_SRC   := $(wildcard tools/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
SHIM_OBJ   := $(SHIM_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ   := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Helper programs for integration tests: clients (*.c) and test-only preloads (*.so.c).
ITEST_PROG := $(patsubst tests/integration/progs/%.c,$(BUILD)/itest/%,$(filter-out %.so.c,$(wildcard tests/integration/progs/*.c)))
ITEST_SO   := $(patsubst tests/integration/progs/%.so.c,$(BUILD)/itest/%.so,$(wildcard tests/integration/progs/*.so.c))

LIB  := $(BUILD)/libbulwark.so
TOOL := $(BUILD)/bulwark

.PHONY: all deps deps-ready deps-demo deps-test deps-unit deps-fuzz deps-deb deps-fresh \
	test check unit unit-bins integration conformance cpython-suites demo install uninstall \
	clean bench bench-instr check-asan check-tsan san-progs sanitizer-builds san-build-asan \
	san-build-tsan deb test-deb test-fresh

all: $(LIB) $(TOOL)

# ---- packages ----
# Only targets asked for by name install packages (as root, with apt-get): `make deps`
# (what building needs) and deps-demo, deps-unit, deps-test, deps-fuzz, deps-deb,
# deps-fresh; and the targets that the README promises work as the first command on a
# fresh Debian 12 (demo, test and the other test targets), or that cannot run without
# their tools (fuzz, deb, test-deb, test-fresh). Every other target, a plain `make` and
# `make install` included, checks by probing (mk/deps.sh) and names what is missing.
# A new target that needs a set adds itself to the line of that set.
deps_for = $(strip \
	$(if $(filter deps,$1),build) \
	$(if $(filter demo deps-demo test-deb,$1),demo) \
	$(if $(filter unit deps-unit,$1),unit) \
	$(if $(filter test check integration conformance cpython-suites bench bench-instr \
	  check-asan check-tsan deps-test,$1),test) \
	$(if $(filter fuzz fuzz-build deps-fuzz,$1),fuzz) \
	$(if $(filter deb test-deb deps-deb,$1),deb) \
	$(if $(filter test-fresh deps-fresh,$1),fresh))
DEPS_INSTALL := $(call deps_for,$(MAKECMDGOALS))
DEPS_SETS    := $(or $(DEPS_INSTALL),build)
# Probed once per set: the stamp is made only when nothing was missing.
DEPS_STAMP   := $(BUILD)/.deps/$(subst $() ,+,$(DEPS_SETS))

deps-ready:
	@[ -f $(DEPS_STAMP) ] || { sh mk/deps.sh $(if $(DEPS_INSTALL),install,check) $(DEPS_SETS) \
	  && mkdir -p $(dir $(DEPS_STAMP)) && touch $(DEPS_STAMP); }

deps deps-demo deps-test deps-unit deps-fuzz deps-deb deps-fresh: deps-ready

# ---- the library and the command ----
$(BUILD)/obj/%.o: %.c | deps-ready
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALLCFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIB): $(SHIM_OBJ) $(CORE_OBJ) shim/exports.map
	@echo "  LD      $@"
	@$(CC) -shared -o $@ $(SHIM_OBJ) $(CORE_OBJ) $(LIBYAML_A) $(SANFLAGS) $(LDFLAGS) \
	  -Wl,--version-script=shim/exports.map -Wl,--exclude-libs,ALL \
	  -Wl,-z,now -Wl,-z,relro -Wl,--no-undefined -ldl -lpthread

$(TOOL): $(TOOL_OBJ) $(CORE_OBJ)
	@echo "  LD      $@"
	@$(CC) -o $@ $(TOOL_OBJ) $(CORE_OBJ) $(SANFLAGS) $(LDFLAGS) -lyaml -ljansson -lm

# ---- tests ----
$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(ALLCFLAGS) $(DEPFLAGS) -Itests/unit -o $@ $< $(CORE_OBJ) $(TEST_LIBS) \
	  $(SANFLAGS) -lcmocka -lyaml -lm

# test_config_oom makes allocations fail: with libyaml linked in from its archive, its
# allocations go through the test's wrappers as the policy code's do.
$(BUILD)/tests/test_config_oom: TEST_LIBS = $(LIBYAML_A) \
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup

# Unit tests of shim code link only the shim objects they test: no preload, no constructor.
$(BUILD)/tests/test_fdtable: $(BUILD)/obj/shim/fdtable.o $(BUILD)/obj/shim/hold.o $(BUILD)/obj/shim/real.o
$(BUILD)/tests/test_pending: $(BUILD)/obj/shim/net/pending.o
$(BUILD)/tests/test_foreign: $(BUILD)/obj/shim/foreign.o
$(BUILD)/tests/test_mysql_sql: $(BUILD)/obj/shim/db/mysql_sql.o
$(BUILD)/tests/test_pq_sql: $(BUILD)/obj/shim/db/pq_sql.o
$(BUILD)/tests/test_resp: $(BUILD)/obj/shim/resp.o $(BUILD)/obj/shim/real.o
$(BUILD)/tests/test_fdtable $(BUILD)/tests/test_pending $(BUILD)/tests/test_foreign \
	$(BUILD)/tests/test_mysql_sql $(BUILD)/tests/test_pq_sql $(BUILD)/tests/test_resp: \
	TEST_LIBS = $(filter $(BUILD)/obj/shim/%.o,$^) -ldl -lpthread

$(BUILD)/itest/%.so: tests/integration/progs/%.so.c | deps-ready
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(WARN) $(DEFS) $(DEPFLAGS) -O2 -fPIC -shared -o $@ $< -ldl

$(BUILD)/itest/%: tests/integration/progs/%.c | deps-ready
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(WARN) $(DEFS) $(DEPFLAGS) -O2 -o $@ $< -lpthread

# The differential conformance suite: one driver program holding the table of scenarios.
CONF_DRIVER := $(BUILD)/conformance/driver

$(CONF_DRIVER): tests/conformance/driver.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(DEFS) -O2 -g -o $@ $< -lpthread

conformance: all $(CONF_DRIVER)
	@python3 tests/conformance/run.py

unit-bins: $(UNIT_BIN)

unit: all $(UNIT_BIN)
	@sh tests/unit/run.sh $(UNIT_BIN)

integration: all $(ITEST_PROG) $(ITEST_SO)
	@python3 tests/integration/run.py

# CPython's own socket, asyncio and sqlite3 suites, bare and under the library: same
# outcome per test (tests/cpython/README.md).
cpython-suites: all
	@python3 tests/cpython/run.py

# The quick loop while working: unit, integration, conformance, CPython's suites, install.
check: all $(UNIT_BIN) $(ITEST_PROG) $(ITEST_SO) $(CONF_DRIVER)
	@sh tests/run-all.sh

# Everything, the sanitizer passes too, with one closing line: what CI runs.
test: all $(UNIT_BIN) $(ITEST_PROG) $(ITEST_SO) $(CONF_DRIVER) sanitizer-builds
	@sh tests/run-all.sh plain asan tsan

demo: all
	@sh examples/demo.sh

bench: all
	@sh tests/bench/run.sh
	@sh tests/bench/sqlite_contention.sh
	@sh tests/bench/pg.sh
	@sh tests/bench/fleet.sh

# Instructions per send/recv under callgrind: a count, steady under any load.
bench-instr: all
	@sh tests/bench/instr.sh --check

# ---- sanitizer builds ----
# Each lives in its own build tree; the programs that exercise the library link the
# sanitizer runtime themselves (see tests/sanitize/run.py for why).
SAN_PROGS := $(addprefix $(BUILD)/san/,sockopt_client errno_check pingpong limiter16)
SAN_asan  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_tsan  := -fsanitize=thread

$(BUILD)/san/%: tests/integration/progs/%.c | deps-ready
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(DEPFLAGS) -O1 -g $(SANFLAGS) -o $@ $< -lpthread

$(BUILD)/san/%: tests/bench/%.c | deps-ready
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(DEPFLAGS) -O1 -g $(SANFLAGS) -o $@ $< -lpthread

san-progs: $(SAN_PROGS)

san-build-asan san-build-tsan: san-build-%: deps-ready
	@echo "  MAKE    build-$* (sanitizer build)"
	@$(MAKE) --no-print-directory BUILD=build-$* CFLAGS="-O1 -g" SANFLAGS="$(SAN_$*)" \
	  build-$*/libbulwark.so unit-bins san-progs

sanitizer-builds: san-build-asan san-build-tsan

check-asan: san-build-asan
	@sh tests/run-all.sh asan

check-tsan: san-build-tsan
	@sh tests/run-all.sh tsan

# ---- install ----
# bulwark finds the library in ../lib beside its own directory (or $BULWARK_LIB).
BINDIR      := $(PREFIX)/bin
LIBDIR      := $(PREFIX)/lib
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/bulwark
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(BASHCOMPDIR) \
	  $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/libbulwark.so
	install -m 0755 $(TOOL) $(DESTDIR)$(BINDIR)/bulwark
	install -m 0644 docs/bulwark.1 $(DESTDIR)$(MANDIR)/man1/bulwark.1
	install -m 0644 docs/bulwark.yaml.5 $(DESTDIR)$(MANDIR)/man5/bulwark.yaml.5
	install -m 0644 completion/bulwark.bash $(DESTDIR)$(BASHCOMPDIR)/bulwark
	install -m 0644 completion/_bulwark $(DESTDIR)$(ZSHCOMPDIR)/_bulwark
	install -m 0644 README.md docs/runbook.md $(DESTDIR)$(DOCDIR)/
	cp -r examples/. $(DESTDIR)$(DOCDIR)/examples/

# Removes what install put there, and only that (the directories stay: they are shared).
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libbulwark.so $(DESTDIR)$(BINDIR)/bulwark \
	  $(DESTDIR)$(MANDIR)/man1/bulwark.1 $(DESTDIR)$(MANDIR)/man5/bulwark.yaml.5 \
	  $(DESTDIR)$(BASHCOMPDIR)/bulwark $(DESTDIR)$(ZSHCOMPDIR)/_bulwark
	rm -rf $(DESTDIR)$(DOCDIR)

# ---- packages and fresh machines ----
# `make deb`: the Debian package, built from a copy of the tree in build/deb (with lintian).
deb: deps-ready
	@sh mk/deb.sh $(BUILD)/deb

# The package, extracted with dpkg -x, runs the demo from its installed files.
test-deb: deb
	@sh tests/deb/run.sh $(BUILD)/deb

# The README's two commands on a clean Debian 12 root (several minutes; tests/fresh/).
test-fresh: deps-ready
	@sh tests/fresh/run.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan

# ---- fuzzing: `make fuzz FUZZ_SECONDS=N` (tests/fuzz/README.md) ----
# libFuzzer targets in tests/fuzz/ with ASan and UBSan, built by clang from objects of their
# own in build/fuzz/ (the gcc objects are left alone); tests/fuzz/run.sh runs them.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := $(WARN) $(DEFS) -g -O1 -fno-omit-frame-pointer -Iconfig -Iengine \
		-fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ     := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB     := $(FUZZ_DIR)/libcore.a
FUZZ_TARGETS := config event
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-toolchain
.SECONDARY: $(FUZZ_OBJ) $(FUZZ_LIB)

$(FUZZ_DIR)/obj/%.o: %.c | deps-ready
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# An archive, so a target links only the objects it uses.
$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	@ar rcs $@ $(FUZZ_OBJ)

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	@echo "  CCLD    $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) -lyaml -lm

fuzz-toolchain: deps-ready
	@mkdir -p $(FUZZ_DIR)
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n > 9; }' \
	  > $(FUZZ_DIR)/probe.c
	@$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $(FUZZ_DIR)/probe $(FUZZ_DIR)/probe.c \
	  2>/dev/null || { echo "make fuzz needs clang with libFuzzer:" \
	  "apt-get install clang libclang-rt-14-dev" >&2; exit 1; }

fuzz-build: fuzz-toolchain $(FUZZ_BIN)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Header dependencies recorded by earlier builds (none on the first).
DEP_FILES := $(foreach f,$(CORE_OBJ) $(SHIM_OBJ) $(TOOL_OBJ) $(UNIT_BIN) $(ITEST_PROG) \
	$(ITEST_SO) $(SAN_PROGS) $(FUZZ_OBJ) $(FUZZ_BIN),$(dir $f).$(notdir $f).d)
-include $(wildcard $(DEP_FILES))
