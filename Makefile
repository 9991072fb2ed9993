# edgeghost: the two set-up commands of the README are `make demo` and `make test`.
# Both create .venv, install edgeghost with every extra, install the Debian packages they need (when run as
# root on Debian/Ubuntu) and work offline apart from the package registries.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages: Fashion-MNIST for the demo; sshd + qemu-user + mmdebstrap for the emulated Raspberry Pi;
# the Arm toolchain and QEMU for the Cortex-M firmware; valgrind for instruction counts.
APT_DEMO := dataset-fashion-mnist g++ make
APT_TEST := $(APT_DEMO) openssh-server openssh-client qemu-user mmdebstrap gcc-arm-none-eabi \
	libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm
DEMO_DIR ?= runs/demo

.PHONY: demo test venv apt-demo apt-test clean

$(BIN)/edgeghost: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[all]"
	touch $@

venv: $(BIN)/edgeghost

# Installs only what is missing, and only where apt-get exists and we are root; otherwise says what to install.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "apt: all needed packages present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "apt: installing $$missing"; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	else echo "apt: please install: $$missing"; fi
endef

apt-demo:
	$(call apt_install,$(APT_DEMO))

apt-test:
	$(call apt_install,$(APT_TEST))

demo: venv apt-demo
	$(BIN)/edgeghost info --model ghostnetv3_small --width 2.8
	$(BIN)/edgeghost info --model ghostnetv3_small --width 1.0 --json

test: venv apt-test
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

clean:
	rm -rf $(VENV) build dist *.egg-info runs exports
