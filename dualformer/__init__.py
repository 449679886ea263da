"""Searchformer / Dualformer models (nanoGPT-shaped). Imports `tasks` and `harness.api` only.

Its contents arrive with the Dualformer issue.
"""
