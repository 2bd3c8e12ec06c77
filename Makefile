# `sam build` runs one target of this file per function (template.yaml: `BuildMethod: makefile`,
# `ContextPath: .`), each in a scratch copy of the function's CodeUri with ARTIFACTS_DIR set.
# Every target runs the same cargo-lambda build of all the functions into one target directory:
# the first compiles the workspace once, the others find it fresh (about a second each), and
# each copies its own `bootstrap` into ARTIFACTS_DIR (docs/OPERATIONS.md, "Deploying on AWS,
# in detail").
#
#   make lambdas        # the build alone: $(TARGET_DIR)/lambda/<function>/bootstrap
#
# cargo-lambda and zig come from the project's venv (scripts/ensure-venv; both pinned in
# scripts/requirements-dev.txt), put first on PATH here: cargo-lambda finds zig through the
# first `python3` on PATH, so any other venv ahead of it (the SAM CLI's, say) would hide zig.
#
# Variables: TARGET_DIR (default $CARGO_TARGET_DIR, else ./target), LAMBDA_VENV (./.venv).

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(ROOT)/target)
LAMBDA_VENV ?= $(ROOT)/.venv
export PATH := $(LAMBDA_VENV)/bin:$(PATH)

# template.yaml's function -> its package (functions/<package>) and binary.
FUNCTIONS := CheckoutFunction=checkout SubscriptionFunction=subscription \
	InvoiceFunction=invoice ChargeFunction=charge ThinFunction=thin PaypalFunction=paypal \
	RelayFunction=relay EmailsFunction=emails ApiFunction=api ReconcileFunction=reconcile \
	EventBridgeFunction=eventbridge
binary = $(patsubst $(1)=%,%,$(filter $(1)=%,$(FUNCTIONS)))
BINARIES := $(foreach f,$(FUNCTIONS),$(lastword $(subst =, ,$(f))))
TARGETS := $(foreach f,$(FUNCTIONS),build-$(firstword $(subst =, ,$(f))))

.PHONY: lambdas $(TARGETS)

lambdas:
	@"$(ROOT)/scripts/ensure-venv"
	@rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	cd "$(ROOT)" && CARGO_TARGET_DIR="$(TARGET_DIR)" cargo lambda build --release --arm64 \
		$(foreach b,$(BINARIES),--bin $(b))

$(TARGETS): build-%: lambdas
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 2; }
	cp "$(TARGET_DIR)/lambda/$(call binary,$*)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"
	@# A team's own email templates (BILLING_EMAIL_TEMPLATES=/var/task/email-templates, docs/EMAILS.md).
	@if [ -d "$(ROOT)/functions/$(call binary,$*)/email-templates" ]; then \
		cp -R "$(ROOT)/functions/$(call binary,$*)/email-templates" "$(ARTIFACTS_DIR)/email-templates"; \
	fi
