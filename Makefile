# edgeghost: the two set-up commands of the README are `make demo` and `make test`.
# Both create .venv, install edgeghost with every extra, install the Debian packages they need (when run as
# root on Debian/Ubuntu) and work offline apart from the package registries.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages: Fashion-MNIST for the demo; sshd + qemu-user + mmdebstrap for the emulated Raspberry Pi;
# the Arm toolchain and QEMU for the Cortex-M firmware; stlink-tools and openocd for `edgeghost flash`.
APT_DEMO := dataset-fashion-mnist g++ make
APT_TEST := $(APT_DEMO) openssh-server openssh-client qemu-user mmdebstrap gcc-arm-none-eabi stlink-tools openocd \
	libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm
# Each demo run gets its own folders, so `make demo` can be repeated (training never overwrites a run).
ifndef DEMO_NAME
DEMO_NAME := demo-$(shell date +%Y%m%d-%H%M%S)
endif
DEMO_RUN := runs/$(DEMO_NAME)
# The deploy half of the demo runs on a trained zoo model (shipped weights), the training half shows a short run.
DEMO_ZOO ?= gns-mcu-fmnist
DEMO_EXPORT := exports/$(DEMO_NAME)-$(DEMO_ZOO)
EG := $(BIN)/edgeghost
# TFLite-Micro source trees for the firmware, found by the library's one rule (--tflm-dir, $TFLM_DIR,
# ../shared/third_party/tflm beside the checkout, ~/.cache/edgeghost/tflm/<commit>); when none is found it clones
# tflite-micro at the commit firmware_examples/README.md pins into that cache, or says in one line what to provide.
TFLM_FIND := $(BIN)/python -m edgeghost.export.firmware --tflm-dir --build

.PHONY: demo test venv apt-demo apt-test tflm clean

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

# Not fatal: without a tree the firmware tests are skipped with the reason (and fail under $CI).
tflm: venv
	@$(TFLM_FIND) || echo "tflm: no TFLite-Micro tree, firmware steps cannot build (see the line above)"

# The whole pipeline, briefly: model facts → train GN-S w0.5 on Fashion-MNIST (a few minutes on 2 CPU cores)
# → evaluate train form and reparameterized form → export ONNX / TFLite fp32 / int8 / TFLite-Micro with the
# fidelity ladder → benchmark on the host and in TFLite-Micro → build and run the host firmware.
demo: venv apt-demo tflm
	$(EG) info --model ghostnetv3_small --width 2.8
	$(EG) train --model ghostnetv3_small --width 0.5 --dataset fashion_mnist --in-chans 1 --epochs 1 \
		--train-samples 3000 --test-samples 1000 --batch-size 64 --lr 0.05 --weight-decay 5e-4 --warmup 0.1 \
		--threads 1 --out $(DEMO_RUN)
	$(EG) eval --checkpoint $(DEMO_RUN)/best.pt --deploy --test-samples 1000 --threads 1
	$(EG) zoo
	$(EG) export --pretrained $(DEMO_ZOO) --int8 --eval-samples 1000 --out $(DEMO_EXPORT)
	$(EG) bench --device host --pretrained $(DEMO_ZOO) --eval-samples 1000 --out bench/$(DEMO_NAME)-host
	$(EG) bench --device tflm --exports $(DEMO_EXPORT) --eval-samples 200 --out bench/$(DEMO_NAME)-tflm
	$(EG) firmware --export $(DEMO_EXPORT) --target host --out build/$(DEMO_NAME)-fw --num-images 1000 --run

test: venv apt-test tflm
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

clean:
	rm -rf $(VENV) build dist *.egg-info runs exports
