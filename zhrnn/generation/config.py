"""SampleConfig: every option of one generation request, checked once, here."""
from __future__ import annotations

from dataclasses import InitVar, dataclass

from ..errors import ConfigError
from .forms import FORMS

MAX_LENGTH = 1_000_000
PARAGRAPH_CAP = 5_000  # characters per paragraph asked for by --num-paragraphs without --len: a safety stop
MAX_CANDIDATES = 64  # lines drawn to choose from: each one is a row of the batch
TONE_SYSTEMS = ("平水韵", "新韵")  # --tones: the 106 groups of Tang and Song verse, or 中华新韵 (modern tones)
FORM_CANDIDATES = 4  # --candidates under --form unless told: benchmarks/generation_quality.py --meter


def check_temperature(temperature: float | tuple[float, ...], advice: str = "") -> None:
    """The one check of a temperature, or of a list of them (sampling, the interactive writer)."""
    values = temperature if isinstance(temperature, (list, tuple)) else (temperature,)
    if not all(t > 0 for t in values):
        raise ConfigError(f"--temperature must be above 0, not {temperature}{advice}")


@dataclass
class SampleConfig:
    length: int | None = None  # characters in each output, the start text included; None: 100, or with
    # num_paragraphs whole paragraphs (up to PARAGRAPH_CAP characters each)
    temperature: float | tuple[float, ...] = 0.8  # a tuple is cycled, one value per character
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    seed: int | None = None
    repetition_penalty: float = 1.0  # > 1 divides the probability of characters used in the last repetition_window
    repetition_window: int = 32
    no_repeat_ngram: int = 4  # n > 0: never repeat an n-gram (of tokens) within one output; 0: off
    no_repeat_scope: str | None = None  # "text": within the whole output; "line": within a line, so that
    # a chorus may come back; None: "line" for a model of a text with choruses (Tokenizer.chorus), else "text"
    beam: int = 1  # > 1: beam search for the most likely text (ignores temperature/top-k/top-p)
    length_alpha: float = 0.7  # beam and candidate score = log p / tokens**alpha, so long texts are not punished
    candidates: int | None = None  # > 1: each line drawn this many times in one batch, the most probable kept;
    # None: FORM_CANDIDATES for a --form poem (when sampling), 1 otherwise
    num_paragraphs: int | None = None  # stop after this many paragraphs (--num-paragraphs, formerly --paragraphs)
    stop: str | None = None  # stop after this string appears (it is kept)
    form: str | None = None  # 五言绝句, 七言律诗, ... or a template of □ and punctuation
    acrostic: str = ""  # 藏头诗: each line of the form starts with the next of these characters
    rhyme: bool = False  # the form's lines ending in 。 rhyme (十三辙 groups; needs pypinyin)
    tones: str | None = "auto"  # 格律 of 近体: 平仄, 粘对 and rhyme by 平水韵 ("平水韵") or 中华新韵 ("新韵");
    # "auto": 平水韵 for the four 近体 forms where the model and the start allow it; None or "off": none
    tones_strict: bool = False  # with tones: every character by the pattern (no 一三五不论)
    label: str | None = None  # context label (李白, 水调歌头) of a model trained with --labels
    paragraphs: InitVar[int | None] = None  # the old name of num_paragraphs, still taken

    def __post_init__(self, paragraphs: int | None):
        if paragraphs is not None:
            self.num_paragraphs = paragraphs
        if self.num_paragraphs is not None and self.num_paragraphs < 1:
            raise ConfigError(f"--num-paragraphs must be at least 1, not {self.num_paragraphs}")
        if self.length is None:
            self.length = min(MAX_LENGTH, PARAGRAPH_CAP * self.num_paragraphs) if self.num_paragraphs else 100
        if self.length < 1:
            raise ConfigError(f"--len must be at least 1, not {self.length}")
        if self.length > MAX_LENGTH:
            raise ConfigError(f"--len {self.length} is too large (at most {MAX_LENGTH})")
        if not self.greedy and self.beam == 1:
            check_temperature(self.temperature, " (use --greedy for the most likely text)")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"--top-k must be at least 1, not {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must be in (0, 1], not {self.top_p}")
        if not self.repetition_penalty >= 1:
            raise ConfigError(f"--repetition-penalty must be 1 or more, not {self.repetition_penalty}")
        if self.repetition_window < 1 or self.no_repeat_ngram < 0 or self.beam < 1:
            raise ConfigError("--repetition-window and --beam must be at least 1, --no-repeat-ngram at least 0")
        if self.no_repeat_scope not in (None, "text", "line"):
            raise ConfigError(f"--no-repeat-scope takes text or line, not {self.no_repeat_scope!r}")
        if self.tones == "off":
            self.tones = None
        if self.tones_strict:
            if self.tones is None:
                raise ConfigError("--tones-strict holds 格律 more strictly; it does not go with --tones off")
            if self.rhyme:
                raise ConfigError("--tones-strict keeps 格律, which rhymes by its own system; leave out --rhyme "
                                  "(the modern 十三辙)")
            self.tones = "平水韵" if self.tones == "auto" else self.tones
        if self.tones is not None and self.tones not in TONE_SYSTEMS + ("auto",):
            raise ConfigError(f"--tones takes {', '.join(TONE_SYSTEMS)} or off, not {self.tones!r}")
        if self.tones and self.tones != "auto" and self.rhyme:
            raise ConfigError("--tones rhymes by its own system already; leave out --rhyme (the modern 十三辙)")
        if (self.acrostic or self.rhyme or self.tones not in (None, "auto")) and not self.form:
            self.form = "五言绝句" if len(self.acrostic) <= 4 else "五言律诗"
        if self.tones == "auto":  # the 十三辙 of --rhyme, or a form not of 近体, go without
            self.tones = "auto" if self.form in FORMS and not self.rhyme else None
        if self.candidates is None:
            self.candidates = FORM_CANDIDATES if self.form and not (self.greedy or self.beam > 1) else 1
        if not 1 <= self.candidates <= MAX_CANDIDATES:
            raise ConfigError(f"--candidates must be from 1 to {MAX_CANDIDATES}, not {self.candidates}")
        if self.candidates > 1 and (self.greedy or self.beam > 1):
            raise ConfigError("--candidates draws lines to choose from; with --greedy or --beam every draw is the same")
        if self.form and (self.num_paragraphs is not None or self.stop):
            raise ConfigError("--num-paragraphs and --stop do not go with --form: the form decides where the poem ends")

    @property
    def temperatures(self) -> tuple[float, ...]:
        t = self.temperature
        return tuple(t) if isinstance(t, (list, tuple)) else (t,)
