#!/usr/bin/env bash
# Fill .whl/ with the GPU set's wheels for an offline CUDA machine (Python 3.12, x86-64, CUDA 13), slimmed to fit
# a small transfer: Unsloth without its web UI (studio/), bitsandbytes with only its CUDA 13.0 library.
# Lists the packages the GPU set needs beyond a CUDA image that already has torch, transformers, peft, accelerate,
# triton, numpy, pandas, pyarrow, scikit-learn, sacrebleu (what the device machines here hold).
#   bash bench/offline_wheels.sh            # then: bash bench/gpu_check.sh on the GPU machine
set -eu
mkdir -p .whl
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
pip download --no-deps $PLAT -d .whl \
  unsloth==2026.10.9 unsloth-zoo==2026.10.9 trl==1.15.0 bitsandbytes==0.50.2 lm-eval==0.4.13 math-verify==0.9.0 \
  datasets==4.8.5 dill==0.4.1 multiprocess==0.70.19 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 \
  evaluate==0.4.6 pytablewriter==1.2.1 dataproperty==1.1.1 mbstrdecoder==1.1.5 pathvalidate==3.3.1 \
  tabledata==1.3.5 tcolorpy==0.1.7 typepy==1.3.5 chardet==6.0.0.post1 rouge-score==0.0.4 nltk==3.10.4 \
  defusedxml==0.7.1 more-itertools==11.2.1 torchao==0.18.0 tyro==1.0.17 docstring-parser==0.18.0 \
  typeguard==4.6.1 cut-cross-entropy==25.1.1 hf-transfer==0.1.9 msgspec==0.22.0 pydantic==2.14.4 \
  pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 json5==0.17.3 nest-asyncio==1.6.0 \
  structlog==26.1.0
pip wheel --no-deps -w .whl word2number==1.1 sqlitedict==2.1.0   # published as source only
python bench/slim_wheel.py .whl/unsloth-2026.10.9-py3-none-any.whl --drop studio/
python bench/slim_wheel.py .whl/bitsandbytes-0.50.2-*.whl --keep-so libbitsandbytes_cuda130.so
du -sh .whl
