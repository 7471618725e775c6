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

.PHONY: all deps test unit integration demo install clean bench check-asan check-tsan

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
	@$(CC) $(ALLCFLAGS) -Itests/unit -o $@ $< $(POLICY_OBJ) $(SANFLAGS) -lcmocka -lyaml -lm

$(BUILD)/itest/%.so: tests/integration/progs/%.so.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(DEFS) -O2 -fPIC -shared -o $@ $< -ldl

$(BUILD)/itest/%: tests/integration/progs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(DEFS) -O2 -o $@ $< -lpthread

unit: deps all $(UNIT_BIN)
	@sh tests/unit/run.sh $(UNIT_BIN)

integration: deps all $(ITEST_PROG) $(ITEST_SO)
	@python3 tests/integration/run.py

# One closing line for the whole suite.
test: deps all $(UNIT_BIN) $(ITEST_PROG) $(ITEST_SO)
	@sh tests/run-all.sh $(UNIT_BIN)

demo: deps all
	@sh examples/demo.sh

bench: deps all
	@sh tests/bench/run.sh
	@sh tests/bench/sqlite_contention.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/doc/bulwark/examples
	install -m 0644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libbulwark.so
	install -m 0755 $(TOOL) $(DESTDIR)$(PREFIX)/bin/bulwark
	install -m 0644 docs/bulwark.1 $(DESTDIR)$(PREFIX)/share/man/man1/bulwark.1
	install -m 0644 docs/bulwark.yaml.5 $(DESTDIR)$(PREFIX)/share/man/man5/bulwark.yaml.5
	cp -r examples/. $(DESTDIR)$(PREFIX)/share/doc/bulwark/examples/

clean:
	rm -rf $(BUILD)
