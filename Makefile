# netipl — see README.md. `make demo` and `make test` do all set-up on a fresh Debian 12 machine.
GO ?= go
LOADER ?= ./loader
IMAGE ?= build/netipl.img

.PHONY: all deps fixtures image test demo bench clean
all: image

deps:
	bash scripts/deps.sh

fixtures: deps
	bash tests/fixtures/fetch.sh

# The firmware image: metal + the loader program given by LOADER (any linux/s390x main package).
image:
	$(GO) run ./linker/cmd/netipl-link -loader $(LOADER) -o $(IMAGE)

test: deps fixtures
	bash scripts/test.sh

demo: deps fixtures image
	bash scripts/demo.sh

bench: deps fixtures
	bash bench/run.sh

clean:
	rm -rf build
