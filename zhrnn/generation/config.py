"""SampleConfig: every option of one generation request, declared once (flag, help, range) and checked here."""
from __future__ import annotations

import re
from dataclasses import InitVar, dataclass

from ..errors import ConfigError
from ..options import check_options, option
from ..poetry.forms import FORMS
from ..poetry.rhyme import GROUPS

MAX_LENGTH = 1_000_000
PARAGRAPH_CAP = 5_000  # characters per paragraph asked for by --num-paragraphs without --len: a safety stop
MAX_CANDIDATES = 64  # lines drawn to choose from: each one is a row of the batch
TONE_SYSTEMS = ("平水韵", "新韵")  # --tones: the 106 groups of Tang and Song verse, or 中华新韵 (modern tones)
FORM_CANDIDATES = 4  # --candidates under --form unless told: benchmarks/generation_quality.py --meter
DECODING, POEM = "解码 / decoding", "诗体 / poem forms"  # the argument groups of `zhrnn sample --help`
SONG = "歌词与自由文本 / songs and free text"
RHYME_SCHEMES = ("all", "abab", "aabb")  # every line; every second line (ABAB's B); couplets, a new rhyme each
SECTION_NAMES = {**dict.fromkeys(("verse", "v", "主歌", "主"), "verse"), **dict.fromkeys(("chorus", "c", "副歌", "副"), "chorus")}
SECTION_LINES, MAX_SECTION_LINES = 4, 64  # --structure: lines of a section unless given
RHYME_CANDIDATES = 4  # --candidates under free-text --rhyme unless told: BENCHMARKS.md (songs that rhyme)


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
    rhyme: str | None = option(  # "auto": the first rhyme decides (a form's 韵脚, or the first line's end); or a group
        None, type=str, flags="--rhyme", const="auto", metavar="[韵]", group=POEM, api=True, step=True,
        zh="押韵 (需 pypinyin): 诗体按句号前的字押十三辙; 歌词和自由文本按行尾押韵。可指定韵部, 如 --rhyme 江阳 "
           "(十三辙或中华新韵的名字) 或 --rhyme 光 (用这个字的韵); 不指定则由第一个韵脚决定",
        en="rhyme (needs pypinyin): a poem form's lines ending in 。, or the lines of a song or free text, in one "
           "rhyme group; name it (--rhyme 江阳, 十三辙 or 中华新韵) or give a character of it (--rhyme 光); bare: the "
           "first rhyme decides")
    rhyme_scheme: str = option(
        "all", flags="--rhyme-scheme", choices=RHYME_SCHEMES, group=SONG, api=True, step=True,
        zh="歌词押韵方式: all 每行都押 (默认); abab 隔行押 (双数行); aabb 两行一换韵",
        en="which lines of a song rhyme: all (default), abab (every second line), aabb (couplets, a new rhyme each)")
    structure: str | None = option(  # parsed by sections(): "verse chorus verse chorus", "主副主副", "v:6 c:4 v c"
        None, type=str, flags="--structure", metavar="主副主副", group=SONG, api=True,
        zh="歌曲结构, 如 \"主副主副\" 或 \"verse chorus verse chorus\": 主歌每段新写, 副歌第一次写出, 之后原样再唱; "
           "段间空行; 每段默认 4 行, 可写 主:6",
        en="song structure, e.g. \"verse chorus verse chorus\" (or v c v c, 主副主副): each verse new, the first chorus "
           "written and every later one sung again word for word, a blank line between sections; 4 lines a section "
           "unless given (verse:6)")
    line_len: str | None = option(  # "6-12", "6-", "-12" or "8": parsed by line_range()
        None, type=str, flags="--line-len", metavar="MIN-MAX", group=SONG, api=True, step=True,
        zh="歌词和自由文本每行字数范围, 如 6-12: 不到最少不换行, 到最多必换行 (诗体按格式)",
        en="characters per line of a song or free text, e.g. 6-12: no line break before MIN, one by MAX "
           "(poem forms keep their own)")
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
        if self.rhyme is True or self.rhyme is False or self.rhyme == "":  # the Python API's and JSON's on / off
            self.rhyme = "auto" if self.rhyme else None
        if self.rhyme not in (None, "auto") and self.rhyme not in GROUPS and len(self.rhyme) != 1:
            raise ConfigError(f"--rhyme takes a rhyme group of 十三辙 or 中华新韵 (江阳, 十唐, ...) or one character "
                              f"that rhymes in it, not {self.rhyme!r}")
        self.line_range  # refuses a malformed --line-len
        if self.structure:
            if self.form or self.num_paragraphs is not None:
                raise ConfigError("--structure decides the song's sections; it does not go with --form or --num-paragraphs")
            self.num_paragraphs = len(self.sections)  # a section is a paragraph: the song ends after the last
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
        if (self.acrostic or self.tones not in (None, "auto")) and not self.form:
            self.form = "五言绝句" if len(self.acrostic) <= 4 else "五言律诗"
        if self.tones == "auto":  # the 十三辙 of --rhyme, or a form not of 近体, go without
            self.tones = "auto" if self.form in FORMS and not self.rhyme else None
        if self.form and (self.line_len or self.rhyme_scheme != "all"):
            raise ConfigError("--line-len and --rhyme-scheme are for songs and free text; a poem form keeps its own "
                              "lines and rhymes")
        if self.candidates is None:
            drafts = FORM_CANDIDATES if self.form else RHYME_CANDIDATES if self.rhyme or self.line_len else 1
            self.candidates = 1 if self.greedy or self.beam > 1 else drafts
        if self.candidates > 1 and (self.greedy or self.beam > 1):
            raise ConfigError("--candidates draws lines to choose from; with --greedy or --beam every draw is the same")
        if self.form and (self.num_paragraphs is not None or self.stop):
            raise ConfigError("--num-paragraphs and --stop do not go with --form: the form decides where the poem ends")

    @property
    def line_range(self) -> tuple[int, int | None] | None:
        """--line-len as (min, max), max None for no limit: "6-12", "6-", "-12", "8" (exactly)."""
        if not self.line_len:
            return None
        low, dash, high = str(self.line_len).replace("–", "-").replace("~", "-").partition("-")
        try:
            low, high = int(low or 1), (int(high) if high else None) if dash else int(low)
        except ValueError:
            low = high = 0
        if low < 1 or high is not None and high < max(low, 2):
            raise ConfigError(f"--line-len takes MIN-MAX characters per line (6-12, 6- or -12, at least 1, a "
                              f"maximum of 2 or more), not {self.line_len!r}")
        return low, high

    @property
    def sections(self) -> list[tuple[str, int]]:
        """--structure as (kind, lines) per section, kind "verse" or "chorus": "verse chorus verse
        chorus", "v c v c", "主副主副" (主歌, 副歌), with lines as "verse:6" (SECTION_LINES unless given)."""
        if not self.structure:
            return []
        words = str(self.structure).replace(",", " ").replace("，", " ").split()
        if len(words) == 1 and words[0].lower() not in SECTION_NAMES:  # 主副主副, 主歌:6副歌, vcvc
            run = re.findall(r"(?:主歌|副歌|主|副|v|c)(?::\d+)?", words[0].lower())
            words = run if "".join(run) == words[0].lower() else words
        out = []
        for word in words:
            name, _, lines = word.partition(":")
            kind = SECTION_NAMES.get(name.lower())
            if kind is None or lines and not (lines.isdigit() and 1 <= int(lines) <= MAX_SECTION_LINES):
                raise ConfigError(f"--structure takes sections such as \"verse chorus verse chorus\", \"主副主副\" or "
                                  f"\"verse:6 chorus:4\" (1 to {MAX_SECTION_LINES} lines), not {self.structure!r}")
            out.append((kind, int(lines) if lines else SECTION_LINES))
        return out

    @property
    def temperatures(self) -> tuple[float, ...]:
        t = self.temperature
        return tuple(t) if isinstance(t, (list, tuple)) else (t,)
