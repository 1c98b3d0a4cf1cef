"""The Hydra application's library side: what train.py and evaluate.py hand over to.

Nothing here reads Hydra globals except through the composed config (and, for run directories and
sweep names, `HydraConfig` when it is initialised), so every function can be called in-process.
"""
