"""The instructions appended to a math question: in training data, and in the math tasks' prompts.

The paper's training data (jasonrqh/*-20k) ends each question with MATH_PROMPT_SUFFIX; Countdown's embedded traces
use it too, and so do the reasoning-gym tasks, so the embedded default trains and is evaluated on the same wording.
The paper's math evaluation (math_eval_budget.py build_prompt) writes the same sentence after a space:
MATH_EVAL_PROMPT_SUFFIX, which MATH500 and AIME24 use.
"""
MATH_PROMPT_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
MATH_EVAL_PROMPT_SUFFIX = "\n Please reason step by step, and put your final answer within \\boxed{}."
# The quickstart's out-of-domain tasks (word_problems, capitals): after the longer sentence above the 135M base
# model rambles and rarely states an answer (bench/RESULTS.md, issue 11's calibration), after this one it answers.
SHORT_ANSWER_SUFFIX = " Put the final answer in \\boxed{}."
