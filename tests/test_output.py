"""The output layer: full softmax or adaptive softmax, and which one a model gets."""
import json

import pytest
import torch

import zhrnn
from zhrnn import checkpoint
from zhrnn.errors import ConfigError
from zhrnn.training.finetune import extend_tokenizer, grow_state
from zhrnn.model import CharRNN, ModelConfig
from zhrnn.text.tokenizer import CharTokenizer
from zhrnn.training import fit as train

from .conftest import OPTIONS, POEMS, TEXT, TINY, assert_same_curve, cli_options, curve, torchrun, zhrnn_train


def adaptive_model(vocab_size=60, cutoffs=(10, 30)) -> CharRNN:
    torch.manual_seed(0)
    return CharRNN(ModelConfig(vocab_size=vocab_size, hidden_size=32, embedding_size=16, dropout=0.0,
                               output_layer="adaptive", cutoffs=list(cutoffs)))


def test_adaptive_output_learns_the_tiny_corpus_and_reproduces_each_line(poems, tmp_path):
    # POEMS has about 45 tokens: a head of 6, then clusters of 14 and the rest
    result = train(poems, progress=False, out_dir=str(tmp_path / "run"), **TINY, output_layer="adaptive", cutoffs=[6, 20])
    assert result.losses[-1] < 0.05, result.losses[-10:]
    model = zhrnn.load(result.run_dir)
    assert isinstance(model.model.head, torch.nn.AdaptiveLogSoftmaxWithLoss)
    assert checkpoint.load(result.checkpoint)["model_config"]["cutoffs"] == [6, 20]
    for line in POEMS.splitlines():
        assert model.generate(start=line[0], length=len(line), greedy=True) == line


