"""Command line: `zhrnn train FILE`, `zhrnn sample --start 选`. The only place that parses
arguments, prints to stdout and exits. Progress and messages go to stderr, text to stdout."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import PeerFailed, ZhrnnError
from .options import add_options, given, group
from .training.launch import OPTIONS as LAUNCH_OPTIONS, env  # no torch: the environment and argv only

log = logging.getLogger("zhrnn")
MODEL_HELP = ("自带模型名 (唐诗、宋词)、检查点或运行目录; 默认: ./runs 下最新的, 没有则用唐诗 / a shipped model "
              "(唐诗, 宋词), checkpoint or run directory (default: the newest under ./runs, else 唐诗)")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        self.exit(2, f"zhrnn: error: {message} (see {self.prog} --help)\n")


def _train_parser(sub, arguments: bool = True) -> None:
    p = sub.add_parser(
        "train", help="训练模型 / train a model on a text file",
        description="在文本上训练字符级 GRU/LSTM 语言模型 / train a character-level GRU/LSTM language model on text",
    )
    p.set_defaults(func=cmd_train)
    if not arguments:  # listed in `zhrnn --help`; its options, declared beside torch, only when it runs
        return
    from .model import ModelConfig
    from .text.pipeline import CorpusConfig
    from .training.plan import TRAINING, TrainConfig

    p.add_argument("corpus", nargs="+", help="文本文件或 .txt 目录 (UTF-8、GBK、Big5) / text file(s) or directories of .txt")
    for config in (ModelConfig, TrainConfig, CorpusConfig):  # the 模型, 训练 and 文本与词表 groups, as declared
        add_options(p, config)
    group(p, TRAINING).add_argument(
        "--resume", nargs="?", const=True, default=None, metavar="PATH",
        help="继续训练 / continue a run: its checkpoint or directory (no PATH: the newest run on this corpus)")
    g = p.add_argument_group(
        "多进程 / several processes (torchrun, DDP)",
        "与 torchrun --nproc-per-node N -m zhrnn train ... 相同, 但出错时只给一行说明 / "
        "the same as torchrun --nproc-per-node N -m zhrnn train ..., with one-line errors")
    g.add_argument("--nproc-per-node", type=int, default=None, metavar="N", help="本机进程数 (每块 GPU 一个) / processes on this machine (one per GPU)")
    g.add_argument("--nnodes", type=int, default=1, help="机器数 / machines (default 1)")
    g.add_argument("--node-rank", type=int, default=0, help="本机序号 / this machine's index, 0 .. nnodes-1")
    g.add_argument("--master-addr", default="127.0.0.1", help="0 号机器的地址 / address of machine 0")
    g.add_argument("--master-port", type=int, default=None, help="0 号机器的端口 / its port (default: free port on one machine, 29500 on several)")
    p.add_argument("-q", "--quiet", action="store_true", help="不显示进度条 / no progress bar")


def _sample_parser(sub, arguments: bool = True) -> None:
    p = sub.add_parser(
        "sample", help="生成文本 / generate text from a model",
        description="从模型生成文本 / generate text from a trained model",
    )
    p.set_defaults(func=cmd_sample)
    if not arguments:  # listed in `zhrnn --help`; its options (generation/ imports torch) only when it runs
        return
    from .generation.config import SampleConfig

    _model_options(p)
    p.add_argument("--start", default="", help="开头的字或句 / start text (default: start of a paragraph)")
    add_options(p, SampleConfig)  # --len, --seed, --label here; the decoding and poem-form groups below
    p.add_argument("--num", type=int, default=1, help="生成几段 (同一批次并行) / number of samples, generated as one batch")
    p.add_argument("--stream", action="store_true", help="边生成边输出 / print character by character")
    p.add_argument("--convert", default=None, help="输出转换 / convert the output: t2s (to Simplified), s2t (to Traditional), ...")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda")
    p.add_argument("--int8", action="store_true", help="int8 权重, CPU 上采样更快 / int8 weights: faster sampling on the CPU")


def _model_options(p) -> None:
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--last", action="store_true",
                   help="运行目录取最新的检查点, 而非验证最好的 / from a run directory, the latest checkpoint "
                        "(ckpt.pt) instead of the best by validation (best.pt)")
    p.add_argument("--no-counts", dest="counts", action="store_false",
                   help="只用网络, 不混入模型带的 n-gram 计数 / the network alone, without the n-gram counts the "
                        "model holds (zhrnn train --ngram)")


def _score_parser(sub) -> None:
    p = sub.add_parser(
        "score", help="模型对文本有多意外 / bits per character of a text under a model",
        description="计算文本的每字比特数与每个字的意外程度, 可输出 HTML 热力图 / "
                    "bits per character of a text, each character's surprise, and an HTML heat map",
    )
    p.add_argument("file", help="要评分的文本文件 / text file to score")
    _model_options(p)
    p.add_argument("--html", metavar="OUT", default=None, help="把热力图写到此 HTML 文件 / write the heat map here")
    p.add_argument("--top", type=int, default=10, help="列出最意外的几个字 / list the N most surprising characters")
    p.add_argument("--chars", action="store_true", help="逐字输出比特数 (TSV) / print every character with its bits")
    p.add_argument("--encoding", default=None, help="文件编码 / file encoding (default: detect)")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda")
    p.set_defaults(func=cmd_score)


def _interactive_parser(sub, arguments: bool = True) -> None:
    p = sub.add_parser("interactive", help="与模型一起写 / write together with the model, character by character",
                       description="每一步显示最可能的下一个字及其概率, 可选择、输入、撤销或让模型续写 / "
                                   "see the most likely next characters, then choose, type, undo or let the model go on")
    p.set_defaults(func=cmd_interactive)
    if not arguments:
        return
    from .generation.config import SampleConfig

    _model_options(p)
    p.add_argument("--start", default="", help="开头 / start text")
    p.add_argument("--top", type=int, default=9, help="显示几个候选 / candidates shown (default 9)")
    p.add_argument("--lines", type=int, default=5, help="输入 = 时给几句候选整句 / candidate lines offered on = (default 5)")
    add_options(p, SampleConfig, lambda option: option.step)  # the options that hold step by step


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="导出只用于生成的小模型 / a small sampling-only copy of a checkpoint",
                       description="去掉优化器状态, 权重存为 float16 (体积约为检查点的六分之一) / drop the training "
                                   "state and keep float16 weights (about a sixth of the checkpoint)")
    p.add_argument("model", help="检查点或运行目录 (取验证最好的) / checkpoint or run directory (its best)")
    p.add_argument("--last", action="store_true", help="运行目录取最新的检查点 / from a run directory, the latest checkpoint")
    p.add_argument("-o", "--output", required=True, help="输出文件 / the file to write")
    p.add_argument("--float32", action="store_true", help="保留 float32 权重 / keep float32 weights")
    p.add_argument("--counts", nargs="+", metavar="TEXT",
                   help="为没有计数的模型加上 n-gram 计数: 给出它训练用的文本 (按原来的选项读取、按原来的方式切分) / add "
                        "n-gram counts to a model trained without them: the text it was trained on (read with its "
                        "options, split as its run split it)")
    p.add_argument("--ngram", default="auto", metavar="auto|N", help="计数的阶数 / the order of the counts (default auto)")
    p.add_argument("--counts-mb", type=float, default=None, metavar="MB",
                   help="计数最多占多少 MB (超过时按出现次数剪枝; 默认 48) / prune the counts to at most this many MB "
                        "(default 48)")
    p.add_argument("--cache-dir", help="编码后文本的缓存目录 / cache of encoded text")
    p.add_argument("--credits", metavar="TEXT",
                   help="训练文本的来源与许可, 存进模型, 显示在网页的模型卡片上 / the training text's sources and "
                        "licences, kept in the file and shown on the model's card")
    p.set_defaults(func=cmd_export)


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="网页版: 在浏览器里用模型写作 / a web page to write with the models",
                       description="在本机启动网页与 JSON API (需要 pip install \"zhrnn[serve]\") / start the page and "
                                   "the JSON API on this machine (needs the serve extra)")
    p.add_argument("--model", action="append", default=None, metavar="MODEL",
                   help="可重复; 默认: 自带模型与 ./runs 中最新的运行 / repeatable: a shipped name, run directory or "
                        "checkpoint (default: the shipped models and the newest run in ./runs)")
    p.add_argument("--host", default="127.0.0.1", help="监听地址 (默认只限本机) / address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="端口 / port (default 8000)")
    p.add_argument("--cors", action="append", default=None, metavar="ORIGIN",
                   help="允许其他网页调用 API 的来源 / an origin whose pages may call the API (default none)")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda")
    p.set_defaults(func=cmd_serve)


def _check_parser(sub) -> None:
    p = sub.add_parser("check", help="格律检查 / check the 平仄, 粘对 and rhyme of regulated verse",
                       description="五言、七言的绝句、律诗与排律：每句合哪种平仄、哪个字错、失粘失对、孤平、三平尾、出韵、重韵。"
                                   "诗之间空一行，或一行一首；繁简皆可。全部合律时退出码为 0，否则为 1 / "
                                   "五言 and 七言 绝句, 律诗 and 排律: the pattern of each line, each wrong character, "
                                   "失粘 / 失对, 孤平, 三平尾, 出韵 and 重韵. Poems are separated by blank lines, or one a line; "
                                   "either script. Exit status 0 when every poem keeps the rules, 1 otherwise")
    p.add_argument("file", help="诗的文本文件, - 为标准输入 / a text file of poems, - for standard input")
    p.add_argument("--strict", action="store_true",
                   help="每个字都按谱 (不用一三五不论) / every character as the pattern says (no 一三五不论)")
    p.add_argument("--modern", action="store_true",
                   help="用中华新韵 (今音, 需 pypinyin) 而非平水韵 / 中华新韵, modern tones (needs pypinyin), not 平水韵")
    p.add_argument("--encoding", default=None, help="文件编码 / file encoding (default: detect)")
    p.set_defaults(func=cmd_check)


def _corpus_parser(sub) -> None:
    from .text.poetry import LABEL_FIELDS

    p = sub.add_parser("corpus", help="准备与检查语料 / build and inspect training text",
                       description="从 chinese-poetry 数据集生成训练文本, 或检查一个文本文件 / "
                                   "build training text from the chinese-poetry dataset, or inspect a text file")
    actions = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    b = actions.add_parser(
        "build", help="从 chinese-poetry JSON 生成训练文本 / training text from chinese-poetry JSON",
        description="每首诗 (或每段文章) 一行; 按字段识别记录, 不看文件名 / one poem or passage per line; "
                    "records are found by their fields, so any file of the dataset works",
    )
    b.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="JSON 文件、目录, 或集合名: 全唐诗 全宋词 唐诗三百首 千家诗 诗经 楚辞 论语 四书 花间集 幽梦影 ... / "
                        "JSON files, directories, or collection names")
    b.add_argument("-o", "--output", required=True, help="输出的文本文件 / the text file to write")
    b.add_argument("--data", default=None, help="chinese-poetry 数据目录 / the dataset's directory "
                   "(default $ZHRNN_POETRY_DATA or ~/.cache/zhrnn/chinese-poetry)")
    b.add_argument("--download", action="store_true", help="数据不在时从 GitHub 下载 / fetch the dataset from GitHub when absent")
    b.add_argument("--convert", default=None, help="繁简转换 / OpenCC conversion of the output: t2s, s2t, ...")
    b.add_argument("--label", default=None, choices=LABEL_FIELDS,
                   help="每行前加 '标签<TAB>' 供 train --labels 使用 / write 'label<TAB>' before each line for train --labels")
    b.add_argument("--title", action="store_true", help="正文前加《标题》 / put 《title》 before the text")
    b.add_argument("--author-line", action="store_true", help="正文前加 作者： / put author： before the text")
    b.add_argument("--author", action="append", default=[], help="只要这位作者 (可多次) / keep only this author (repeatable)")
    b.add_argument("--form", action="append", default=[],
                   help="只要此诗体: 五言 七言 绝句 律诗 五言绝句 杂言 ... (可多次) / keep only this form (repeatable)")
    b.add_argument("--rhythmic", action="append", default=[], help="只要此词牌 (可多次) / keep only this 词牌 (repeatable)")
    b.add_argument("--min-len", type=int, default=1, help="最少字数 / shortest record in characters")
    b.add_argument("--max-len", type=int, default=None, help="最多字数 / longest record in characters")
    b.add_argument("--keep-duplicates", action="store_true", help="保留重复的诗 / keep records whose text repeats")
    b.set_defaults(func=cmd_corpus_build)
    i = actions.add_parser("inspect", help="语料统计 / statistics of a text file",
                           description="字数、字种、覆盖率、编码、繁简比例、段落数与建议的 --min-count / "
                                       "characters, coverage, encoding, script and a suggested --min-count")
    i.add_argument("file", nargs="+", help="文本文件或目录 / text file(s) or directories")
    i.add_argument("--encoding", default=None, help="文件编码 / file encoding (default: detect)")
    i.set_defaults(func=cmd_corpus_inspect)


def _cache_parser(sub) -> None:
    p = sub.add_parser("cache", help="编码缓存: 位置、条目、大小、清理 / the encoded-text cache: where, what, how big; clear it",
                       description="训练时准备好的文本 (编码后的 id) 存在缓存里, 同一文本再训练时直接读取; 删掉总是安全的 / "
                                   "training keeps the prepared text (its ids) here and reads it back for the same text; "
                                   "removing it is always safe")
    p.add_argument("action", nargs="?", choices=("list", "clear"), default="list",
                   help="list 列出 (默认) / clear 清除 / list (default) or clear the entries")
    p.add_argument("--cache-dir", help="缓存目录 / the cache (default $ZHRNN_CACHE, $XDG_CACHE_HOME/zhrnn or ~/.cache/zhrnn)")
    p.add_argument("--older-than", type=float, metavar="DAYS",
                   help="clear 只清除这么多天没用过的条目 / clear only entries unused for this many days")
    p.set_defaults(func=cmd_cache)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given the command that will run (argv's first word, "" for
    none), the options of train, sample and interactive only for that one: they are declared
    beside torch (TrainConfig, SampleConfig), which `zhrnn check` and `zhrnn --help` do without."""
    parser = Parser(prog="zhrnn", description="中文字符级 RNN 文本生成 / Chinese-first character-level RNN text generator")
    parser.add_argument("--version", action="version", version=f"zhrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _train_parser(sub, command in (None, "train"))
    _sample_parser(sub, command in (None, "sample"))
    _score_parser(sub)
    _interactive_parser(sub, command in (None, "interactive"))
    _corpus_parser(sub)
    _export_parser(sub)
    _cache_parser(sub)
    _check_parser(sub)
    _serve_parser(sub)
    return parser


def cmd_train(args) -> int:
    launch_options = {dest: getattr(args, dest) for dest in LAUNCH_OPTIONS.values()}
    if args.nproc_per_node is not None and not env().launched:  # start the processes; each runs the rest
        from .training.launch import launch, without_launch_options

        return launch(without_launch_options(args.argv), **launch_options)

    from tqdm import tqdm

    from .model import ModelConfig
    from .text.pipeline import CorpusConfig
    from .training.build import prepare_run
    from .training.distributed import setup
    from .training.plan import TrainConfig

    # the options given, flat as zhrnn.train takes them (plan.split_options sorts them out again)
    options = {name: value for config in (CorpusConfig, ModelConfig, TrainConfig)
               for name, value in given(args, config).items()}
    dist = setup()  # under torchrun: this process's rank; else one process alone

    def on_save(record: dict) -> None:
        val = "" if record["val_bpc"] is None else \
            f"val {record['val_text_bpc']:.3f} bits per text character ({record['val_bpc']:.3f} with markers and line breaks), "
        if "mix_val_text_bpc" in record:
            val += f"with the counts {record['mix_val_text_bpc']:.3f} (the counts alone {record['counts_val_text_bpc']:.3f}), "
        tqdm.write(f"--- step {record['step']}: {val}train loss {record['train_loss']:.3f} ---", file=sys.stderr)
        tqdm.write(record["sample"], file=sys.stdout)
        sys.stdout.flush()

    try:
        trainer = prepare_run(args.corpus, options, args.resume, dist)
        result = trainer.run(progress=dist.main and not args.quiet and sys.stderr.isatty(), on_save=on_save)
    finally:
        dist.close()
    if result.interrupted:
        log.info("interrupted at step %d; saved %s; continue with: zhrnn train %s --resume",
                 result.step, result.checkpoint, " ".join(args.corpus))
        return 130
    log.info("done: %s (step %d); sample with: zhrnn sample --model %s --start ...", result.checkpoint, result.step, result.run_dir)
    return 0


def cmd_sample(args) -> int:
    from .api import load
    from .generation.config import SampleConfig
    from .text import script

    options = given(args, SampleConfig)
    SampleConfig(**options)  # a bad option is refused before a model is loaded
    model = load(args.model, device=args.device, int8=args.int8, last=args.last, counts=args.counts)

    pending = ""  # with --convert, a clause at a time: OpenCC converts by phrase, and phrases end at punctuation

    def stream(piece: str) -> None:
        nonlocal pending
        pending += piece
        cut = max((i for i, ch in enumerate(pending) if not ch.isalnum()), default=-1) + 1 if args.convert else len(pending)
        if cut:
            sys.stdout.write(script.convert(pending[:cut], args.convert))
            sys.stdout.flush()
            pending = pending[cut:]

    streaming = args.stream and args.num == 1 and not options.get("beam", 1) > 1
    texts = model.generate_many(args.num, start=args.start, on_text=stream if streaming else None, **options)
    if streaming:
        print(script.convert(pending, args.convert))
    else:
        # samples apart by a blank line; a model of blocks (songs) already puts one between its paragraphs
        between = "\n* * *\n" if model.layout.blocks else ""
        for i, text in enumerate(texts):
            if i:
                print(between)
            print(script.convert(text, args.convert).rstrip("\n"))
    if args.model is None or model.path != Path(args.model):  # which was chosen: newest run, best.pt, shipped
        log.info("model: %s (step %s)", model.path, model.info.get("step"))  # last, so an error stays one line
    return 0


def cmd_score(args) -> int:
    from .api import load
    from .generation.score import heatmap_html, score_files
    from .interactive import shown

    model = load(args.model, device=args.device, last=args.last, counts=args.counts)
    score = score_files(model.model, model.tokenizer, args.file, model.info.get("corpus_config"), args.encoding,
                        device=model.device)
    if args.chars:
        for piece, bits in zip(score.pieces, score.bits):
            print(f"{shown(piece)}\t{bits:.3f}")
    print(f"{args.file}: {score.bpc:.3f} bits per character over {score.chars} characters"
          f"{f', {score.unknown} unknown to the model' if score.unknown else ''}")
    if args.top > 0:
        ranked = sorted(range(len(score.bits)), key=lambda i: -score.bits[i])[: args.top]
        for i in ranked:
            context = "".join(map(shown, score.pieces[max(0, i - 6) : i]))
            print(f"  {score.bits[i]:6.2f} bits  {context}[{shown(score.pieces[i])}]")
    if args.html:
        Path(args.html).write_text(heatmap_html(score, model.layout, title=f"zhrnn score: {args.file}"),
                                   encoding="utf-8")
        log.info("heat map written to %s", args.html)
    return 0


def cmd_interactive(args) -> int:
    from . import interactive
    from .api import load
    from .generation import SampleConfig, Stepper

    cfg = SampleConfig(**given(args, SampleConfig, lambda option: option.step))  # temperature, seed, the rules
    model = load(args.model, last=args.last, counts=args.counts)
    text = interactive.run(Stepper(model.model, model.tokenizer, args.start, cfg=cfg, layout=model.layout),
                           candidates=args.top, lines=args.lines)
    print(f"\n{text}")
    return 0


def cmd_corpus_build(args) -> int:
    from pathlib import Path

    from .text.poetry import BuildConfig, build

    cfg = BuildConfig(convert=args.convert, label=args.label, title=args.title, author_line=args.author_line,
                      authors=tuple(args.author), forms=tuple(args.form), rhythmics=tuple(args.rhythmic),
                      min_len=args.min_len, max_len=args.max_len, dedupe=not args.keep_duplicates)
    text, count = build(args.sources, cfg, data=args.data, fetch=args.download)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("wrote %s: %d records, %d characters%s", out, count, len(text) - count,
             "; train with: zhrnn train %s --labels" % out if args.label else "")
    return 0


def cmd_export(args) -> int:
    from . import checkpoint

    def change(state: dict) -> None:
        if args.credits:
            state["credits"] = args.credits
        if args.counts:
            from .training.counting import add_counts

            ev = add_counts(state, args.counts, args.ngram, args.cache_dir, args.counts_mb)
            log.info("held-out bits per text character: %.3f the network, %.3f the counts alone, %.3f mixed "
                     "(weights %s)", ev.text_val, ev.counts_text_val, ev.mix_text_val,
                     ", ".join(f"{w:.3f}" for w in state["counts"]["weights"].tolist()))

    path = checkpoint.export(args.model, args.output, half=not args.float32, last=args.last, change=change)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return 0


def cmd_serve(args) -> int:
    from .errors import ConfigError
    from .serve import serve

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be from 1 to 65535, not {args.port}")
    serve(args.model, host=args.host, port=args.port, device=args.device, cors=args.cors)
    return 0


def cmd_cache(args) -> int:
    import time

    from .training import cache

    root = cache.cache_root(args.cache_dir)
    found = cache.entries(root)
    if args.action == "clear":
        older = None if args.older_than is None else args.older_than * 86400
        removed, freed, busy = cache.clear(root, older)
        print(f"removed {removed} of {len(found)} entries from {cache.encoded_dir(root)} ({freed / 1e6:.1f} MB)"
              + (f"; {busy} in use by a running process kept" if busy else ""))
        return 0
    print(f"{cache.encoded_dir(root)}  ({len(found)} entries, {sum(e.size for e in found) / 1e6:.1f} MB)")
    for e in found:
        sources = ", ".join(Path(s).name for s in e.sources[:2]) + (f" (+{len(e.sources) - 2})" if len(e.sources) > 2 else "")
        tokens = f"{e.tokens:,} tokens" if e.state == "ready" else {"older": "older zhrnn", "incomplete": "incomplete"}[e.state]
        print(f"  {e.path.name}  {e.size / 1e6:8.1f} MB  {time.strftime('%Y-%m-%d %H:%M', time.localtime(e.used))}  "
              f"{tokens:>18}  {sources or '?'}")
    if found:
        print("zhrnn cache clear 清除全部 / removes them all (--older-than DAYS: only the unused)")
    return 0


def cmd_check(args) -> int:
    from .errors import CorpusError
    from .poetry import meter
    from .text.decoding import decode

    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read {args.file}: {e.strerror}") from None
    text, _ = decode(data, args.encoding, args.file)
    found = meter.poems(text)
    if not found:
        raise CorpusError(f"{args.file}: no poem in it")
    failed, refused = 0, []
    for title, poem in found:
        try:
            report = meter.check(poem, strict=args.strict, modern=args.modern)
        except ValueError as e:
            refused.append((f"{(title or poem.splitlines()[0])[:20]}…", str(e)))
            continue
        print(*([title] if title else []), meter.render(report), "", sep="\n")
        failed += not report.ok
    if len(refused) == len(found):
        raise CorpusError(f"{args.file}: {refused[0][1]}" if len(found) == 1
                          else f"{args.file}: no 绝句, 律诗 or 排律 of 五言 or 七言 in it")
    for where, why in refused:
        log.warning("%s: cannot check (无法检查): %s", where, why)
    refused = len(refused)
    if len(found) > 1:
        print(f"{len(found) - failed - refused} / {len(found)} 首合律" + (f"（{refused} 首无法检查）" if refused else ""))
    return 1 if failed or refused else 0


def cmd_corpus_inspect(args) -> int:
    from .text.inspection import inspect

    for line in inspect(args.file, args.encoding).lines():
        print(line)
    from .text.pipeline import CorpusConfig
    from .training.headstart import choose_base  # imports torch: after the statistics are out

    print(choose_base(args.file, CorpusConfig(encoding=args.encoding)).describe().replace(
        "head start:", "head start (zhrnn train --init-from auto):", 1))
    return 0


class _LogHandler(logging.StreamHandler):
    """Log lines printed above a training's progress bar, not through it (say, the learning rate
    chosen a few steps into a --time run)."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - as logging.StreamHandler does
            self.handleError(record)


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show 汉字 gets '?', not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    argv = sys.argv[1:] if argv is None else list(map(str, argv))
    try:  # a flag's own reading may refuse it in a sentence of ours (--time 1x, --cutoffs a,b)
        args = build_parser(next((a for a in argv if not a.startswith("-")), "")).parse_args(argv)
    except ZhrnnError as e:
        print(f"zhrnn: error: {e}", file=sys.stderr)
        return 1
    args.argv = argv[1:]  # after the command: what `train` hands on to the processes it launches
    # Under torchrun, rank 0 speaks for the run, and the first process of each machine reports
    # errors: the processes of one machine run the same code on the same data, so they meet the
    # same ones (a process that dies without a word is reported by the launcher).
    me = env()
    who = f"zhrnn: [rank {me.rank}] " if me.world > 1 else "zhrnn: "
    handler = _LogHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(who + "%(message)s"))
    log.addHandler(handler)  # removed again below, so main() can be called more than once in a process
    log.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    if me.rank > 0:
        log.setLevel(logging.ERROR)

    try:
        return args.func(args)
    except ZhrnnError as e:
        if me.local_rank == 0 and not isinstance(e, PeerFailed):
            print(f"{who}error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{who}interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `zhrnn sample | head`: the reader left; nothing is wrong
        sys.stderr.close()
        return 0
    except OSError as e:  # disk full, permission denied, a directory where a file was expected ...
        where = f": {e.filename}" if e.filename else ""
        print(f"zhrnn: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    finally:
        log.removeHandler(handler)
