"""`python -m trace_core.sandbox <read fd> <write fd> <settings>`: a sandbox worker (worker.py)."""
import sys

from trace_core.sandbox.worker import main

main(sys.argv[1:])
