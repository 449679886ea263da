"""Optimizers over traced graphs: the base (propose / update, memory), OptoPrime, OptoPrimeMulti."""
from trace_core.optimizers.base import Optimizer, StepLog
from trace_core.optimizers.multi import OptoPrimeMulti
from trace_core.optimizers.optoprime import MASKED, OptoPrime

__all__ = ["MASKED", "OptoPrime", "OptoPrimeMulti", "Optimizer", "StepLog"]
