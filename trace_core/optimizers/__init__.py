"""Optimizers over traced graphs: the base (propose / update, memory) and OptoPrime."""
from trace_core.optimizers.base import Optimizer, StepLog
from trace_core.optimizers.optoprime import MASKED, OptoPrime

__all__ = ["MASKED", "OptoPrime", "Optimizer", "StepLog"]
