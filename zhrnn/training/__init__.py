"""Training: a plan for a run, its encoded text and batches, the trainer, and the processes.

The names below load on first use, so that launch.py (who this process is under torchrun, read
by every command of the CLI) comes without torch."""
import importlib

__all__ = ["TrainConfig", "TrainResult", "fit"]

_WHERE = {"fit": "build", "TrainConfig": "plan", "TrainResult": "trainer"}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
