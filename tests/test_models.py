"""Networks and constrained decoding on untrained models: shapes, cache, validity."""

import dataclasses
import random

import numpy as np
import pytest
import torch

import tdlib
from tdlib.decode import Decoder
from tdlib.footprints import batch_footprints, program_footprints
from tdlib.images import program_images
from tdlib.model import EditModel, ValueModel, build_model
from tdlib.model_config import ModelConfig
from tdlib.presets import preset
from tdlib.tokens import EDIT, EOS, PAD, Tokenizer
from tdlib.transformer import DecodeCache


def small_config(env_name="csg2d", kind="policy", **changes):
    model, _, _ = preset("smoke", kind, env_name)
    for key, value in changes.items():
        setattr(model, key, value)
    return model


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


def test_spatial_value_network_sees_where_the_images_differ():
    """With value_layers the value network keeps a grid of image tokens: its output depends on
    where a difference lies, and a row alone gives what it gives inside a batch (no attention
    across rows)."""
    torch.manual_seed(0)
    config = small_config("csg2d", "value", value_layers=2, prefix_tokens=4)
    value = ValueModel(config).eval()
    s = config.image_size
    blank = torch.zeros(1, 1, s, s)
    left, right = blank.clone(), blank.clone()
    left[..., :, : s // 4] = 1
    right[..., :, -s // 4:] = 1
    batch = torch.cat([left, right, blank])
    with torch.no_grad():
        out = value(batch, torch.zeros_like(batch))
        alone = value(right, blank)
    assert out.shape == (3,)
    assert abs(out[0] - out[1]) > 1e-4
    assert torch.allclose(out[1], alone[0], atol=1e-5)


def test_distributional_value_reports_the_mean_of_its_bins_and_learns_a_distance():
    """With value_bins the value network's output is the mean of a softmax over distances
    0 .. bins-1, and a few steps of its cross-entropy loss fit a batch of known distances."""
    from tdlib.tasks import make_task
    from tdlib.presets import preset
    torch.manual_seed(0)
    model_config, _, examples = preset("smoke", "value")
    model_config = dataclasses.replace(model_config, value_bins=6)
    task = make_task("value", "csg2d", model_config, examples, 0)
    value = ValueModel(model_config)
    batch = task.collate([task.example(i) for i in range(8)])
    logits = value(batch["current"], batch["target"], logits=True)
    assert logits.shape == (8, 6)
    expected = torch.softmax(logits, -1) @ torch.arange(6.0)
    assert torch.allclose(value(batch["current"], batch["target"]), expected, atol=1e-5)
    optimizer = torch.optim.Adam(value.parameters(), 3e-3)
    first = task.loss(value, batch)[0].item()
    for _ in range(60):
        loss, metrics = task.loss(value, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
    clamped = batch["distance"].clamp(max=5)
    predicted = value(batch["current"], batch["target"])
    assert (predicted - clamped).abs().mean() < 0.5


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
    with pytest.raises(ValueError, match="use_current_image"):
        ModelConfig(footprints=True, use_current_image=False)


def random_prompts(config, contexts):
    """Random images and the right-padded prompts (context + ``<EDIT>``) of ``contexts``."""
    n = len(contexts)
    cur = torch.rand(n, 1, config.image_size, config.image_size)
    tgt = torch.rand(n, 1, config.image_size, config.image_size)
    lengths = torch.tensor([len(c) + 1 for c in contexts])
    tokens = torch.full((n, int(lengths.max())), PAD)
    for i, ctx in enumerate(contexts):
        tokens[i, :len(ctx) + 1] = torch.tensor(ctx + [EDIT])
    return cur, tgt, tokens, lengths


@pytest.mark.parametrize("bidirectional,pointer", [(False, False), (True, False), (True, True)])
def test_cached_decoding_matches_the_full_forward_pass(bidirectional, pointer):
    """A right-padded prefill + cached steps (each row at its own position) give the logits of
    one uncached pass per sequence, with causal or prefix-LM attention, and with the content
    pointer for <POS k> (it only scores the first output token, which prefill gives)."""
    torch.manual_seed(0)
    config = small_config(n_layers=2, bidirectional_prompt=bidirectional,
                          pointer_positions=pointer)
    model = build_model(config).eval()
    p = config.prefix_tokens
    contexts = [[5, 6, 7], [8, 9, 10, 11, 12, 13]]
    follow = [[14, 15], [16, 17]]
    cur, tgt, tokens, lengths = random_prompts(config, contexts)
    with torch.no_grad():
        cache = model.new_cache(2, p + int(lengths.max()), "cpu", torch.float32)
        prefix = model.encoder(cur, tgt)
        cached = [model.prefill(prefix, tokens, lengths, cache)]
        cache = DecodeCache(cache, p + lengths, 1, 2)
        at = torch.zeros(2, dtype=torch.long)
        for j in range(2):
            step = torch.tensor([follow[0][j], follow[1][j]])
            cached.append(model.step(step, at, cache))
            at = at + 1
        for i, ctx in enumerate(contexts):
            seq = torch.tensor([ctx + [EDIT] + follow[i]])
            full = model(cur[i:i + 1], tgt[i:i + 1], seq, prompt_lengths=lengths[i:i + 1])[0]
            torch.testing.assert_close(cached[0][i], full[len(ctx)], atol=2e-4, rtol=1e-4)
            words = slice(0, config.pos_offset) if pointer else slice(None)
            for j in (1, 2):
                torch.testing.assert_close(cached[j][i][words], full[len(ctx) + j][words],
                                           atol=2e-4, rtol=1e-4)
            if pointer:  # only context tokens can be pointed at
                pos = full[len(ctx), config.pos_offset:]
                assert torch.isfinite(pos[:len(ctx)]).all() and torch.isinf(pos[len(ctx):]).all()
            if bidirectional:  # the prompt really is seen both ways: causal logits differ
                model.config.bidirectional_prompt = False
                causal = model(cur[i:i + 1], tgt[i:i + 1], seq, prompt_lengths=lengths[i:i + 1])[0]
                model.config.bidirectional_prompt = True
                assert (causal[len(ctx)][words] - full[len(ctx)][words]).abs().max() > 1e-3


@pytest.mark.parametrize("bidirectional,group,kept", [
    (False, 1, None), (True, 1, [1]), (True, 3, None), (True, 3, [3, 4, 5]), (True, 3, [0, 2, 4])])
def test_extend_feeds_ragged_runs_like_the_full_forward_pass(bidirectional, group, kept):
    """Rows fed different numbers of tokens in one call (padding written to the spare slot)
    give each row's logits after its last real token, and later calls see only real keys; with
    ``group`` rows per prompt, each row continues its own prompt and sees only its own tokens.
    Rows ``kept`` alone go on after the first call (whole prompts, or some rows of a prompt)."""
    torch.manual_seed(1)
    config = small_config(n_layers=2, bidirectional_prompt=bidirectional)
    model = build_model(config).eval()
    p = config.prefix_tokens
    contexts = [[5, 6, 7, 8], [9, 10]]
    pool = [[[14, 15, 16], [17]], [[18], [19, 20]], [[21, 22], [23, 24, 25]], [[26], [27]],
            [[28, 29], [30]], [[31], [32, 33]]]
    feeds = pool[:len(contexts) * group]  # two calls per row, ragged; row r continues r // group
    cur, tgt, tokens, lengths = random_prompts(config, contexts)
    rows = len(feeds)
    with torch.no_grad():
        cache = model.new_cache(2, p + 5, "cpu", torch.float32)
        model.prefill(model.encoder(cur, tgt), tokens, lengths, cache)
        cache = DecodeCache(cache, p + lengths, group, 5)  # row 2 is fed 5 tokens
        at = torch.zeros(rows, dtype=torch.long)
        outputs, live = [], list(range(rows))
        for call in range(2):
            if call == 1 and kept is not None:
                cache.keep_rows(torch.tensor(kept))
                at, live = at[kept], kept
            n = torch.tensor([len(feeds[r][call]) for r in live])
            fed = torch.full((len(live), int(n.max())), PAD)
            for j, r in enumerate(live):
                fed[j, :n[j]] = torch.tensor(feeds[r][call])
            out = model.extend(fed, n, at, cache, int((at + n).max()))
            outputs.append(dict(zip(live, out)))
            at = at + n
        for r in live:
            i = r // group
            ctx = contexts[i]
            seq = ctx + [EDIT] + feeds[r][0] + feeds[r][1]
            full = model(cur[i:i + 1], tgt[i:i + 1], torch.tensor([seq]),
                         prompt_lengths=lengths[i:i + 1])[0]
            ends = [len(ctx) + len(feeds[r][0]), len(ctx) + len(feeds[r][0]) + len(feeds[r][1])]
            for call, end in enumerate(ends):
                torch.testing.assert_close(outputs[call][r], full[end], atol=2e-4, rtol=1e-4)


def naive_greedy(model, tok, con, context, start, cur, tgt, longest, parts=None):
    """Reference decoder: one uncached forward pass per token, the grammar's mask applied every
    time.  ``start`` is an automaton state, or ``{k: state after <POS k>}`` for an edit;
    ``parts``: the program's footprints, for a model that reads them."""
    out, logprob = [], 0.0
    state = None if isinstance(start, dict) else start
    for t in range(longest + 1):
        seq = context + [EDIT] + out
        fed = None if parts is None else batch_footprints([parts], len(seq))
        logits = model(cur, tgt, torch.tensor([seq]),
                       prompt_lengths=torch.tensor([len(context) + 1]), footprints=fed)[0, -1]
        allowed = torch.zeros(tok.vocab_size, dtype=torch.bool)
        if state is None:
            allowed[[tok.pos_offset + k for k, s in start.items()
                     if con.shortest(s) <= longest]] = True
        else:
            allowed[torch.from_numpy(con.allowed(np.array([state]),
                                                 np.array([longest + 1 - t]))[0])] = True
        logp = torch.log_softmax(logits.masked_fill(~allowed, float("-inf")), -1)
        token = int(logp.argmax())
        logprob += float(logp[token])
        if token == EOS:
            break
        state = start[token - tok.pos_offset] if state is None else con.step(state, token)
        out.append(token)
    return out, logprob


@pytest.mark.parametrize("kind,pointer,footprints", [
    ("policy", False, False), ("policy", True, False), ("policy", True, True), ("ar", False, False)])
def test_greedy_decoding_matches_a_naive_token_by_token_decoder(kind, pointer, footprints):
    """Cache, groups, dropped rows and tokens the grammar forces (fed without a network call)
    change nothing: the same edits (programs) and log-probabilities as a full pass per token
    (with the content pointer too: prefill scores <POS k> as the full pass does; with
    footprints: the decoder gives each prompt's tokens their parts as training does)."""
    torch.manual_seed(2)
    env = tdlib.make_env("csg2d")
    config = small_config(kind=kind, pointer_positions=pointer, bidirectional_prompt=pointer,
                          footprints=footprints)
    tok = Tokenizer(env.grammar, config.max_positions)
    model = EditModel(config).eval()
    if footprints:  # trained footprints, not the zero start that changes nothing
        torch.nn.init.normal_(model.footprint_project.weight, std=0.3)
    decoder = Decoder(model, tok)
    con = decoder.constraint
    r = random.Random(3)
    trees = [env.sample(r, 1, 6) for _ in range(12)]
    cur = program_images(env, trees, config.image_size)
    tgt = program_images(env, [env.sample(r, 1, 6) for _ in trees], config.image_size)
    if kind == "policy":
        decoded = [d for _, d in decoder.edits(trees, cur, tgt)]
        longest = config.max_edit_tokens
    else:
        decoded = [d for _, d in decoder.programs(tgt)]
        longest = config.context - config.prefix_tokens - 2
        cur = torch.zeros_like(cur)
    forced = 0
    with torch.no_grad():
        for i, tree in enumerate(trees):
            if kind == "policy":
                context = tok.encode_program(tree)
                start = {k: con.start(loc.node.rule) for k, loc in tok.node_starts(tree).items()}
            else:
                context, start = [], con.start()
            parts = program_footprints(env, tree, config.image_size) if footprints else None
            tokens, logprob = naive_greedy(model, tok, con, context, start, cur[i:i + 1],
                                           tgt[i:i + 1], longest, parts)
            assert decoded[i].tokens == tokens
            assert decoded[i].logprob == pytest.approx(logprob, abs=1e-4)
            forced += tokens.count(tok.stoi[")"])
    if kind == "ar":  # whole programs: the comparison covers tokens fed without a network call
        assert forced > 0


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
    cur = program_images(env, trees, config.image_size)
    tgt = program_images(env, [env.sample(r, 1, 8) for _ in trees], config.image_size)
    together = decoder.edits(trees, cur, tgt)
    for i in range(0, 40, 7):
        alone = decoder.edits(trees[i:i + 1], cur[i:i + 1], tgt[i:i + 1])[0]
        assert alone[1].tokens == together[i][1].tokens
        assert alone[1].logprob == pytest.approx(together[i][1].logprob, abs=1e-3)


@pytest.mark.parametrize("kind", ["policy", "ar"])
def test_samples_share_a_prefill_and_decode_like_repeated_problems(kind):
    """``samples=k`` (one encoding and prefill per problem) gives what decoding each problem k
    times in one batch gives, sampled draws included (same generator, same order)."""
    torch.manual_seed(8)
    env = tdlib.make_env("csg2d")
    config = small_config(kind=kind)
    decoder = Decoder(EditModel(config).eval(), Tokenizer(env.grammar, config.max_positions))
    r = random.Random(9)
    trees = [env.sample(r, 1, 6) for _ in range(10)]
    cur = program_images(env, trees, config.image_size)
    tgt = program_images(env, [env.sample(r, 1, 6) for _ in trees], config.image_size)
    k = 4
    repeat = torch.arange(len(trees)).repeat_interleave(k)
    for temperature in (0.0, 1.0):
        def run(samples):
            g = torch.Generator().manual_seed(10)
            if kind == "ar":
                if samples > 1:
                    return decoder.programs(tgt, temperature, g, samples=samples)
                return decoder.programs(tgt[repeat], temperature, g)
            if samples > 1:
                return decoder.edits(trees, cur, tgt, temperature, g, samples=samples)
            return decoder.edits([trees[i] for i in repeat], cur[repeat], tgt[repeat],
                                 temperature, g)
        shared, repeated = run(k), run(1)
        assert len(shared) == len(trees) * k
        for (a, da), (b, db) in zip(shared, repeated):
            assert da.tokens == db.tokens and a == b
            assert da.logprob == pytest.approx(db.logprob, abs=1e-4)
        if temperature > 0:  # the samples of a problem are draws, not copies
            assert any(len({tuple(shared[i * k + j][1].tokens) for j in range(k)}) > 1
                       for i in range(len(trees)))


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
        cur = program_images(env, trees, config.image_size)
        tgt = program_images(env, [env.sample(r, 1, 8) for _ in trees], config.image_size)
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
        for node, d in decoder.programs(program_images(env, targets, config.image_size), temperature=1.0,
                                        generator=generator):
            assert env.parse(node.text).root == node
            assert len(d.tokens) <= config.context - config.prefix_tokens - 2


def test_greedy_decoding_is_deterministic_and_sampling_follows_the_seed():
    torch.manual_seed(7)
    env = tdlib.make_env("csg2d")
    config = small_config()
    decoder = Decoder(EditModel(config).eval(), Tokenizer(env.grammar, config.max_positions))
    trees = [env.sample(s, 2, 6) for s in range(16)]
    cur = program_images(env, trees, config.image_size)

    def run(**kw):
        return [d.tokens for _, d in decoder.edits(trees, cur, cur, **kw)]
    assert run() == run()
    a = run(temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = run(temperature=1.0, generator=torch.Generator().manual_seed(1))
    c = run(temperature=1.0, generator=torch.Generator().manual_seed(2))
    assert a == b and a != c


def test_decoding_reads_rendered_arrays_and_refuses_another_size():
    """``env.render`` arrays decode as the same batch as a tensor; images of another size than
    the model was trained at are refused in one line instead of decoding other edits."""
    torch.manual_seed(3)
    env = tdlib.make_env("csg2d")
    config = small_config()
    decoder = Decoder(EditModel(config).eval(), Tokenizer(env.grammar, config.max_positions))
    r = random.Random(6)
    trees = [env.sample(r, 1, 6) for _ in range(4)]
    goals = [env.sample(r, 1, 6) for _ in trees]
    size = config.image_size
    as_tensors = decoder.edits(trees, program_images(env, trees, size), program_images(env, goals, size))
    as_arrays = decoder.edits(trees, [env.render(t, size) for t in trees],
                              [env.render(g, size) for g in goals])
    assert [e for e, _ in as_arrays] == [e for e, _ in as_tensors]
    with pytest.raises(ValueError, match=f"must be {size} x {size} with 1 channel"):
        decoder.edits(trees, program_images(env, trees, 2 * size), program_images(env, goals, 2 * size))
    with pytest.raises(ValueError, match="one of each per program"):
        decoder.edits(trees, program_images(env, trees, size), program_images(env, goals[:2], size))
