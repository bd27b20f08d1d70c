# ec2-executor. `make demo` and `make test` work on a fresh Debian machine as root:
# the local stack installs its Debian packages itself (moto_server must be on PATH).
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test unit e2e gitlab-runner reliability demo stack-up stack-down lint fmt fuzz bench bench-smoke soak install release release-check

build: ## the driver binary, bin/ec2-executor
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ec2-executor ./cmd/ec2-executor

test: lint e2e bench-smoke release-check ## every test: end to end on the local stack (which installs its packages), then unit
	EC2X_REQUIRE_CLOUD_INIT=1 $(GO) test -count=1 ./...

unit: ## offline unit tests, no AWS, Docker or network
	$(GO) test -count=1 ./...

# A real gitlab-runner 17.5.0 and its static helper, built from the source archive in
# ../shared (beside every clone, in CI too) when they are not in place yet.
GITLAB_RUNNER_BUILD  ?= $(CURDIR)/../shared/tools/gitlab-runner/build.sh
GITLAB_RUNNER        ?= /usr/local/bin/gitlab-runner
GITLAB_RUNNER_HELPER ?= /usr/local/bin/gitlab-runner-helper
export EC2X_GITLAB_RUNNER := $(GITLAB_RUNNER)
export EC2X_GITLAB_RUNNER_HELPER := $(GITLAB_RUNNER_HELPER)

gitlab-runner: ## a real gitlab-runner 17.5.0 and its helper (the stack's helper image carries it; about 8 minutes the first time, then kept)
	bash $(GITLAB_RUNNER_BUILD) $(GITLAB_RUNNER) $(GITLAB_RUNNER_HELPER)

e2e: gitlab-runner ## end-to-end tests: the real binary, the runner simulator, a real gitlab-runner and the local stack; checks docs/reliability.md
	EC2X_RELIABILITY=check $(GO) test -tags e2e -count=1 -timeout 40m -v ./test/e2e/

SOAK ?= 30m
SOAK_WRITE ?= 1

soak: gitlab-runner ## the soak: jobs of every kind and random faults (pool, holders, stages, sshd, EC2 storms, terminations) for $(SOAK), then every invariant checked; a passing run writes docs/soak.md
	EC2X_SOAK=$(SOAK) EC2X_SOAK_WRITE=$(SOAK_WRITE) $(GO) test -tags 'e2e soak' -count=1 -timeout 3h -v -run '^TestSoak$$' ./test/e2e/

reliability: gitlab-runner ## rerun the end-to-end suite and rewrite docs/reliability.md from what it observed
	EC2X_RELIABILITY=write $(GO) test -tags e2e -count=1 -timeout 40m ./test/e2e/

demo: build gitlab-runner ## bring the stack up, run a sample job and a failing one, stop the stack
	$(GO) run ./test/demo $(BIN)/ec2-executor

PREFIX      ?= /usr/local
DESTDIR     ?=
UNITS       := ec2-executor-pool.service ec2-executor-pool@.service ec2-executor-reap.service ec2-executor-reap.timer
RELEASE_LDFLAGS := -s -w -buildid= $(LDFLAGS)

install: ## the release build of the binary (static, stripped), an example settings file (never over an existing one), the state directory and the systemd units
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "$(RELEASE_LDFLAGS)" -o $(BIN)/ec2-executor-release ./cmd/ec2-executor
	install -D -m 0755 $(BIN)/ec2-executor-release $(DESTDIR)$(PREFIX)/bin/ec2-executor
	install -d -m 0755 $(DESTDIR)/etc/ec2-executor $(DESTDIR)/etc/systemd/system
	test -e $(DESTDIR)/etc/ec2-executor/config.toml || install -m 0640 examples/driver-config.toml $(DESTDIR)/etc/ec2-executor/config.toml
	install -d -m 0700 $(DESTDIR)/var/lib/ec2-executor
	for u in $(UNITS); do \
	  sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|' examples/systemd/$$u > $(DESTDIR)/etc/systemd/system/$$u && chmod 0644 $(DESTDIR)/etc/systemd/system/$$u || exit 1; \
	done

DIST ?= $(CURDIR)/dist

release: ## static, reproducible binaries for linux/amd64 and arm64, .deb and .rpm packages and SHA256SUMS in dist/
	rm -rf $(DIST) && mkdir -p $(DIST)
	for arch in amd64 arm64; do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -buildvcs=false -ldflags "$(RELEASE_LDFLAGS)" \
	    -o $(DIST)/ec2-executor-linux-$$arch ./cmd/ec2-executor || exit 1; \
	done
	$(GO) run ./release -version $(VERSION) -dist $(DIST) -mtime $$(git log -1 --format=%ct 2>/dev/null || echo 0)

release-check: ## build the release twice (same bytes), install the .deb here, run it, remove it, nothing left
	bash test/release/check.sh

bench: build gitlab-runner ## every benchmark against its named peer on the local stack; rewrites docs/performance.md from a quiet run (about 20 minutes)
	$(GO) run ./bench -binary $(BIN)/ec2-executor -out docs/performance.md

bench-smoke: build gitlab-runner ## every benchmark section, small and with 2 s modelled boots, so the suite cannot rot; no timing is asserted
	$(GO) run ./bench -binary $(BIN)/ec2-executor -runs 1 -boot 2s -start 2s -stage-runs 2 -output-runs 1 -burst 6 -ramp 6 -ramp-over 6s -ramp-hold 2s -running 3 -running-for 2m -out /dev/null

stack-up: build gitlab-runner ## start the stack in the background; prints a driver settings file
	@$(GO) build -o $(BIN)/stack ./test/stack/cmd/stack
	@$(BIN)/stack up

stack-down: ## stop the stack started by stack-up
	@$(GO) build -o $(BIN)/stack ./test/stack/cmd/stack
	@$(BIN)/stack down

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## gofmt, go vet and staticcheck (e2e files included), and go.mod as `go mod tidy` leaves it
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/
	$(GO) vet -tags 'e2e soak' ./test/e2e/
	$(GO) mod tidy -diff || { echo "go.mod/go.sum differ from what 'go mod tidy' writes: run it"; exit 1; }
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./test/e2e/
	$(GO) run $(STATICCHECK) -tags 'e2e soak' ./test/e2e/

fmt:
	gofmt -w .

FUZZTIME ?= 30s
fuzz: ## run every fuzz test for FUZZTIME (their seed corpora also run in `make test`)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "$$pkg $$f"; $(GO) test $$pkg -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done
