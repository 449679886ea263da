"""The runner: contracts (api), the optimize / train loops, records and loggers.

Kept light: importing `harness` pulls in no Hydra, W&B or numeric libraries.
"""
