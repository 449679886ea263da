"""The code an optimizer rewrites: the robot's `controller`, and the namespace it runs in.

Trainable code is compiled against this module's globals (trace_core compiles a bundled function's
source in a copy of the namespace it was defined in), so it may use `math` and `np` and sees none
of the task's internals. The starting point is the paper's: a controller that does nothing.
"""
import math  # noqa: F401 (there for the generated code)

import numpy as np  # noqa: F401 (there for the generated code)


def controller(obs):
    """A feedback controller for the robot arm: maps one observation to one action.

    obs: a dict whose keys are strings and whose values are lists of floats.
    Returns the action, 4 numbers [dx, dy, dz, gripper]: (dx, dy, dz) is added to the current hand
    position to give the hand's target for this step, and gripper is 0 (open) to 1 (closed).
    """
    return [0, 0, 0, 0]
