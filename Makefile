# Entry points; each calls a script in scripts/ that installs what it needs.
.PHONY: demo test terraform-test lint chaos fuzz release bench

demo:  ## pinhook end to end against the local emulator, through the Lambda runtime loop
	scripts/demo

test:  ## unit and integration tests, the emulator's own tests, and the Terraform module applied and destroyed against the emulator
	scripts/test

terraform-test:  ## the Terraform module applied against the emulator, compared with template.yaml, a launch replayed, destroyed
	scripts/terraform-test

lint:  ## formatting and clippy (Rust), ruff (the emulator), the SAM template (cfn-lint, sam validate --lint, checkov) and the Terraform module (fmt, validate, checkov), as CI checks them
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	scripts/venv
	.venv/bin/ruff check emulator
	.venv/bin/ruff format --check emulator
	scripts/lint-template
	scripts/lint-terraform

chaos:  ## 100 launches at once against 80 members with 20 % of AWS calls failing; prints the counts
	scripts/chaos

bench:  ## cold single events, a burst, and with SCALE=N a scale run under AWS's rate limits; writes bench/bench.json in cargo's target directory
	scripts/bench

fuzz:  ## the fuzz targets for FUZZ_SECONDS each (default 60)
	scripts/fuzz

release:  ## the arm64 Lambda artifact, lambda/pinhook/bootstrap.zip in cargo's target directory (SMOKE=1: run the demo on it under qemu)
	scripts/release

.PHONY: emulator-test
emulator-test:  ## the emulator's own lint (ruff) and tests (pytest)
	scripts/emulator-test
