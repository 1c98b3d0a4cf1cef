"""The Hydra application behind train.py and evaluate.py: the only code that knows Hydra.

cli (one-line errors, exit codes), runtime (the one reader of Hydra's runtime: sweeps, overrides, choices,
DDP children), training (check, build, fit, report), evaluation (trainer.test per checkpoint), report
(tables, files, plots, HTML), tracking (W&B and the other loggers). Every function takes the composed
config or plain values, so it can be called in-process too.
"""
