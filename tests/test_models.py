"""Networks and constrained decoding on untrained models: shapes, cache, validity."""

import random

import numpy as np
import pytest
import torch

import tdlib
from tdlib.decode import Decoder
from tdlib.model import EditModel, ModelConfig, ValueModel, build_model
from tdlib.presets import preset
from tdlib.tokens import EDIT, PAD, Tokenizer


def small_config(env_name="csg2d", kind="policy", **changes):
    model, _, _ = preset("smoke", kind, env_name)
    for key, value in changes.items():
        setattr(model, key, value)
    return model


def images(env, programs, size):
    return torch.from_numpy(np.stack([env.render(p, size) for p in programs])).permute(0, 3, 1, 2)


@pytest.mark.parametrize("env_name", ["csg2d", "tinysvg"])
def test_shapes(env_name):
    torch.manual_seed(0)
    env = tdlib.make_env(env_name)
    config = small_config(env_name)
    model = EditModel(config)
    cur = torch.rand(3, env.channels, config.image_size, config.image_size)
    tokens = torch.randint(0, config.vocab_size, (3, 11))
    assert model(cur, cur, tokens).shape == (3, 11, config.vocab_size)
    select = torch.zeros(3, 11, dtype=torch.bool)
    select[0, 4:] = True
    select[2, 1] = True
    assert model(cur, cur, tokens, select).shape == (8, config.vocab_size)
    value = ValueModel(small_config(env_name, "value"))
    assert value(cur, cur).shape == (3,)


def test_configs_refuse_nonsense():
    with pytest.raises(ValueError, match="kind"):
        ModelConfig(kind="diffusion")
    with pytest.raises(ValueError, match="multiple"):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        EditModel(ModelConfig())
    with pytest.raises(ValueError, match="preset"):
        preset("laptop")
    with pytest.raises(ValueError, match="REPL"):
        preset("smoke", "repl", "tinysvg")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_cached_decoding_matches_the_full_forward_pass(bidirectional):
    """A right-padded prefill + cached steps (each row at its own position) give the logits of
    one uncached pass per sequence, with causal or prefix-LM attention."""
    torch.manual_seed(0)
    config = small_config(n_layers=2, bidirectional_prompt=bidirectional)
    model = build_model(config).eval()
    p = config.prefix_tokens
    contexts = [[5, 6, 7], [8, 9, 10, 11, 12, 13]]
    follow = [[14, 15], [16, 17]]
    cur = torch.rand(2, 1, config.image_size, config.image_size)
    tgt = torch.rand(2, 1, config.image_size, config.image_size)
    lengths = torch.tensor([len(c) + 1 for c in contexts])
    tokens = torch.full((2, int(lengths.max())), PAD)
    for i, ctx in enumerate(contexts):
        tokens[i, :len(ctx) + 1] = torch.tensor(ctx + [EDIT])
    with torch.no_grad():
        cache = model.new_cache(2, p + int(lengths.max()) + 2, "cpu", torch.float32)
        prefix = model.encoder(cur, tgt)
        cached = [model.prefill(prefix, tokens, lengths, cache)]
        at = p + lengths
        for j in range(2):
            step = torch.tensor([follow[0][j], follow[1][j]])
            cached.append(model.step(step, at, cache))
            at = at + 1
        for i, ctx in enumerate(contexts):
            seq = torch.tensor([ctx + [EDIT] + follow[i]])
            full = model(cur[i:i + 1], tgt[i:i + 1], seq, prompt_lengths=lengths[i:i + 1])[0]
            for j in range(3):
                torch.testing.assert_close(cached[j][i], full[len(ctx) + j], atol=2e-4, rtol=1e-4)
            if bidirectional:  # the prompt really is seen both ways: causal logits differ
                model.config.bidirectional_prompt = False
                causal = model(cur[i:i + 1], tgt[i:i + 1], seq)[0]
                model.config.bidirectional_prompt = True
                assert (causal[len(ctx)] - full[len(ctx)]).abs().max() > 1e-3


def test_decoding_does_not_depend_on_the_batch():
    """Sorting, group prefill and dropping finished rows change nothing: a batch decodes each
    problem exactly as it decodes alone."""
    torch.manual_seed(4)
    env = tdlib.make_env("csg2d")
    config = small_config()
    tok = Tokenizer(env.grammar, config.max_positions)
    decoder = Decoder(EditModel(config).eval(), tok)
    r = random.Random(5)
    trees = [env.sample(r, 1, 8) for _ in range(40)]
    cur = images(env, trees, config.image_size)
    tgt = images(env, [env.sample(r, 1, 8) for _ in trees], config.image_size)
    together = decoder.edits(trees, cur, tgt)
    for i in range(0, 40, 7):
        alone = decoder.edits(trees[i:i + 1], cur[i:i + 1], tgt[i:i + 1])[0]
        assert alone[1].tokens == together[i][1].tokens
        assert alone[1].logprob == pytest.approx(together[i][1].logprob, abs=1e-3)


@pytest.mark.parametrize("env_name,n_edits", [("csg2d", 5000), ("tinysvg", 1000)])
def test_every_decoded_edit_of_an_untrained_policy_is_valid(env_name, n_edits):
    torch.manual_seed(1)
    env = tdlib.make_env(env_name)
    config = small_config(env_name)
    tok = Tokenizer(env.grammar, config.max_positions)
    decoder = Decoder(EditModel(config).eval(), tok)
    r = random.Random(2)
    generator = torch.Generator().manual_seed(3)
    decoded = 0
    while decoded < n_edits:
        trees = [env.sample(r, 1, 8) for _ in range(64)]
        cur = images(env, trees, config.image_size)
        tgt = images(env, [env.sample(r, 1, 8) for _ in trees], config.image_size)
        for tree, (edit, d) in zip(trees, decoder.edits(trees, cur, tgt, temperature=1.0,
                                                        generator=generator)):
            new = edit.apply(tree)
            assert env.parse(new.text) == new  # the edited program is in the language
            assert edit.old.rule is edit.new.rule
            assert len(d.tokens) <= config.max_edit_tokens + 1
            assert d.logprob <= d.first_logprob + 1e-6 <= 1e-6
        decoded += len(trees)


def test_every_decoded_program_of_an_untrained_ar_model_is_valid():
    torch.manual_seed(4)
    env = tdlib.make_env("csg2d")
    config = small_config(kind="ar")
    decoder = Decoder(EditModel(config).eval(), Tokenizer(env.grammar, config.max_positions))
    r = random.Random(5)
    generator = torch.Generator().manual_seed(6)
    for _ in range(1000 // 100):
        targets = [env.sample(r, 1, 8) for _ in range(100)]
        for node, d in decoder.programs(images(env, targets, config.image_size), temperature=1.0,
                                        generator=generator):
            assert env.parse(node.text).root == node
            assert len(d.tokens) <= config.context - config.prefix_tokens - 2


def test_greedy_decoding_is_deterministic_and_sampling_follows_the_seed():
    torch.manual_seed(7)
    env = tdlib.make_env("csg2d")
    config = small_config()
    decoder = Decoder(EditModel(config).eval(), Tokenizer(env.grammar, config.max_positions))
    trees = [env.sample(s, 2, 6) for s in range(16)]
    cur = images(env, trees, config.image_size)

    def run(**kw):
        return [d.tokens for _, d in decoder.edits(trees, cur, cur, **kw)]
    assert run() == run()
    a = run(temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = run(temperature=1.0, generator=torch.Generator().manual_seed(1))
    c = run(temperature=1.0, generator=torch.Generator().manual_seed(2))
    assert a == b and a != c
