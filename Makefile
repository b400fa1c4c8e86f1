# Opticon build, test and install.
#
#   make            release build
#   make test       every test: cargo tests and the man page check
#   make lint       rustfmt and clippy, as CI runs them
#   make bench      the benchmarks under scripts/, printing figures

CARGO   ?= cargo
PREFIX  ?= /usr/local
MANPAGES = $(wildcard man/*.[1-8])

.PHONY: all build test check-man lint bench clean

all: build

build:
	$(CARGO) build --release

test: check-man
	$(CARGO) test

# groff prints warnings but exits 0, so any output at all is a failure.
check-man:
	@command -v groff >/dev/null || { echo "check-man: groff is not installed" >&2; exit 1; }
	@status=0; for page in $(MANPAGES); do \
		out=$$(groff -man -ww -z "$$page" 2>&1); \
		if [ -n "$$out" ]; then echo "$$page:"; echo "$$out"; status=1; fi; \
	done; \
	[ $$status -eq 0 ] && echo "man pages: $(words $(MANPAGES)) render without warnings"; exit $$status

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

bench:
	scripts/bench-wire
	scripts/bench-db
	scripts/bench-agent
	scripts/bench-collector

clean:
	$(CARGO) clean
