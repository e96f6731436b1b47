# Herald. `make run` brings up a working server; `make test` runs the tests.
# Both start PostgreSQL themselves when none is running (scripts/ensure-postgres.sh).

SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
HERALD_LISTEN ?= 127.0.0.1:8080

.PHONY: run build test test-short bench lint clean help

help:
	@echo "make run    - start Herald (database, migrations, server, provider simulator)"
	@echo "make test   - run all tests against a real PostgreSQL and Chromium"
	@echo "make bench  - run the benchmarks (import, delivery, campaign, conversation)"

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/herald ./cmd/herald

# run: a development Herald. The secret and the first admin API key are made
# once and kept in .herald/ (git-ignored); on an empty database a first admin
# user is made and their one-time sign-in link printed.
run: build
	@mkdir -p .herald && chmod 700 .herald
	@[ -s .herald/secret ] || (head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .herald/secret && chmod 600 .herald/secret)
	@set -e; \
	if [ -z "$$HERALD_DATABASE_URL" ]; then \
	  base=$$(scripts/ensure-postgres.sh); export HERALD_DATABASE_URL="$$base/herald?sslmode=disable"; \
	fi; \
	export HERALD_SECRET=$$(cat .herald/secret) HERALD_LISTEN=$(HERALD_LISTEN) HERALD_SIMULATOR=$${HERALD_SIMULATOR:-true}; \
	./bin/herald migrate; \
	if [ ! -s .herald/api-key ]; then ./bin/herald apikey create --name "make run" --role admin --if-none > .herald/api-key.new; \
	  if [ -s .herald/api-key.new ]; then mv .herald/api-key.new .herald/api-key; chmod 600 .herald/api-key; else rm -f .herald/api-key.new; fi; fi; \
	[ -s .herald/api-key ] && echo "Admin API key: .herald/api-key   (curl -H \"Authorization: Bearer \$$(cat .herald/api-key)\" http://$(HERALD_LISTEN)/api/v1/lists)"; \
	link=$$(./bin/herald user create --email "$${HERALD_ADMIN_EMAIL:-admin@example.com}" --name "$${HERALD_ADMIN_NAME:-Admin}" --role admin --if-none); \
	if [ -n "$$link" ]; then echo "First admin $${HERALD_ADMIN_EMAIL:-admin@example.com}: open $$link to set a password and sign in (the link works once)."; \
	else echo "Sign in: http://$(HERALD_LISTEN)/sign-in   (a new sign-in link: ./bin/herald user reset --email <email>)"; fi; \
	echo "Open http://$(HERALD_LISTEN)/l/news for the opt-in page."; \
	exec ./bin/herald serve --seed-demo

# test: every package against a real PostgreSQL (a schema per package) and
# the browser test in Debian's Chromium.
test:
	@set -e; base=$$(scripts/ensure-postgres.sh); scripts/ensure-chromium.sh; \
	export HERALD_TEST_DATABASE_URL="$${HERALD_TEST_DATABASE_URL:-$$base/herald_test?sslmode=disable}"; \
	$(GO) vet ./... && $(GO) test -count=1 -timeout 15m ./...

test-short:
	@set -e; base=$$(scripts/ensure-postgres.sh); \
	HERALD_TEST_DATABASE_URL="$$base/herald_test?sslmode=disable" $(GO) test -short -count=1 ./...

bench:
	@set -e; base=$$(scripts/ensure-postgres.sh); \
	HERALD_TEST_DATABASE_URL="$$base/herald_test?sslmode=disable" $(GO) run ./cmd/herald-bench

clean:
	rm -rf bin
