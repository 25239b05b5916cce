# Custom Beam SDK worker for Dataflow / Spark portable workers: CUDA torch for the tokenize step,
# Mesa (EGL + OSMesa) for offscreen Objaverse renders, and uvd itself. Build from the repo root:
#   docker build -f docker/worker.Dockerfile -t REGION-docker.pkg.dev/PROJECT/uvd/worker:TAG .
# Then: make dataset RUNNER=DataflowRunner ... CONTAINER=REGION-docker.pkg.dev/PROJECT/uvd/worker:TAG
# The Beam SDK version must equal the one that launches the job (pyproject's apache-beam).
ARG BEAM_VERSION=2.77.0
ARG PY_VERSION=3.11
FROM apache/beam_python${PY_VERSION}_sdk:${BEAM_VERSION}

# Offscreen GL (scripts/apt-packages.txt) so CPU workers can render meshes headless.
COPY scripts/apt-packages.txt /tmp/apt-packages.txt
RUN apt-get update \
 && grep -v '^#' /tmp/apt-packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*

# CUDA torch (GPU workers get the NVIDIA driver from Dataflow's install-nvidia-driver hint).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url ${TORCH_INDEX}

COPY . /opt/uvd
RUN pip install --no-cache-dir "/opt/uvd[pipeline,tokenize,label]"
ENV PYOPENGL_PLATFORM=egl
ENTRYPOINT ["/opt/apache/beam/boot"]
