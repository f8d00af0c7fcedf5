"""zhrnn: a Chinese-first character-level RNN (GRU/LSTM) text generator on PyTorch."""
import logging

from .api import TextModel, load, train
from .errors import ZhrnnError
from .generation import SampleConfig
from .model import CharRNN, ModelConfig
from .text.pipeline import CorpusConfig
from .training import TrainConfig

__version__ = "0.1.0"
__all__ = ["load", "train", "TextModel", "CharRNN", "ModelConfig", "TrainConfig", "CorpusConfig", "SampleConfig", "ZhrnnError"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
