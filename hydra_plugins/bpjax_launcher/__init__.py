"""Hydra launcher plugin of bpjax: submitit launchers whose preempted jobs resume from their checkpoints."""