def test_adaptive_log_probabilities_are_a_distribution_that_the_training_loss_agrees_with():
    model = adaptive_model().eval()
    x = torch.randint(0, 60, (3, 7))
    y = torch.randint(0, 60, (3, 7))
    with torch.no_grad():
        log_probs, _ = model(x)  # (3, 7, 60)
        nats, _ = model(x, targets=y)  # (21,)
    assert log_probs.shape == (3, 7, 60)
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(3, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(nats, -log_probs.flatten(0, 1).gather(1, y.flatten()[:, None])[:, 0])


def test_full_output_loss_is_the_cross_entropy_of_its_logits():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=40, hidden_size=16, embedding_size=8, output_layer="full")).eval()
    x, y = torch.randint(0, 40, (2, 5)), torch.randint(0, 40, (2, 5))
    logits, _ = model(x)
    nats, _ = model(x, targets=y)
    torch.testing.assert_close(nats, torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none"))


@pytest.mark.parametrize("vocab, reserved, output, cutoffs", [
    (80, 0, "full", []),  # Shakespeare: a full softmax is cheap
    (1999, 0, "full", []),
    (2000, 0, "adaptive", [1000]),
    (8729, 0, "adaptive", [1000, 3000]),  # 全唐诗
    (8729, 700, "adaptive", [1700, 3700]),  # 700 author labels sit before the frequent characters
    (60000, 0, "adaptive", [1000, 3000, 10000, 30000]),  # a jieba word vocabulary
])
def test_auto_output_follows_the_vocabulary(vocab, reserved, output, cutoffs):
    resolved = ModelConfig(vocab_size=vocab).resolved(reserved=reserved)
    assert (resolved.output_layer, resolved.cutoffs) == (output, cutoffs)
    assert resolved.resolved() == resolved  # concrete: resolving again changes nothing


def test_cutoffs_ask_for_an_adaptive_output_and_a_small_one_gets_a_head_of_a_quarter():
    assert ModelConfig(vocab_size=80, cutoffs=[20]).resolved().output_layer == "adaptive"  # auto, below 2,000
    assert ModelConfig(vocab_size=60, output_layer="adaptive").resolved().cutoffs == [15]
    assert ModelConfig(vocab_size=60, output_layer="adaptive").resolved(reserved=20).cutoffs == [30]
    with pytest.raises(ConfigError, match="--cutoffs are for --output-layer adaptive"):
        ModelConfig(vocab_size=60, output_layer="full", cutoffs=[20]).resolved()


@pytest.mark.parametrize("cutoffs", [[30, 10], [0, 10], [10, 60], [10, 10]])
def test_bad_cutoffs_are_refused(cutoffs):
    with pytest.raises(ConfigError, match="cutoffs"):
        ModelConfig(vocab_size=60, output_layer="adaptive", cutoffs=cutoffs).resolved()
    with pytest.raises(ConfigError, match="--output-layer"):
        ModelConfig(output_layer="sparse")


def test_a_checkpoint_from_before_the_output_option_loads_with_its_full_softmax(tmp_path):
    """Checkpoints written before adaptive outputs existed have no output field; with 2,000+
    tokens 'auto' would now mean adaptive, so a missing field must mean full."""
    tokenizer = CharTokenizer(["<unk>", "^"] + [chr(0x4E00 + i) for i in range(2498)])
    old = CharRNN(ModelConfig(vocab_size=len(tokenizer), hidden_size=16, embedding_size=8, output_layer="full")).eval()
    config = {k: v for k, v in vars(old.config).items() if k not in ("output_layer", "cutoffs")}
    checkpoint.save({"model": old.state_dict(), "model_config": config, "tokenizer": tokenizer.to_dict()},
                    tmp_path / "old.pt")
    loaded = zhrnn.load(tmp_path / "old.pt")
    assert loaded.model.config.output_layer == "full"
    x = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(loaded.model(x)[0], old(x)[0].detach(), rtol=0, atol=0)


def test_a_checkpoint_from_before_the_field_was_named_output_layer_keeps_its_output():
    saved = {"vocab_size": 60, "hidden_size": 16, "embedding_size": 8, "output": "adaptive", "cutoffs": [15]}
    config = ModelConfig.from_dict(saved)
    assert (config.output_layer, config.cutoffs) == ("adaptive", [15]) and "output" not in vars(config)
    assert ModelConfig.from_dict({**saved, "output": "full", "cutoffs": []}).output_layer == "full"


def test_fine_tuning_grows_the_last_cluster_of_an_adaptive_output():
    base = CharTokenizer.build("春眠不觉晓处处闻啼鸟夜来风雨声花落知多少")
    grown = extend_tokenizer(base, CharTokenizer.build("春江水暖鸭先知"), {})
    config = dict(hidden_size=16, embedding_size=8, output_layer="adaptive", cutoffs=[4, 10])
    old = CharRNN(ModelConfig(vocab_size=len(base), **config))
    new = CharRNN(ModelConfig(vocab_size=len(grown), **config))
    state = grow_state(old.state_dict(), new)
    new.load_state_dict(state)
    n, last = len(base), "head.tail.1.1.weight"  # the cluster of tokens 10..V
    assert state[last].shape[0] == len(grown) - 10
    assert torch.equal(state[last][: n - 10], old.state_dict()[last])
    for name, value in old.state_dict().items():
        if name not in (last, "embedding.weight"):
            assert torch.equal(state[name], value), name
    # the head and the first cluster are untouched: their tokens keep their probabilities exactly;
    # the last cluster keeps its share, now spread over the new tokens too
    x = torch.tensor([[1, 2, 3]])
    old.eval(), new.eval()
    with torch.no_grad():
        before, after = old(x)[0].exp(), new(x)[0].exp()  # (1, 3, V)
    torch.testing.assert_close(after[..., :10], before[..., :10])
    torch.testing.assert_close(after[..., 10:].sum(-1), before[..., 10:].sum(-1))


def test_two_processes_train_an_adaptive_output_whose_rare_cluster_some_steps_miss(tmp_path):
    """A cluster without targets in a process's rows gets no gradient there; DDP must still
    average it with the other process's, and the run follow one process."""
    text = "鲲鹏\n" + TEXT  # two characters seen once: the last cluster, absent from most steps' rows
    (tmp_path / "诗.txt").write_text(text, encoding="utf-8")
    vocab = len(CharTokenizer.build("^" + text))
    options = cli_options({**OPTIONS, "iters": 40}) + ["--output-layer", "adaptive", "--cutoffs", f"8,{vocab - 2}"]
    one = zhrnn_train("诗.txt", *options, "--out-dir", "one", "-q", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = torchrun("诗.txt", *options, "--out-dir", "two", "-q", cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-2000:]
    assert json.loads((tmp_path / "two" / "log.jsonl").read_text(encoding="utf-8").splitlines()[-1])["step"] == 40
    assert_same_curve(curve(tmp_path / "one"), curve(tmp_path / "two"))


def test_adaptive_output_runs_under_autocast_and_gives_float32_losses():
    """Under bf16/fp16 autocast (CUDA training) the adaptive module would mix dtypes; it runs in float32."""
    model = adaptive_model()
    x = torch.randint(0, 60, (2, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nats, _ = model(x, targets=x)
        log_probs, _ = model(x)
    assert nats.dtype == log_probs.dtype == torch.float32
    nats.mean().backward()
    assert model.rnn.weight_hh_l0.grad is not None
