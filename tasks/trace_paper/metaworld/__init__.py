"""Meta-World with LLF-style language feedback (Trace paper, Fig. 6): the wrapper (`env`), its
feedback sentences (`feedback`), the trainable controller (`controller`) and the task (`task`).

    python -m harness.optimize task=metaworld_reach optimizer=optoprime_mem10 llm=openai
"""
from tasks.trace_paper.metaworld.env import LLFMetaWorld, Start, StepResult, draw_starts, follow_expert
from tasks.trace_paper.metaworld.task import MetaWorldTask, rollout

__all__ = ["LLFMetaWorld", "MetaWorldTask", "Start", "StepResult", "draw_starts", "follow_expert",
           "rollout"]
