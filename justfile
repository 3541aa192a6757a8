# shoplab tasks. Install just with `pip install rust-just` (or `cargo install just --locked`);
# every recipe is a plain cargo command, so cargo alone works too.

# Run the pricing benchmark scenario.
default: (bench-scenario "pricing")

# Build and run scenarios/NAME.toml: every policy × every seed, in parallel.
bench-scenario name:
    cargo bench-scenario {{name}}

# Re-run a run folder and check its CSVs come out byte-identical.
reproduce dir:
    cargo shoplab reproduce {{dir}}

# The whole test suite, Rust then Python (what .ci/run runs).
test:
    scripts/test

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Speed benchmarks: purchase decisions, Q-learning updates, sweep speed-up.
bench:
    cargo bench --bench speed
