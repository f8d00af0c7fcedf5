"""Options declared once (issue 28): a SampleConfig field's declaration is its flag in `zhrnn sample`
(and `zhrnn interactive`), its field in the server's requests and its range in both, refused in one
and the same sentence."""
import argparse
import ast
import json
from dataclasses import dataclass

import pytest

from zhrnn.cli import build_parser, main
from zhrnn.errors import ConfigError
from zhrnn.generation.config import SampleConfig
from zhrnn.options import add_options, check_options, declared, given, names, option, read_json
from zhrnn.serve.requests import SERVER_HIGH  # the fields whose range the server's Limits top

from .conftest import REPO

API = {name: opt for name, opt in declared(SampleConfig) if opt.api}


def outside(opt):
    """A value the declaration refuses (None: it declares no range)."""
    if opt.choices:
        return "nonsense"
    if opt.low is not None:
        return opt.type(opt.low - 1)
    if opt.above is not None:
        return opt.type(opt.above)
    return None


def inside(opt):
    """A value at the edge of the declared range, which must be taken."""
    if opt.choices:
        return opt.choices[-1]
    if opt.low is not None:
        return opt.low
    if opt.above is not None:
        return opt.high if opt.high is not None else opt.type(opt.above + 1)
    return None


def cli_error(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and "Traceback" not in err, err
    return lines[0].removeprefix("zhrnn: error: ")


def test_every_option_of_sample_is_in_its_help(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    shown = capsys.readouterr().out
    for name, opt in declared(SampleConfig):
        for flag in opt.flags:
            assert flag in shown, name
    assert "只从最可能的 k 个字中选 / sample from the k most likely" in shown  # the declared help, zh / en
    assert "--num-paragraphs N, --paragraphs N" in shown and "--tones [auto|平水韵|新韵|off]" in shown


def test_interactive_takes_the_options_that_hold_step_by_step(capsys, trained, monkeypatch):
    with pytest.raises(SystemExit):
        main(["interactive", "--help"])
    shown = capsys.readouterr().out
    for flag in ("--no-repeat-ngram", "--form", "--temperature", "--top-k", "--seed", "--label", "--tones"):
        assert flag in shown, flag
    assert "--beam" not in shown and "--candidates" not in shown  # a draft of many lines is not a step

    import zhrnn.interactive

    seen = {}
    monkeypatch.setattr(zhrnn.interactive, "run", lambda stepper, **kw: seen.update(cfg=stepper.cfg, **kw) or "")
    assert main(["interactive", "--model", trained.run_dir, "--form", "五言绝句", "--no-repeat-ngram", "2",
                 "--temperature", "0.5,1.0", "--seed", "3", "--top", "4"]) == 0
    cfg = seen["cfg"]
    assert (cfg.form, cfg.no_repeat_ngram, cfg.temperature, cfg.seed) == ("五言绝句", 2, (0.5, 1.0), 3)
    assert seen["candidates"] == 4
    capsys.readouterr()
    assert "--no-repeat-ngram must be at least 0, not -1" in cli_error(
        ["interactive", "--model", trained.run_dir, "--no-repeat-ngram", "-1"], capsys)


@pytest.mark.parametrize("name", [name for name, opt in API.items() if outside(opt) is not None])
def test_an_option_out_of_its_range_gets_one_sentence_from_the_cli_and_the_server(name, client, trained, capsys):
    opt = API[name]
    value = outside(opt)
    said = cli_error(["sample", "--model", trained.run_dir, opt.flags[0], value], capsys)
    r = client.post("/api/generate", json={"length": 8, name: value})
    assert r.status_code == 400, r.text
    if name in SERVER_HIGH:  # the same refusal, with the server's own top
        assert said.split(" must be ")[0] == r.json()["error"].split(" must be ")[0], (said, r.json())
    else:
        assert r.json()["error"] == said
    with pytest.raises(ConfigError, match="^" + said.replace("(", r"\(").replace(")", r"\)") + "$"):
        SampleConfig(**{name: value})  # the Python API: the same words


@pytest.mark.parametrize("name", [name for name, opt in API.items() if inside(opt) is not None])
def test_an_option_at_the_edge_of_its_range_is_taken_by_the_server(name, client):
    body = {"length": 8, name: inside(API[name])}
    with client.stream("POST", "/api/generate", json=body) as r:
        assert r.status_code == 200, r.read()
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1].get("done"), events[-1]


def test_next_reads_the_same_options(client):
    offered = client.post("/api/next", json={"text": "床前", "k": 3, "lines": 1, "seed": 0, "form": "五言绝句",
                                             "no_repeat_ngram": 2, "top_k": 5})
    assert offered.status_code == 200 and offered.json()["top"], offered.text
    refused = client.post("/api/next", json={"text": "床前", "top_p": 2})
    assert refused.status_code == 400 and refused.json()["error"] == "--top-p must be in (0, 1], not 2"
    assert "unknown field" in client.post("/api/next", json={"beam": 2}).json()["error"]


@pytest.fixture(scope="module")
def client(trained):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from zhrnn.serve import load_models
    from zhrnn.serve.app import create_app
    from zhrnn.serve.requests import Limits

    with TestClient(create_app(load_models([str(trained.run_dir)]), Limits(rows=16)),
                    base_url="http://127.0.0.1") as c:
        yield c


# --- the declarations themselves, on a dataclass of their own ---------------------------------


@dataclass
class Toy:
    """One field each, as TrainConfig's would be declared."""
    iters: int | None = option(None, type=int, flags=("--iter",), zh="步数", en="steps", low=0, resumable=True)
    hidden_size: int = option(256, flags=("--hidden-size", "--hidden_size"), en="hidden units", low=1)
    rate: float = option(0.002, flags="--rate", above=0, high=1, en="learning rate", api=True, resumable=True)
    tie: bool = option(False, flags="--tie", negatable=True, en="tie the matrices")
    split: str = option("paragraphs", flags="--split", choices=("paragraphs", "tail"), en="held-out text", api=True)
    internal: float = option(0.5)  # no flag: the library's alone

    def __post_init__(self):
        check_options(self)


def test_a_field_declares_its_flag_its_range_and_its_refusal():
    parser = argparse.ArgumentParser()
    add_options(parser, Toy)
    parse = parser.parse_args
    assert given(parse([]), Toy) == {}  # not given: the dataclass's defaults apply
    args = parse(["--iter", "5", "--hidden_size", "8", "--no-tie", "--split", "tail", "--rate", "0.01"])
    assert given(args, Toy) == {"iters": 5, "hidden_size": 8, "tie": False, "split": "tail", "rate": 0.01}
    assert Toy(**given(args, Toy)).iters == 5
    for bad, sentence in [(dict(iters=-1), "--iter (iters) must be at least 0, not -1"),
                          (dict(hidden_size=0), "--hidden-size must be at least 1, not 0"),
                          (dict(rate=0.0), "--rate must be in (0, 1], not 0"),
                          (dict(rate=float("nan")), "--rate must be in (0, 1], not nan"),
                          (dict(split="head"), "--split takes paragraphs or tail, not 'head'")]:
        with pytest.raises(ConfigError) as e:
            Toy(**bad)
        assert str(e.value) == sentence
    assert names(Toy, lambda o: o.resumable) == ["iters", "rate"]
    assert names(Toy, lambda o: o.api) == ["rate", "split"]


def test_json_values_are_read_by_type_then_by_the_same_range():
    assert read_json(Toy, "rate", 1) == 1 and read_json(Toy, "split", "tail") == "tail"
    assert read_json(SampleConfig, "temperature", [0.5, 1]) == (0.5, 1)
    for name, value, sentence in [("rate", "0.1", 'rate must be a number, not "0.1"'),
                                  ("hidden_size", 1.5, "hidden_size must be an integer, not 1.5"),
                                  ("hidden_size", True, "hidden_size must be an integer, not true"),
                                  ("tie", 1, "tie must be true or false, not 1"),
                                  ("split", 3, "split must be a string, not 3"),
                                  ("rate", 2, "--rate must be in (0, 1], not 2"),
                                  ("hidden_size", 0, "--hidden-size must be at least 1, not 0")]:
        with pytest.raises(ConfigError) as e:
            read_json(Toy, name, value)
        assert str(e.value) == sentence
    with pytest.raises(ConfigError, match=r"^--candidates must be from 1 to 8, not 9$"):
        read_json(SampleConfig, "candidates", 9, high=8)  # a server's tighter top


def test_options_is_a_bottom_layer_without_torch():
    tree = ast.parse((REPO / "zhrnn" / "options.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] == "torch"}
    assert {m for m in imported if m.startswith("errors") or m.startswith("zhrnn")} <= {"errors"}


def test_the_python_api_lists_the_declared_options():
    from zhrnn.api import TextModel

    doc = TextModel.generate_many.__doc__ or ""
    if doc:  # not under python -OO
        for name, opt in declared(SampleConfig):
            assert f"        {name}" in doc, name
        assert "top_k (--top-k): sample from the k most likely; at least 1" in doc


# --- training: TrainConfig, ModelConfig and CorpusConfig declare `zhrnn train`'s options -----------


def training_options():
    from zhrnn.model import ModelConfig
    from zhrnn.text.pipeline import CorpusConfig
    from zhrnn.training.plan import TrainConfig

    return {name: (cls, opt) for cls in (ModelConfig, TrainConfig, CorpusConfig) for name, opt in declared(cls)}


TRAINING = training_options()


def test_every_option_of_train_is_in_its_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = capsys.readouterr().out
    for name, (cls, opt) in TRAINING.items():
        for flag in opt.flags:
            assert flag in shown, name
        if opt.flags and opt.zh and opt.en:
            assert opt.zh.split()[0] in shown, name
    assert "--hidden-size HIDDEN_SIZE, --hidden_size HIDDEN_SIZE" in shown  # the char-rnn spellings too
    assert "--len SAMPLE_LEN, --len_of_sample SAMPLE_LEN" in shown and "--iter ITERS" in shown
    assert "--tie-embedding, --no-tie-embedding" in shown and "--time DURATION" in shown
    assert "--resume [PATH]" in shown and "--nproc-per-node N" in shown  # not options of a config: the command's
    for title in ("模型 / model:", "训练 / training:", "文本与词表 / text and vocabulary:"):
        assert shown.count(title) == 1, title  # three dataclasses, one group each title


@pytest.mark.parametrize("name", [name for name, (cls, opt) in TRAINING.items()
                                  if opt.flags and outside(opt) is not None])
def test_a_training_option_out_of_its_range_is_refused_in_one_sentence(name, poems, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cls, opt = TRAINING[name]
    value = outside(opt)
    said = cli_error(["train", poems, opt.flags[-1], value], capsys)  # an alias is read as the flag
    with pytest.raises(ConfigError) as refused:
        cls(**{name: value})  # zhrnn.train(...): the same words
    assert said == str(refused.value)
    assert opt.flags[0] in said
    assert not (tmp_path / "runs").exists()  # refused before a run directory is made


def test_open_and_closed_ends_of_a_range():
    from zhrnn.model import ModelConfig
    from zhrnn.training.plan import TrainConfig

    for make, sentence in [(lambda: ModelConfig(dropout=1.0), "--dropout must be in [0, 1), not 1"),
                           (lambda: TrainConfig(val_fraction=0.5), "--val-fraction must be in [0, 0.5), not 0.5"),
                           (lambda: TrainConfig(time_budget="0s"), "--time (time_budget) must be above 0, not 0"),
                           (lambda: TrainConfig(iters=0), "--iter (iters) must be at least 1, not 0")]:
        with pytest.raises(ConfigError) as refused:
            make()
        assert str(refused.value) == sentence
    assert ModelConfig(dropout=0.0).dropout == 0 and TrainConfig(val_fraction=0.0, warmup=0).warmup == 0


def test_a_flag_read_by_its_own_parser_is_refused_in_one_sentence(poems, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli_error(["train", poems, "--time", "soon"], capsys) == \
        "--time 'soon' is not a duration; write e.g. 90s, 30m, 2h or 1h30m"
    assert "--cutoffs takes a comma-separated list of token counts" in cli_error(["train", poems, "--cutoffs", "8,x"],
                                                                                  capsys)
    args = build_parser().parse_args(["train", "诗.txt", "--time", "1h30", "--cutoffs", "8,20", "--no-stateful"])
    assert (args.time_budget, args.cutoffs, args.stateful) == (5400, [8, 20], False)


def test_zhrnn_train_lists_the_declared_options():
    from zhrnn.api import train

    doc = train.__doc__ or ""
    if doc:  # not under python -OO
        for name, (cls, opt) in TRAINING.items():
            assert f"        {name}" in doc, name
        assert "hidden_size (--hidden-size): hidden units per layer (default 256); at least 1" in doc
