"""CharRNN: embedding -> GRU/LSTM/RNN x N (fused cuDNN / oneDNN kernels) -> output over the vocabulary.

The output is a full softmax, or for large vocabularies an adaptive softmax (Grave et al. 2017):
the most frequent tokens (the vocabulary is in falling frequency order) get a full-size output,
rarer ones sit in clusters with narrower projections that are computed only for the targets in
them. With 5-10k Chinese characters the full output layer is over half the work of a training
step; with the adaptive one a 2x512 GRU trains about twice as fast (BENCHMARKS.md).
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .options import check_options, option

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}
OUTPUTS = ("auto", "full", "adaptive")
ADAPTIVE_FROM = 2000  # output auto: adaptive from this vocabulary size on (below it a full softmax is cheap)
CLUSTER_EDGES = (1000, 3000, 10000, 30000)  # default cutoffs: head, then clusters of rarer tokens
DROPOUT = 0.1  # a model made outside a run, given none (a run's own follows its passes: plan.auto_dropout)
LAYERS = 2  # likewise (a run's own follows the size of its text: plan.auto_layers)
MIN_CLUSTER_WIDTH = 32  # narrower, a cluster of thousands of words cannot tell them apart
MODEL = "模型 / model"  # the argument group of `zhrnn train --help`


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' is the GPU when PyTorch sees one, else the CPU; anything else is checked here so a
    wrong --device is one clear message, not a failure deep inside PyTorch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: there are only {torch.cuda.device_count()} GPU(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("--device mps was asked for, but this machine has no usable Metal GPU")
    elif device.type != "cpu":
        raise ConfigError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """The model in eval mode inside the block, and back in the mode it had after it, whatever
    happens inside (an exception while scoring must not leave a training model in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def map_hidden(hidden, fn):
    """fn applied to a recurrent state: one (L, B, H) tensor (GRU, RNN), or LSTM's pair of them;
    None (a zero state) stays None."""
    if hidden is None:
        return None
    return tuple(fn(h) for h in hidden) if isinstance(hidden, (tuple, list)) else fn(hidden)


def token_counts(text: str) -> list[int]:
    """--cutoffs as the command line gives them: '1000,3000'."""
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--cutoffs takes a comma-separated list of token counts, not {text!r}") from None


@dataclass
class ModelConfig:
    """The network's shape. Each field with a flag declares it (zhrnn/options.py): `zhrnn train`
    takes its flags from here, and check_options() its ranges."""
    vocab_size: int = 0  # set from the tokenizer
    cell: str = option("gru", flags="--cell", choices=tuple(CELLS), group=MODEL,
                       zh="循环单元", en="recurrent cell (default gru)")
    # None: chosen by the size of the run's training text (plan.auto_layers)
    num_layers: int | None = option(
        None, type=int, flags="--num-layers", low=1, group=MODEL,
        zh="层数; 默认按训练文本大小选: 150 万字以下 1 层, 以上 2 层",
        en="layers (default: 1 for a training text under 1,500,000 tokens, else 2)")
    hidden_size: int = option(256, flags=("--hidden-size", "--hidden_size"), low=1, group=MODEL,
                              zh="隐藏层大小", en="hidden units per layer (default 256)")
    embedding_size: int = option(128, flags="--embedding-size", low=1, group=MODEL,
                                 zh="字向量维度", en="embedding size (default 128)")
    # None: chosen by the passes the run makes over its text (plan.auto_dropout)
    dropout: float | None = option(
        None, type=float, flags="--dropout", low=0, below=1, group=MODEL,
        zh="dropout; 默认按训练读几遍文本选: 12 遍以内 0.1, 60 遍以上 0.5 (小文件训练几分钟就是几十遍), 续训沿用",
        en="dropout (default: by the passes the run makes over its text, 0.1 up to 12, 0.5 from 60, e.g. a small "
           "file trained for minutes; a resume keeps it)")
    output_layer: str = option(  # full | adaptive | auto (adaptive from ADAPTIVE_FROM tokens)
        "auto", flags=("--output-layer", "--output"), choices=OUTPUTS, group=MODEL,
        zh="输出层: adaptive 为自适应 softmax, 大词表训练快 2-5 倍",
        en="output layer: full softmax, or adaptive (2-5x faster training on 5-10k character vocabularies); "
           "default auto: adaptive from 2,000 tokens")
    # the output layer shares the embedding's matrix (Press & Wolf 2017; Inan et al. 2017), reached
    # through a projection from the hidden size: fewer weights to learn from a short text
    tie_embedding: bool = option(
        False, flags="--tie-embedding", negatable=True, group=MODEL,
        zh="输出层与字向量共用矩阵 (全 softmax)", en="output layer shares the embedding matrix (full softmax)")
    cutoffs: list[int] = option(  # adaptive: where the head and each cluster end
        default_factory=list, type=int, many=True, flags="--cutoffs", parse=token_counts, metavar="N,N,...",
        group=MODEL, zh="自适应 softmax 的分界",
        en="where the adaptive output's head and clusters end (default 1000,3000,10000,30000 below the vocabulary "
           "size)")
    # adaptive: each cluster's projection is this much narrower than the one before; None: as much
    # as keeps the last at MIN_CLUSTER_WIDTH or wider, at most 4
    div_value: float | None = None

    def __post_init__(self):
        check_options(self)  # each field in its declared range
        if self.tie_embedding and (self.output_layer == "adaptive" or self.cutoffs):
            raise ConfigError("--tie-embedding needs a full softmax (--output-layer full or auto), not an adaptive one")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """A checkpoint's model_config. Checkpoints from before the adaptive output had a full
        one; until the field was named output_layer it was output; until div_value was chosen by
        the hidden size it was 4."""
        d = dict(d)
        return cls(**{"output_layer": d.pop("output", "full"), "div_value": 4.0, **d})

    def resolved(self, reserved: int = 0) -> "ModelConfig":
        """This config with output and cutoffs made concrete for its vocabulary: what a checkpoint
        stores, so a model loads the same whatever later defaults say. reserved: context-label
        tokens at the front of the vocabulary, which the default cutoffs shift past so that the
        head still holds the most frequent characters."""
        if self.dropout is None:  # a model made outside a run (a run chooses by its passes: plan.auto_dropout)
            return replace(self, dropout=DROPOUT).resolved(reserved)
        if self.num_layers is None:  # likewise (a run chooses by the size of its text: plan.auto_layers)
            return replace(self, num_layers=LAYERS).resolved(reserved)
        output = self.output_layer
        if output == "auto":  # given cutoffs ask for an adaptive output; a tied one is full
            output = "adaptive" if not self.tie_embedding and (self.cutoffs or self.vocab_size >= ADAPTIVE_FROM) else "full"
        if output == "full":
            if self.cutoffs:
                raise ConfigError("--cutoffs are for --output-layer adaptive, not a full softmax")
            return replace(self, output_layer="full", cutoffs=[], div_value=None)
        cutoffs = list(self.cutoffs) or [reserved + c for c in CLUSTER_EDGES if reserved + c < self.vocab_size - 1]
        cutoffs = cutoffs or [min(self.vocab_size - 1, reserved + max(1, (self.vocab_size - reserved) // 4))]  # a small one
        if cutoffs != sorted(set(cutoffs)) or cutoffs[0] < 1 or cutoffs[-1] >= self.vocab_size:
            raise ConfigError(f"--output-layer adaptive needs increasing cutoffs between 1 and the vocabulary size "
                              f"{self.vocab_size}, not {cutoffs}")
        div = self.div_value
        if div is None:
            div = min(4.0, max(1.0, self.hidden_size / MIN_CLUSTER_WIDTH) ** (1 / len(cutoffs)))
            div = math.floor(div * 1000) / 1000  # rounded down, so the last is not a float's hair under the width
        return replace(self, output_layer="adaptive", cutoffs=cutoffs, div_value=div)


class CharRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config = config.resolved()
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        # One fused multi-layer module, not a Python loop over cells: this is what makes cuDNN
        # (and oneDNN on CPU) fast. Its dropout acts between layers only.
        self.rnn = CELLS[config.cell](
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        if config.output_layer == "adaptive":
            self.head = nn.AdaptiveLogSoftmaxWithLoss(config.hidden_size, config.vocab_size, config.cutoffs,
                                                      div_value=config.div_value)
        elif config.tie_embedding:
            # hidden -> embedding size, then scores against every token's embedding
            self.project = nn.Linear(config.hidden_size, config.embedding_size, bias=False)
            self.head = nn.Linear(config.embedding_size, config.vocab_size)
            self.head.weight = self.embedding.weight
        else:
            self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def set_dropout(self, p: float) -> None:
        """The dropout of a built model changed (a --time run chooses it once its speed is known)."""
        self.config = replace(self.config, dropout=p)
        self.drop.p = p
        if self.config.num_layers > 1:
            self.rnn.dropout = p  # read at every call

    def forward(self, idx: torch.Tensor, hidden=None, targets: torch.Tensor | None = None):
        """idx: (B, T) token ids; hidden: the state carried from the previous call, or None for zeros.

        Returns (logits (B, T, V), hidden) where hidden is the new state ((L, B, H), or a pair of
        them for LSTM); an adaptive output's logits are log-probabilities. Given targets (B, T), the
        first item is instead the loss in nats of each target, (B*T,) in float32, computed without
        the full (B, T, V) logits where the output allows. Training calls forward with targets (and
        not a separate method) so DistributedDataParallel sees the call.
        """
        x = self.drop(self.embedding(idx))  # (B, T, E)
        out, hidden = self.rnn(x, hidden)  # (B, T, H)
        out = self.drop(out)
        if self.config.output_layer == "adaptive":
            # in float32 even under autocast: the module fills a float32 tensor from its (half) matmuls
            with torch.autocast(out.device.type, enabled=False):
                return self._adaptive(out.float(), targets), hidden
        if self.config.tie_embedding:
            out = self.project(out)  # (B, T, E)
        logits = self.head(out)  # (B, T, V)
        if targets is not None:  # the softmax in float32 (under autocast the logits may be half)
            return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none"), hidden
        return logits, hidden

    def _adaptive(self, out: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """out (B, T, H) -> nats of each target (B*T,), or all log-probabilities (B, T, V)."""
        if targets is not None:  # log-probabilities of the targets only: clusters run for their rows
            return -self.head(out.flatten(0, 1), targets.flatten()).output
        return self.head.log_prob(out.flatten(0, 1)).view(*out.shape[:2], -1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # a tied matrix once


def network(state: dict) -> CharRNN:
    """The network a checkpoint state holds (an exported file's float16 weights widen as they load)."""
    model = CharRNN(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    return model


def quantize_int8(model: CharRNN) -> CharRNN:
    """A copy on the CPU (the model given is left as it is) whose GRU/LSTM and output layers hold
    int8 weights (dynamic quantization: the activations are quantized on the fly), for sampling on
    the CPU. A sampling step reads every weight once, so a quarter of the bytes is what speeds it up."""
    import warnings

    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        raise ConfigError("--int8: this PyTorch has no dynamic quantization (torch.ao.quantization)") from None
    with warnings.catch_warnings():  # deprecated in favour of the separate torchao package, still here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.GRU, nn.LSTM, nn.Linear}, dtype=torch.qint8,
                                inplace=True)  # on the copy
