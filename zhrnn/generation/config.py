"""SampleConfig: every option of one generation request, declared once (flag, help, range) and checked here."""
from __future__ import annotations

from dataclasses import InitVar, dataclass

from ..errors import ConfigError
from ..options import check_options, option
from ..poetry.forms import FORMS

MAX_LENGTH = 1_000_000
PARAGRAPH_CAP = 5_000  # characters per paragraph asked for by --num-paragraphs without --len: a safety stop
MAX_CANDIDATES = 64  # lines drawn to choose from: each one is a row of the batch
TONE_SYSTEMS = ("平水韵", "新韵")  # --tones: the 106 groups of Tang and Song verse, or 中华新韵 (modern tones)
FORM_CANDIDATES = 4  # --candidates under --form unless told: benchmarks/generation_quality.py --meter
DECODING, POEM = "解码 / decoding", "诗体 / poem forms"  # the argument groups of `zhrnn sample --help`


@dataclass
class SampleConfig:
    """Every option of a request. Each field declares its flag, help and range (zhrnn/options.py):
    `zhrnn sample` and `zhrnn interactive` (step=True) take their flags from here, the server's
    requests (api=True) their fields, and check_options() their ranges; __post_init__ keeps what
    depends on more than one field."""
    length: int | None = option(  # None: 100, or with num_paragraphs whole paragraphs (up to PARAGRAPH_CAP each)
        None, type=int, flags="--len", low=1, high=MAX_LENGTH, api=True,
        zh="输出字数 (默认 100; 给了 --num-paragraphs 时写满整段)",
        en="characters per sample, start included (default 100; whole paragraphs with --num-paragraphs)")
    temperature: float | tuple[float, ...] = option(  # a tuple is cycled, one value per character
        0.8, flags="--temperature", above=0, many=True, hint=" (use --greedy for the most likely text)",
        group=DECODING, api=True, step=True,
        zh="温度, 越高越随机; 可给列表按字循环", en="temperature, or a list cycled per character (default 0.8)")
    top_k: int | None = option(
        None, type=int, flags="--top-k", low=1, group=DECODING, api=True, step=True,
        zh="只从最可能的 k 个字中选", en="sample from the k most likely")
    top_p: float | None = option(
        None, type=float, flags="--top-p", above=0, high=1, group=DECODING, api=True, step=True,
        zh="核采样", en="nucleus sampling threshold in (0, 1]")
    greedy: bool = option(
        False, flags="--greedy", group=DECODING, api=True, step=True,
        zh="总选最可能的字", en="always the most likely character")
    seed: int | None = option(
        None, type=int, flags="--seed", low=-(2**63), high=2**63 - 1, api=True, step=True,  # torch takes either sign
        zh="随机种子, 可复现", en="random seed for reproducible output")
    repetition_penalty: float = option(  # > 1 divides the probability of characters used in the last repetition_window
        1.0, flags="--repetition-penalty", low=1, group=DECODING, api=True, step=True,
        zh="重复惩罚, 大于 1 时少用最近用过的字 (标点除外)", en="penalise recently used characters")
    repetition_window: int = option(
        32, flags="--repetition-window", low=1, high=MAX_LENGTH, group=DECODING, api=True, step=True,
        zh="重复惩罚看最近多少个字 (默认 32)", en="how many recent tokens --repetition-penalty looks at (default 32)")
    no_repeat_ngram: int = option(  # n > 0: never repeat an n-gram (of tokens) within one output; 0: off
        4, flags="--no-repeat-ngram", low=0, group=DECODING, api=True, step=True,
        zh="不重复任何 n 字片段 (默认 4, 0 为关闭)", en="never repeat an n-gram (default 4; 0: off)")
    no_repeat_scope: str | None = option(  # None: "line" for a text with choruses (Layout.chorus), else "text"
        None, flags="--no-repeat-scope", choices=("text", "line"), group=DECODING, api=True, step=True,
        zh="不重复的范围: 整段输出, 或只在一行之内 (副歌可以重复; 语料有副歌时默认)",
        en="where --no-repeat-ngram holds: the whole output, or within a line so a chorus may return (the default "
           "for a text with choruses)")
    beam: int = option(  # > 1: beam search for the most likely text (ignores temperature/top-k/top-p)
        1, flags="--beam", low=1, group=DECODING,
        zh="束搜索宽度", en="beam search width (most likely text)")
    length_alpha: float = option(  # no flag: the library's own
        0.7, en="beam and candidate score = log p / tokens**alpha, so that long texts are not punished")
    candidates: int | None = option(  # None: FORM_CANDIDATES for a --form poem (when sampling), 1 otherwise
        None, type=int, flags="--candidates", low=1, high=MAX_CANDIDATES, metavar="K", group=DECODING, api=True,
        zh="每句同时写 K 稿, 留模型认为最通顺的一稿 (如九歌; --form 默认 4, 其余及 --greedy/--beam 时为 1)",
        en="draw each line K times in one batch and keep the one the model finds most probable (default 4 with "
           "--form, else 1; --greedy and --beam take 1)")
    num_paragraphs: int | None = option(
        None, type=int, flags=("--num-paragraphs", "--paragraphs"), low=1, metavar="N", group=DECODING, api=True,
        zh="生成几段后停止", en="stop after N paragraphs")
    stop: str | None = option(  # it is kept
        None, type=str, flags="--stop", group=DECODING, api=True,
        zh="遇到此字符串停止", en="stop after this string")
    form: str | None = option(  # 五言绝句, 七言律诗, ... or a template of □ and punctuation
        None, type=str, flags="--form", group=POEM, api=True, step=True,
        zh="五言绝句 | 七言绝句 | 五言律诗 | 七言律诗 | 词牌名如 水调歌头, 或模板如 □□□□□，□□□□□。",
        en="a form, a 词牌, or a template")
    acrostic: str = option(
        "", flags="--acrostic", group=POEM, api=True, step=True,
        zh="藏头诗: 每句开头的字, 如 春夏秋冬", en="first character of each line")
    rhyme: bool = option(  # 十三辙 groups
        False, flags="--rhyme", group=POEM, api=True, step=True,
        zh="押韵: 句号前的字同属十三辙一韵 (需 pypinyin)", en="lines ending in 。 rhyme (needs pypinyin)")
    tones: str | None = option(  # "auto": 平水韵 for the four 近体 forms where the model and the start allow it; None: none
        "auto", flags="--tones", choices=("auto",) + TONE_SYSTEMS + ("off",), const="平水韵", metavar="auto|平水韵|新韵|off",
        group=POEM, api=True, step=True,
        zh="格律: 绝句律诗守平仄、粘对, 按平水韵或中华新韵押平声韵, 一三五不论但不犯孤平、三平尾; 四种近体诗默认按平水韵 "
           "(用 --rhyme 时不默认), off 关闭",
        en="regulated verse: 平仄, 粘对 and a 平-tone rhyme by 平水韵 or 中华新韵; on (平水韵) by default for the four "
           "近体 forms unless --rhyme is given; off turns it off")
    tones_strict: bool = option(
        False, flags="--tones-strict", group=POEM, api=True, step=True,
        zh="格律从严: 每个字都按谱", en="every character by the pattern (no 一三五不论)")
    label: str | None = option(
        None, type=str, flags="--label", api=True, step=True,
        zh="风格标签, 如 李白、水调歌头 (模型需用 --labels 训练)", en="context label of a model trained with --labels")
    paragraphs: InitVar[int | None] = None  # the old name of num_paragraphs, still taken

    def __post_init__(self, paragraphs: int | None):
        if paragraphs is not None:
            self.num_paragraphs = paragraphs
        # each field in its declared range; the temperature is idle under --greedy and --beam
        check_options(self, skip=("temperature",) if self.greedy or self.beam > 1 else ())
        if self.length is None:
            self.length = min(MAX_LENGTH, PARAGRAPH_CAP * self.num_paragraphs) if self.num_paragraphs else 100
        if self.tones == "off":
            self.tones = None
        if self.tones_strict:
            if self.tones is None:
                raise ConfigError("--tones-strict holds 格律 more strictly; it does not go with --tones off")
            if self.rhyme:
                raise ConfigError("--tones-strict keeps 格律, which rhymes by its own system; leave out --rhyme "
                                  "(the modern 十三辙)")
            self.tones = "平水韵" if self.tones == "auto" else self.tones
        if self.tones and self.tones != "auto" and self.rhyme:
            raise ConfigError("--tones rhymes by its own system already; leave out --rhyme (the modern 十三辙)")
        if (self.acrostic or self.rhyme or self.tones not in (None, "auto")) and not self.form:
            self.form = "五言绝句" if len(self.acrostic) <= 4 else "五言律诗"
        if self.tones == "auto":  # the 十三辙 of --rhyme, or a form not of 近体, go without
            self.tones = "auto" if self.form in FORMS and not self.rhyme else None
        if self.candidates is None:
            self.candidates = FORM_CANDIDATES if self.form and not (self.greedy or self.beam > 1) else 1
        if self.candidates > 1 and (self.greedy or self.beam > 1):
            raise ConfigError("--candidates draws lines to choose from; with --greedy or --beam every draw is the same")
        if self.form and (self.num_paragraphs is not None or self.stop):
            raise ConfigError("--num-paragraphs and --stop do not go with --form: the form decides where the poem ends")

    @property
    def temperatures(self) -> tuple[float, ...]:
        t = self.temperature
        return tuple(t) if isinstance(t, (list, tuple)) else (t,)
