"""Judge-scored benchmarks, the second phase of their evaluation (see rsft/judges/phase.py).

    rubrics.py   the (role, prompt) pairs per kind of judged task, the rubric texts (prompts/), output parsing
    backends.py  local HF judges and the OpenAI-compatible API judge; the memory check before loading
    phase.py     which samples need judging, the judgments file, aggregation, TASK.json; run_judges
    __main__.py  python -m rsft.judges SPEC.json
"""
