"""The Trace library (node, bundle, backward, OptoPrime, LLM clients). Imports nothing of ours.

Its contents arrive with the trace_core issue; the package exists so the layout and the import
rules of DESIGN.md hold from the first commit.
"""
