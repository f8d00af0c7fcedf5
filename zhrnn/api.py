"""The Python API, in the spirit of textgenrnn:

    import zhrnn
    m = zhrnn.load("runs/唐诗")            # or zhrnn.train("唐诗.txt", iters=2000)
    print(m.generate(start="选", length=100, temperature=0.8))
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint, shipped
from .errors import CheckpointError, ConfigError
from .generation import SampleConfig, sample
from .counts import Counts, Mixed
from .model import CharRNN, ModelConfig, network, quantize_int8, resolve_device
from .options import describe
from .text.layout import Layout
from .text.tokenizer import Tokenizer
from .text.pipeline import CorpusConfig
from .training.plan import TrainConfig


class TextModel:
    """A trained model with its tokenizer: what a checkpoint holds, ready to generate."""

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, info: dict | None = None, path: Path | None = None,
                 layout: Layout | None = None):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.layout = layout or Layout(tokenizer.marker)  # how its text is laid out: what sampling and views follow
        self.info = info or {}  # step, best (its figures), best_val_bpc, corpus, train_config of the checkpoint
        self.path = path

    @classmethod
    def from_checkpoint(cls, path, device: str | torch.device = "cpu", int8: bool = False,
                        last: bool = False, counts: bool = True) -> "TextModel":
        """int8: sample with int8 weights (CPU only; see model.quantize_int8). A run directory
        gives its best checkpoint by validation, or with last its latest. counts: mix in the
        n-gram counts the checkpoint holds (counts.py); False: the network alone."""
        device = resolve_device(device)
        if int8 and device.type != "cpu":
            raise ConfigError("--int8 is for sampling on the CPU; leave it out on a GPU")
        path = checkpoint.resolve(shipped.resolve(path), last)
        state = checkpoint.load(path)
        try:
            tokenizer = Tokenizer.from_dict(state["tokenizer"])
            model = network(state)
        except (TypeError, KeyError, RuntimeError, AttributeError, ValueError) as e:
            raise CheckpointError(f"{path} does not match this zhrnn's model ({type(e).__name__}: {str(e)[:100]})") from None
        info = {k: state.get(k) for k in ("step", "best", "best_val_bpc", "corpus", "train_config", "corpus_config",
                                          "credits")}
        model = quantize_int8(model) if int8 else model.to(device)
        if state.get("counts") is not None and counts:  # every probability it gives mixes them in
            model = Mixed(model, Counts.from_state_dict(state["counts"]), state["counts"]["weights"])
        return cls(model, tokenizer, info, path, Layout.from_checkpoint(state))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate_many(self, num: int, start: str = "", length: int | None = None, on_text=None, **options) -> list[str]:
        """num texts of `length` characters (the start text included; default 100, or whole paragraphs
        with num_paragraphs), drawn as one batch. on_text(piece), with num=1, streams the text as it
        is generated.

        options are SampleConfig's fields, as its declarations (generation/config.py) say; a value
        out of its range is refused with ConfigError in the words of `zhrnn sample`:

        """
        cfg = SampleConfig(length=length, **options)
        return sample(self.model, self.tokenizer, start, cfg, num=num, device=self.device, on_text=on_text,
                      layout=self.layout)

    if generate_many.__doc__:  # the list, made from the declarations (none under python -OO)
        generate_many.__doc__ = generate_many.__doc__.rstrip(" ") + describe(SampleConfig, indent=" " * 8) + "\n"

    def generate(self, start: str = "", length: int | None = None, **options) -> str:
        """One text of `length` characters beginning with `start` (see generate_many for options)."""
        return self.generate_many(1, start, length, **options)[0]


def load(path=None, device: str | torch.device = "cpu", int8: bool = False, last: bool = False,
         counts: bool = True) -> TextModel:
    """Load a checkpoint file, a run directory (its best.pt by validation; its latest ckpt.pt
    with last) or a shipped model by name (唐诗, 宋词); with no path, the newest run under ./runs,
    or the shipped 唐诗 when there is none. counts=False: the network alone, without the n-gram
    counts the checkpoint may hold."""
    if path is None:
        path = checkpoint.latest(last=last) or shipped.find(shipped.DEFAULT)
        if path is None:
            raise CheckpointError("no model under ./runs and no shipped model installed; train one (zhrnn train FILE)")
    return TextModel.from_checkpoint(path, device, int8, last, counts)


def train(corpus, resume=None, progress: bool = True, **options) -> TextModel:
    """Train on a text file (or files, or a directory of .txt) and return the trained model.

    resume: a checkpoint, a run directory, or True for the newest run on this corpus; it keeps
    the run's settings but for those declared resumable (iters, time_budget, learning_rate, ...).

    level="word" on a text of 1 MB or more cuts it with jieba in worker processes, which Python
    starts by importing your script again: keep the script's work under
    `if __name__ == "__main__":`.

    options are the fields of ModelConfig (model.py), TrainConfig (training/plan.py) and
    CorpusConfig (text/pipeline.py), as their declarations say: `zhrnn train`'s options by their
    field names (iters for --iter, time_budget for --time: seconds, or '30m'). A value out of its
    range is refused with ConfigError in the words of `zhrnn train`:

    """
    from .training.build import fit  # the trainer, its progress bar and processes: not for sampling

    result = fit(corpus, resume=resume, progress=progress, **options)
    return TextModel.from_checkpoint(result.run_dir)  # its best.pt, as load() of the directory gives


if train.__doc__:  # the list, made from the declarations (none under python -OO)
    train.__doc__ = train.__doc__.rstrip(" ") + "\n".join(
        describe(config, indent=" " * 8) for config in (ModelConfig, TrainConfig, CorpusConfig)) + "\n"
