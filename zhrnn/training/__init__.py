"""Training: a plan for a run, its encoded text and batches, the trainer, and the processes."""
from .build import fit
from .plan import TrainConfig
from .trainer import TrainResult

__all__ = ["TrainConfig", "TrainResult", "fit"]
