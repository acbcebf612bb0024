# The two commands of the README. Both install what is missing on a Debian machine
# (system packages via apt when root) and start the services they need.

.PHONY: run test fmt lint build migrate clean

run: ## Build and run the whole stack on the embedded defaults
	@bash scripts/run.sh

test: ## Lint and run every test suite (SQLite and PostgreSQL) against real services
	@bash scripts/test.sh

build:
	cargo build --locked --workspace

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

migrate:
	cargo run --locked -p backend -- migrate

clean:
	cargo clean
	rm -rf data
