# Opticon build, test and install.
#
#   make            release build
#   make demo       the whole system on loopback under ./demo/ (Ctrl-C stops)
#   make test       every test: cargo tests and the man page check
#   make lint       rustfmt and clippy, as CI runs them
#   make bench      the benchmarks under scripts/, printing figures
#   make install    binaries, man pages, example configs, init scripts
#                   (PREFIX=/usr/local, DESTDIR=); make uninstall
#   make static     fully static binaries in target/static/
#   make dist       a versioned source tarball
#   make deb        Debian packages of the static binaries (agent, server)

CARGO   ?= cargo
PREFIX  ?= /usr/local
DESTDIR ?=
SYSCONF ?= /etc/opticon
DBDIR   ?= /var/opticon/db
PROBEDIR ?= /var/lib/opticon/probes
PROBES  = $(wildcard scripts/probes/*)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MANPAGES = $(wildcard man/*.[1-8])
SERVER_SBIN = opticon-collector opticon-api
CONFIGS = opticon-agent.conf opticon-collector.conf opticon-meter.conf opticon-api.conf opticon-cli.conf
STATIC_TARGET = x86_64-unknown-linux-gnu
BINDIR ?= target/release
TARGET_DIR ?= target

.PHONY: all build test check-man lint bench clean demo install uninstall static dist deb

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
	scripts/bench-collector-flood
	scripts/bench-api
	scripts/bench-collector-fleet
	scripts/bench-idle
	scripts/bench-export
	scripts/bench-dashboard
	@echo "the million-host run stays out: HOSTS=1000000 scripts/bench-collector-fleet"

demo:
	scripts/demo

# Installs what $(BINDIR) holds (make build first, or BINDIR=target/static).
install:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	install -m 755 $(BINDIR)/opticon $(BINDIR)/opticon-db $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(BINDIR)/opticon-agent $(addprefix $(BINDIR)/,$(SERVER_SBIN)) $(DESTDIR)$(PREFIX)/sbin/
	for page in $(MANPAGES); do \
		section=$${page##*.}; \
		install -d $(DESTDIR)$(PREFIX)/share/man/man$$section; \
		install -m 644 $$page $(DESTDIR)$(PREFIX)/share/man/man$$section/; \
	done
	install -d $(DESTDIR)$(SYSCONF) $(DESTDIR)/etc/init.d $(DESTDIR)/etc/systemd/system $(DESTDIR)/etc/cron.d
	# Daemon configs are for root and the opticon group; the client's is
	# for every user (it holds no secret unless an administrator adds one).
	for conf in $(CONFIGS); do \
		mode=640; [ $$conf = opticon-cli.conf ] && mode=644; \
		if [ -e $(DESTDIR)$(SYSCONF)/$$conf ]; then echo "keeping $(DESTDIR)$(SYSCONF)/$$conf"; \
		else install -m $$mode etc/$$conf $(DESTDIR)$(SYSCONF)/$$conf; fi; \
	done
	# A Grafana dashboard over what the collector exports (reference,
	# replaced on each install).
	install -m 644 etc/grafana-opticon.json $(DESTDIR)$(SYSCONF)/grafana-opticon.json
	for f in etc/init.d/*; do \
		sed 's|/usr/local/sbin|$(PREFIX)/sbin|' $$f > $(DESTDIR)/etc/init.d/$${f##*/}; \
		chmod 755 $(DESTDIR)/etc/init.d/$${f##*/}; \
	done
	for f in etc/systemd/*.service; do \
		sed 's|/usr/local/sbin|$(PREFIX)/sbin|' $$f > $(DESTDIR)/etc/systemd/system/$${f##*/}; \
	done
	[ -e $(DESTDIR)/etc/cron.d/opticon-db ] || sed 's|/usr/local/bin|$(PREFIX)/bin|' etc/cron.d/opticon-db > $(DESTDIR)/etc/cron.d/opticon-db
	# The probe scripts the shipped agent config calls.
	install -d $(DESTDIR)$(PROBEDIR)
	install -m 755 $(PROBES) $(DESTDIR)$(PROBEDIR)/
	install -d -m 750 $(DESTDIR)$(DBDIR)
	if [ "$$(id -u)" = 0 ] && [ -z "$(DESTDIR)" ]; then \
		id opticon >/dev/null 2>&1 || useradd --system --home-dir $(DBDIR) --shell /usr/sbin/nologin opticon; \
		chown opticon: $(DBDIR); \
		chgrp opticon $(addprefix $(SYSCONF)/,$(filter-out opticon-cli.conf,$(CONFIGS))) 2>/dev/null || true; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/opticon $(DESTDIR)$(PREFIX)/bin/opticon-db
	rm -f $(DESTDIR)$(PREFIX)/sbin/opticon-agent $(addprefix $(DESTDIR)$(PREFIX)/sbin/,$(SERVER_SBIN))
	for page in $(MANPAGES); do rm -f $(DESTDIR)$(PREFIX)/share/man/man$${page##*.}/$${page##*/}; done
	rm -f $(DESTDIR)/etc/init.d/opticon-agent $(DESTDIR)/etc/init.d/opticon-collector $(DESTDIR)/etc/init.d/opticon-api
	rm -f $(DESTDIR)/etc/systemd/system/opticon-agent.service $(DESTDIR)/etc/systemd/system/opticon-collector.service $(DESTDIR)/etc/systemd/system/opticon-api.service
	rm -f $(DESTDIR)/etc/cron.d/opticon-db
	rm -f $(DESTDIR)$(SYSCONF)/grafana-opticon.json
	rm -f $(addprefix $(DESTDIR)$(PROBEDIR)/,$(notdir $(PROBES)))
	rmdir $(DESTDIR)$(PROBEDIR) 2>/dev/null || true
	@echo "left in place: $(DESTDIR)$(SYSCONF) (configs), $(DESTDIR)$(DBDIR) (data)"
	@for d in opticon-agent opticon-collector opticon-api; do \
		pid=$$( (pgrep -x $$d || cat /var/run/$$d.pid /run/$$d.pid) 2>/dev/null | head -1); \
		if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then \
			echo "still running: $$d (pid $$pid; its program is gone: stop it with kill $$pid)"; \
		fi; \
	done

# glibc's +crt-static gives fully static binaries on this toolchain; the
# dependencies stay at opt-level 3 (AES is 50x slower at "z").
static:
	RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=$(TARGET_DIR) $(CARGO) build --release --target $(STATIC_TARGET)
	mkdir -p $(TARGET_DIR)/static
	cd $(TARGET_DIR)/$(STATIC_TARGET)/release && cp opticon opticon-db opticon-agent $(SERVER_SBIN) ../../static/
	@for f in $(TARGET_DIR)/static/*; do printf '%s: ' "$${f##*/}"; ldd "$$f" 2>&1 | head -1; done

dist:
	mkdir -p $(TARGET_DIR)/dist
	git archive --format=tar.gz --prefix=opticon-$(VERSION)/ -o $(TARGET_DIR)/dist/opticon-$(VERSION).tar.gz HEAD
	@echo $(TARGET_DIR)/dist/opticon-$(VERSION).tar.gz

deb: static
	scripts/make-deb $(VERSION) $(TARGET_DIR)

clean:
	$(CARGO) clean
