# uvd: every target installs what it needs first (scripts/setup.sh, once per pyproject change).
VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.stamp-setup
POSE_STAMP := $(VENV)/.stamp-pose
MANIFEST  ?= manifests/sample.yaml
OUTPUT    ?= out/sample
# Runner flags (docs/scaling.md): make dataset RUNNER=DataflowRunner PROJECT=p REGION=r TEMP=gs://b/tmp
RUNNER    ?=
PROJECT   ?=
REGION    ?=
TEMP      ?=
CONTAINER ?=
JOB_ENDPOINT ?=
MAX_WORKERS ?=
# Spark and Flink through Beam's job servers (scripts/runners/): RUNNER=SparkRunner alone starts a local
# standalone cluster (master + 2 workers) for the run; SPARK_MASTER=spark://HOST:7077 puts only the job
# server in front of that master; RUNNER=FlinkRunner runs Flink [local] inside its job server. A given
# JOB_ENDPOINT uses that job server instead and starts nothing.
SPARK_MASTER ?=
SPARK_JOB_PORT ?= 8099
FLINK_JOB_PORT ?= 8199
ENGINE_ENDPOINT := $(if $(JOB_ENDPOINT),,$(if $(filter SparkRunner,$(RUNNER)),127.0.0.1:$(SPARK_JOB_PORT),$(if $(filter FlinkRunner,$(RUNNER)),127.0.0.1:$(FLINK_JOB_PORT),)))
WITH_ENGINE := $(if $(ENGINE_ENDPOINT),SPARK_JOB_PORT=$(SPARK_JOB_PORT) FLINK_JOB_PORT=$(FLINK_JOB_PORT) PY=$(PY) bash scripts/runners/with.sh $(if $(filter SparkRunner,$(RUNNER)),spark $(SPARK_MASTER),flink) --,)
BEAM_ARGS ?= $(if $(RUNNER),--runner=$(RUNNER),) $(if $(PROJECT),--project=$(PROJECT),) \
  $(if $(REGION),--region=$(REGION),) $(if $(TEMP),--temp_location=$(TEMP),) \
  $(if $(CONTAINER),--sdk_container_image=$(CONTAINER) --sdk_location=container,) \
  $(if $(JOB_ENDPOINT),--job_endpoint=$(JOB_ENDPOINT),) $(if $(MAX_WORKERS),--max_num_workers=$(MAX_WORKERS),) \
  $(if $(ENGINE_ENDPOINT),--job_endpoint=$(ENGINE_ENDPOINT),) $(if $(SPARK_MASTER),--spark_master_url=$(SPARK_MASTER),)
TRAIN_CONFIG ?= uvd/model/configs/sample.yaml
PYTEST_ARGS ?=

.PHONY: setup dataset test test-fast lint bench tokenizer train preview view setup-pose test-pose clean

$(STAMP): pyproject.toml scripts/setup.sh scripts/apt-packages.txt
	bash scripts/setup.sh $(VENV) all
	touch $(STAMP)

setup: $(STAMP)

## Build the dataset of a mixture manifest (default: the embedded sample, no network, no GPU).
dataset: $(STAMP)
	$(WITH_ENGINE) $(VENV)/bin/uvd dataset --manifest $(MANIFEST) --output $(OUTPUT) $(BEAM_ARGS)

## The test suite (what .ci/run calls): lint first, then every test, the MMPose extra included.
test: $(STAMP) $(POSE_STAMP) lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

## ruff (lint + format check) over the repo; mypy on the shard contract, config, tokenizer and trainer.
lint: $(STAMP)
	$(VENV)/bin/ruff check uvd tests benchmarks
	$(VENV)/bin/ruff format --check uvd tests benchmarks
	$(VENV)/bin/mypy

## The suite without the tests that start Spark and Flink clusters (tests/runners, marker `cluster`).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not cluster" $(PYTEST_ARGS)

## Every benchmark: each prints its figure beside a baseline measured in the same run.
bench: $(STAMP)
	@set -e; for b in $(filter-out benchmarks/bench_peers%,$(wildcard benchmarks/bench_*.py)); do \
	  echo "== $$b"; $(PY) $$b; done

## `uvd laion` beside img2dataset (own Python 3.11 venv under $$UVD_BENCH_DIR, default /tmp/uvd-bench), one
## loopback corpus, interleaved rounds: ~8 min on 2 cores (+~2 min once for the venv and the corpus).
PEERS_ARGS ?=
bench-peers: $(STAMP)
	$(PY) benchmarks/bench_peers.py $(PEERS_ARGS)

## Train the small VQGAN that the embedded default tokenizes with.
tokenizer: $(STAMP)
	$(PY) -m uvd.tokenize.train_small

## Train the LVM on shards (default: the tiny config on the embedded sample's shards, built first).
train: $(STAMP) $(if $(filter uvd/model/configs/sample.yaml,$(TRAIN_CONFIG)),out/sample/README.md)
	$(VENV)/bin/uvd-train --config $(TRAIN_CONFIG)

out/sample/README.md:
	$(MAKE) dataset MANIFEST=manifests/sample.yaml OUTPUT=out/sample

preview: $(STAMP)
	$(VENV)/bin/uvd preview --shards $(OUTPUT) --output $(OUTPUT)/preview.png

## Open the dataset viewer that `make dataset` writes (built first for the sample; others: uvd view).
view: $(STAMP) $(if $(filter out/sample,$(OUTPUT)),out/sample/README.md)
	@test -f $(OUTPUT)/viewer/index.html || $(VENV)/bin/uvd view --shards $(OUTPUT)
	@echo "viewer: file://$(abspath $(OUTPUT))/viewer/index.html"
	@command -v xdg-open >/dev/null 2>&1 && xdg-open $(OUTPUT)/viewer/index.html >/dev/null 2>&1 || true

$(POSE_STAMP): $(STAMP) scripts/setup-pose.sh requirements/pose.txt
	bash scripts/setup-pose.sh $(VENV)
	touch $(POSE_STAMP)

setup-pose: $(POSE_STAMP)

test-pose: setup-pose
	$(PY) -m pytest -q -m pose tests

clean:
	rm -rf out runs .pytest_cache
