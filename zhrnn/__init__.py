"""zhrnn: a Chinese-first character-level RNN (GRU/LSTM) text generator on PyTorch.

The names below load on first use (a module-level __getattr__), so that `import zhrnn` and what
needs no model (`zhrnn check`, `zhrnn --help`) do not import torch."""
import importlib
import logging

__version__ = "0.1.0"
_WHERE = {  # each public name and the module that holds it
    "load": "api", "train": "api", "TextModel": "api",
    "CharRNN": "model", "ModelConfig": "model",
    "TrainConfig": "training.plan",
    "CorpusConfig": "text.pipeline",
    "SampleConfig": "generation.config",
    "ZhrnnError": "errors",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # found once; later look-ups do not come here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


logging.getLogger(__name__).addHandler(logging.NullHandler())
