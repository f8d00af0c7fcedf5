"""Generation: a trained model and a request -> text.

    config.py      SampleConfig: the options of one request, checked once
    request.py     a request: its prime, its processors (which keep their own per-row state), its streams
    processors.py  the logits processors: masks, penalties, temperature, top-k/top-p
    sampling.py    sample() and beam_search(): the model stepped, streams drawn
    stepper.py     step-by-step generation for the interactive writer, on the same request path
    forms.py       a poem form's template, rhyme and 格律 as masks (the rules themselves: zhrnn/poetry)
    score.py       how surprised a model is by a text, and its heat map
"""
from .config import SampleConfig
from .sampling import beam_search, sample
from .stepper import Stepper

__all__ = ["SampleConfig", "sample", "beam_search", "Stepper"]
