"""Training: a plan for a run, its encoded text and batches, the trainer, and the processes."""
from .trainer import TrainConfig, TrainResult, fit

__all__ = ["TrainConfig", "TrainResult", "fit"]
