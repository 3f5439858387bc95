"""The instruction appended to a math question, in training data and in the math tasks' prompts.

The paper's data (jasonrqh/*-20k) and its math evaluation end each question with this sentence; Countdown's
embedded traces use it too, so the embedded default trains and is evaluated on the same wording.
"""
MATH_PROMPT_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
