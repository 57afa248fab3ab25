"""The trainer: learning, checkpoints, exact resume, clear errors, DDP."""

import json
import os
import random
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
import torch

import tdlib
from tdlib import checkpoint
from tdlib.decode import Decoder
from tdlib.env import Env
from tdlib.metrics import image_reliance, mutation_problems, one_step_solve_rate
from tdlib.grammar import Grammar
from tdlib.model import build_model
from tdlib.model_config import ModelConfig
from tdlib.mutation import Edit
from tdlib.presets import preset
from tdlib.tasks import make_task
from tdlib.train import main as train_main
from tdlib.trainer import Trainer, _CsvLog, truncate_logs


def smoke_trainer(tmp_path, kind="policy", env="csg2d", resume=False, **train_changes):
    model, train, examples = preset("smoke", kind, env)
    train = replace(train, **train_changes)
    task = make_task(kind, env, model, examples, train.seed)
    return Trainer(task, train, tmp_path, resume=resume, progress=False)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["policy", "value", "ar", "repl"])
def test_smoke_training_lowers_the_loss_and_writes_a_checkpoint(tmp_path, kind):
    trainer = smoke_trainer(tmp_path, kind, steps=40, log_every=5, eval_every=40,
                            checkpoint_every=20)
    trainer.fit()
    log = np.genfromtxt(tmp_path / "train_log.csv", delimiter=",", names=True)
    assert log["step"][-1] == 40
    assert log["loss"][-3:].mean() < log["loss"][:2].mean()
    record = json.loads((tmp_path / "model.json").read_text())
    assert record["step"] == 40 and record["kind"] == kind and record["model"]["kind"] == kind
    assert record["git_commit"] and "examples" in record and "train" in record
    model, _ = checkpoint.load_model(tmp_path, kind=kind)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    assert (tmp_path / "eval_log.csv").read_text().startswith("step,")


def test_resume_continues_exactly(tmp_path):
    straight = smoke_trainer(tmp_path / "straight", steps=12, checkpoint_every=100)
    straight.fit()
    first = smoke_trainer(tmp_path / "split", steps=12, checkpoint_every=100)
    first.fit(steps=5)  # stops at 5, inside a chunk of two batches, and saves
    del first
    second = smoke_trainer(tmp_path / "split", steps=12, checkpoint_every=100, resume=True)
    assert second.step == 5
    second.fit()
    a, b = weights(straight.model), weights(second.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = straight.optimizer.state_dict()["state"], second.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


def test_resuming_keeps_the_log_rows_before_the_step_byte_for_byte(tmp_path):
    log = _CsvLog(tmp_path / "train_log.csv", enabled=True)
    for step in range(1, 5):
        log.write({"step": step, "loss": 1.0 / step, "lr": 3e-4})
    written = (tmp_path / "train_log.csv").read_bytes()
    truncate_logs(tmp_path, 4)
    assert (tmp_path / "train_log.csv").read_bytes() == written
    truncate_logs(tmp_path, 2)
    kept = (tmp_path / "train_log.csv").read_bytes()
    assert written.startswith(kept) and kept.count(b"\n") == 3


def test_bad_checkpoints_give_clear_errors(tmp_path):
    trainer = smoke_trainer(tmp_path, steps=2)
    trainer.fit()
    with pytest.raises(checkpoint.CheckpointError, match="not a value model"):
        checkpoint.load_model(tmp_path, kind="value")
    with pytest.raises(checkpoint.CheckpointError, match="not a checkpoint"):
        checkpoint.load_model(tmp_path / "nowhere")
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load_model(tmp_path)


def test_mismatched_checkpoint_is_refused(tmp_path):
    smoke_trainer(tmp_path, steps=2).fit()
    record = json.loads((tmp_path / "model.json").read_text())
    record["model"]["d_model"] = 64
    (tmp_path / "model.json").write_text(json.dumps(record))
    with pytest.raises(checkpoint.CheckpointError, match="does not fit"):
        checkpoint.load_model(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="different model"):
        smoke_trainer(tmp_path, steps=4, resume=True)


def test_resume_accepts_a_checkpoint_older_than_new_config_fields(tmp_path):
    """A record written before a ModelConfig or ExampleConfig field existed resumes (the field's
    default holds);
    a record written before length bucketing resumes with --bucket-batches 1 only."""
    smoke_trainer(tmp_path, steps=2, bucket_batches=1).fit()
    record = json.loads((tmp_path / "model.json").read_text())
    for field in ("prefix_norm", "bidirectional_prompt"):
        del record["model"][field]
    del record["examples"]["all_positions"]
    del record["train"]["bucket_batches"]
    (tmp_path / "model.json").write_text(json.dumps(record))
    with pytest.raises(checkpoint.CheckpointError, match="different bucket_batches"):
        smoke_trainer(tmp_path, steps=4, resume=True)
    trainer = smoke_trainer(tmp_path, steps=4, bucket_batches=1, resume=True)
    assert trainer.step == 2
    trainer.fit()
    assert trainer.step == 4


def test_resume_refuses_a_different_data_stream_and_a_torn_save(tmp_path):
    smoke_trainer(tmp_path, steps=2).fit()
    with pytest.raises(checkpoint.CheckpointError, match="different seed"):
        smoke_trainer(tmp_path, steps=4, seed=1, resume=True)
    with pytest.raises(checkpoint.CheckpointError, match="different batch_size"):
        smoke_trainer(tmp_path, steps=4, batch_size=4, resume=True)
    record = json.loads((tmp_path / "model.json").read_text())
    record["step"] = 7  # as if the save had stopped after the weights and before the state
    (tmp_path / "model.json").write_text(json.dumps(record))
    with pytest.raises(checkpoint.CheckpointError, match=r"cut short.*weights \(step 2\).*--init"):
        smoke_trainer(tmp_path, steps=9, resume=True)


def test_a_save_cut_before_its_record_resumes_from_the_whole_weights_and_state(tmp_path, capsys):
    straight = smoke_trainer(tmp_path / "straight", steps=4)
    straight.fit()
    import signal
    part = smoke_trainer(tmp_path / "cut", steps=4)
    original = part.task.loss

    def stop_after_two(model, batch):
        if part.step == 1:
            signal.raise_signal(signal.SIGINT)
        return original(model, batch)
    part.task.loss = stop_after_two
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    record = json.loads((tmp_path / "cut" / "model.json").read_text())
    assert record["step"] == 2
    record["step"] = 1  # the save of step 2 wrote weights and state, then died before the record
    (tmp_path / "cut" / "model.json").write_text(json.dumps(record))
    resumed = smoke_trainer(tmp_path / "cut", steps=4, resume=True)
    assert resumed.step == 2 and "cut short before model.json" in capsys.readouterr().err
    resumed.fit()
    a, b = weights(straight.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_saves_at_a_step_boundary(tmp_path, signal_name):
    import signal
    trainer = smoke_trainer(tmp_path, steps=1000, checkpoint_every=10_000)
    original = trainer.task.loss

    def loss_then_interrupt(model, batch):
        if trainer.step == 3:
            signal.raise_signal(getattr(signal, signal_name))  # arrives mid-step
        return original(model, batch)
    trainer.task.loss = loss_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert trainer.step == 4  # the interrupted step completed
    assert json.loads((tmp_path / "model.json").read_text())["step"] == 4
    resumed = smoke_trainer(tmp_path, steps=1000, resume=True)
    a, b = weights(trainer.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_save_that_fails_while_writing_leaves_the_previous_checkpoint_whole(tmp_path):
    straight = smoke_trainer(tmp_path / "straight", steps=6)
    straight.fit()
    part = smoke_trainer(tmp_path / "cut", steps=6, checkpoint_every=3)
    part.fit(steps=3)

    def fails_after_the_state_is_written(*args, **kwargs):
        assert (tmp_path / "cut" / "train_state.safetensors.tmp").exists()
        raise RuntimeError("a worker died")
    part.model.state_dict = fails_after_the_state_is_written
    with pytest.raises(RuntimeError, match="a worker died"):
        part.fit(steps=5)  # its save at step 5 fails
    resumed = smoke_trainer(tmp_path / "cut", steps=6, resume=True)
    assert resumed.step == 3
    resumed.fit()
    a, b = weights(straight.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_to_the_whole_process_group_saves_and_resumes(tmp_path):
    """A scheduler's `kill` reaches the data workers too: the run still stops at a step with
    a checkpoint that resumes, instead of failing in its save when a worker dies."""
    import signal
    import time
    out = tmp_path / "run"
    args = [sys.executable, "-m", "tdlib.cli", "train", "--env", "csg2d", "--preset", "smoke",
            "--steps", "100000", "--set", "train.workers=1", "--set", "train.checkpoint_every=5",
            "--out", str(out), "--no-progress"]
    run = subprocess.Popen(args, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "model.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # mid-run, workers busy
    os.killpg(run.pid, signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "checkpoint saved" in err and "Traceback" not in err
    stopped = json.loads((out / "model.json").read_text())["step"]
    resumed = smoke_trainer(out, steps=100000, workers=1, checkpoint_every=5, resume=True)
    assert resumed.step == stopped


def test_cli_refuses_to_overwrite_and_resumes(tmp_path, capsys):
    args = ["--env", "csg2d", "--preset", "smoke", "--steps", "3", "--out", str(tmp_path),
            "--no-progress"]
    assert train_main(args) == 0
    assert train_main(args) == 2
    assert "--resume" in capsys.readouterr().err
    longer = args[:4] + ["--steps", "5"] + args[6:] + ["--resume"]
    assert train_main(longer) == 0
    assert json.loads((tmp_path / "model.json").read_text())["step"] == 5
    rows = (tmp_path / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["3", "5"]


def test_stop_at_cuts_a_run_on_its_schedule_and_resume_finishes_it_alike(tmp_path):
    """--stop-at makes a run that a time limit cut short again: the schedule stays --steps long,
    so stopping at step 3 and resuming gives the weights of the run never stopped."""
    from safetensors.torch import load_file
    args = ["--env", "csg2d", "--preset", "smoke", "--steps", "6", "--workers", "0",
            "--no-progress", "--out"]
    assert train_main(args + [str(tmp_path / "cut"), "--stop-at", "3"]) == 0
    record = json.loads((tmp_path / "cut" / "model.json").read_text())
    assert record["step"] == 3 and record["train"]["steps"] == 6
    assert train_main(args + [str(tmp_path / "cut"), "--resume"]) == 0
    assert train_main(args + [str(tmp_path / "whole")]) == 0
    cut, whole = (load_file(tmp_path / name / "model.safetensors") for name in ("cut", "whole"))
    assert cut.keys() == whole.keys() and all(torch.equal(cut[k], whole[k]) for k in cut)


def test_ddp_with_two_cpu_processes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "29517", "-m", "tdlib.train", "--env", "csg2d", "--preset", "smoke",
         "--steps", "4", "--workers", "0", "--out", str(tmp_path), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((tmp_path / "model.json").read_text())
    assert record["step"] == 4 and record["examples_seen"] == 4 * 8 * 2


def test_the_gpu_device_check_rehearses_on_the_cpu(tmp_path):
    """tools/gpu_run.py (run once per lent GPU, with no chance to fix it there): preflight, a
    flat-rate phase, an exact resume that anneals to the end, the measurement, the packed run."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "tools/gpu_run.py", "--smoke", "--runs", "cpu_refined", "--minutes", "0.1",
         "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env=env,
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    run = summary["runs"]["cpu_refined"]
    assert "error" not in run and run["final_step"] > run["phase1_step"] > 0
    record = json.loads((tmp_path / "work" / "cpu_refined" / "model.json").read_text())
    assert [piece["from_step"] for piece in record["history"]] == [0, run["phase1_step"]]
    assert record["train"]["restart_step"] == run["phase1_step"]
    for name in ("cpu_refined", "shipped_cpu_policy"):
        assert 0 <= summary["runs"][name]["metrics"]["solved_1_mutation"] <= 1
    import tarfile
    with tarfile.open(tmp_path / "out" / "cpu_refined.tar.gz") as tar:
        names = set(tar.getnames())
    assert "cpu_refined/model.safetensors" in names
    assert not any("train_state" in n for n in names)


BARS_GRAMMAR = 'start: s\ns: "(" h " " h " " h ")"\nh: "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7"\n'


class BarsRenderer:
    """Three bars of heights 0-7: a language small enough to learn in seconds."""

    channels = 1

    def __init__(self, grammar):
        self.height = {a.index: int(a.literal) for a in grammar.rules["h"].alternatives}

    def render(self, node, size):
        image = np.zeros((size, size, 1), np.float32)
        width = size // 3
        for i, child in enumerate(node.children):
            h = self.height[child.alt.index] * size // 8
            if h:
                image[size - h:, i * width:(i + 1) * width - 2] = 1.0
        return image

    def is_solved(self, image, target):
        return bool(np.array_equal(image > 0.5, target > 0.5))


def test_a_briefly_trained_policy_beats_chance_at_one_step_repair(tmp_path):
    grammar = Grammar(BARS_GRAMMAR, primitives=["s"], name="bars3")
    tdlib.register_env("bars3", lambda: Env("bars3", grammar, BarsRenderer(grammar), 32))
    env = tdlib.make_env("bars3")
    model, train, examples = preset("smoke", "policy", "bars3")
    model.d_model, model.n_layers = 64, 2  # one 32-wide layer is too small to read the bars
    examples = replace(examples, min_primitives=1, max_primitives=1, max_noise_steps=1)
    train = replace(train, steps=600, batch_size=16, lr=3e-3, warmup_steps=20,
                    checkpoint_every=1000, eval_every=1000)
    task = make_task("policy", "bars3", model, examples, 0)
    problems = mutation_problems(env, 128, 1, seed=0, min_primitives=1, max_primitives=1)

    def solve_rate(network):
        return one_step_solve_rate(Decoder(network.eval(), task.tokenizer), env, problems,
                                   model.image_size)
    trainer = Trainer(task, train, tmp_path, progress=False)
    chance = solve_rate(trainer.model)
    trainer.fit()
    trained = solve_rate(trainer.model)
    # About half the problems replace the whole program and need several edits; the rest
    # change one bar, which a trained policy fixes in one step.
    assert trained >= max(0.35, chance + 0.3), (chance, trained)
    # It reads the images: without them (or with another problem's target) it does worse.
    reliance = image_reliance(task, trainer.model, 128).set_index("images")
    assert reliance.loc["given", "loss"] < reliance.loc["blank", "loss"] - 0.1, reliance
    assert reliance.loc["given", "loss"] < reliance.loc["other target", "loss"] - 0.1, reliance


@pytest.mark.parametrize("kind,env", [("policy", "csg2d"), ("policy", "tinysvg"),
                                      ("ar", "csg2d"), ("repl", "csg2d")])
def test_masked_loss_examples_allow_what_the_grammar_allows(kind, env):
    """Each output token's allowed set holds the token itself; <POS k> may name exactly the
    node starts of the current program; in CSG2D a shape's first number allows exactly the 16
    digits, a circle's closing parenthesis is forced, and at the end only <EOS> is left."""
    model, _, examples = preset("smoke", kind, env)
    task = make_task(kind, env, model, replace(examples, masked_loss=True), 0)
    tok = task.tokenizer
    digits = {tok.stoi[d] for d in "0123456789ABCDEF"} if env == "csg2d" else set()
    for i in range(40):
        item = task.example(i)
        output = item["tokens"][item["loss_from"] + 1:]
        allowed = item["allowed"]
        assert allowed.shape == (len(output), tok.vocab_size)
        assert all(allowed[j, t] for j, t in enumerate(output))
        assert set(np.flatnonzero(allowed[-1])) == {tdlib.tokens.EOS}
        if kind == "policy":
            current = tok.decode_program(item["tokens"][:item["loss_from"]])
            starts = {loc.token_start for loc in tdlib.SyntaxTree(current, task.env.grammar).nodes}
            assert {t - tok.pos_offset for t in np.flatnonzero(allowed[0])} == starts
        if env == "csg2d" and kind != "repl":
            for j, t in enumerate(output):
                previous = output[j - 1] if j else None
                if previous in (tok.stoi["Circle"], tok.stoi["Quad"]):
                    assert set(np.flatnonzero(allowed[j])) == digits, tok.itos[t]
                if t == tok.stoi[")"] and j and output[j - 1] in digits:
                    assert set(np.flatnonzero(allowed[j])) == {t}
    batch = task.collate([task.example(i) for i in range(4)])
    wanted = batch["targets"][batch["targets"] != -100]
    assert batch["allowed"].shape[0] == len(wanted)
    assert batch["allowed"][torch.arange(len(wanted)), wanted].all()  # rows line up with targets
    assert (batch["allowed"].sum(1) < tok.vocab_size).all()


def test_masked_loss_and_pointer_train(tmp_path):
    """A smoke policy with the masked loss and the content pointer trains, checkpoints and
    reloads (the pointer's weights included)."""
    model, train, examples = preset("smoke", "policy", "csg2d")
    model = replace(model, pointer_positions=True, bidirectional_prompt=True)
    task = make_task("policy", "csg2d", model, replace(examples, masked_loss=True), 0)
    trainer = Trainer(task, replace(train, steps=30), tmp_path, progress=False)
    trainer.fit()
    log = np.genfromtxt(tmp_path / "train_log.csv", delimiter=",", names=True)
    assert np.isfinite(log["loss"]).all() and log["loss"][-2:].mean() < log["loss"][:2].mean()
    loaded, _ = checkpoint.load_model(tmp_path)
    assert torch.equal(loaded.pointer_key.weight, trainer.model.pointer_key.weight)


def test_the_paper_preset_is_the_papers_architecture_and_trains_at_its_sizes():
    """None of the cpu recipe's switches (they are improvements beyond the paper); one step at the
    paper's sizes gives a finite loss and gradients in the encoder."""
    from tdlib.presets import POLICY_STRUCTURE
    model_config, _, examples = preset("paper", "policy", "csg2d")
    default = ModelConfig()
    assert not examples.masked_loss
    assert all(getattr(model_config, k) == getattr(default, k) for k in POLICY_STRUCTURE)
    assert (model_config.image_size, model_config.d_model, model_config.n_layers) == (128, 256, 8)
    task = make_task("policy", "csg2d", model_config, examples, 0)
    torch.manual_seed(0)
    model = build_model(model_config)
    batch = task.collate([task.example(i) for i in range(2)])
    loss, _ = task.loss(model, batch)
    loss.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and grads and sum(g.abs().sum() for g in grads) > 0


def test_a_time_limit_stops_at_a_step_and_resume_adds_up_the_time(tmp_path):
    first = smoke_trainer(tmp_path, steps=10_000, checkpoint_every=10_000, eval_every=2)
    began = __import__("time").perf_counter()
    first.fit(max_seconds=0.5)
    wall = __import__("time").perf_counter() - began
    assert 0 < first.step < 10_000 and first.seconds >= 0.5
    assert wall > first.seconds + 0.05  # the evaluations every 2 steps are not training time
    record = json.loads((tmp_path / "model.json").read_text())
    assert record["step"] == first.step and record["train_seconds"] == pytest.approx(first.seconds, abs=0.1)
    evals = np.genfromtxt(tmp_path / "eval_log.csv", delimiter=",", names=True)
    assert int(np.atleast_1d(evals["step"])[-1]) == first.step  # evaluated when time was up
    second = smoke_trainer(tmp_path, steps=10_000, checkpoint_every=10_000, eval_every=2,
                           resume=True)
    assert second.step == first.step and second.seconds == pytest.approx(first.seconds, abs=0.1)
    resumed_at = second.seconds
    second.fit(max_seconds=0.3)
    assert second.step > first.step and second.seconds >= resumed_at + 0.3


def _differing_subtrees(a, b, path=()):
    """Brute force: the topmost paths where two trees stop expanding alike."""
    if a.alt is not b.alt:
        return [path]
    out = []
    for i, (ca, cb) in enumerate(zip(a.children, b.children)):
        if ca.text != cb.text:
            out += _differing_subtrees(ca, cb, path + (i,))
    return out


def test_all_positions_credits_every_differing_subtree_and_never_raises_the_loss():
    """With ``all_positions`` the first token's target set is exactly the token starts of the
    topmost subtrees where the program and its target differ (the sampled edit's among them).
    The loss is -log of the set's probability, so it equals the one-target loss on examples with
    one correct position and is lower on the rest."""
    model, _, examples = preset("smoke", "policy", "csg2d")
    config = replace(examples, masked_loss=True, all_positions=True)
    task = make_task("policy", "csg2d", model, config, 0)
    single = make_task("policy", "csg2d", model, replace(config, all_positions=False), 0)
    tok = task.tokenizer
    r = np.random.default_rng(0)
    several = 0
    for i in range(60):
        ex = task.maker.example(random.Random(int(r.integers(2 ** 31))))
        valid = task.next_edit_positions(ex)
        expected = {tok.edit_target(ex.current, Edit(p, ex.current.locate(p).node,
                                                    ex.current.locate(p).node))[0]
                    for p in _differing_subtrees(ex.current.root, ex.target.root)}
        assert {t - tok.pos_offset for t in np.flatnonzero(valid)} == expected
        assert valid[tok.pos_token(tok.edit_target(ex.current, ex.edit)[0])]
        several += len(expected) > 1
    assert several >= 10  # the case that matters is common
    torch.manual_seed(0)
    net = tdlib.model.build_model(model)
    items = [task.example(i) for i in range(48)]
    one = [i for i, it in enumerate(items) if it["first_valid"].sum() == 1]
    many = [i for i, it in enumerate(items) if it["first_valid"].sum() > 1]
    assert one and many
    for chosen, relation in ((one, "equal"), (many, "lower")):
        batch = task.collate([items[i] for i in chosen])
        plain = single.collate([{k: v for k, v in items[i].items() if k != "first_valid"}
                                for i in chosen])
        with torch.no_grad():
            credited, _ = task.loss(net, batch)
            reference, _ = single.loss(net, plain)
        if relation == "equal":
            assert credited.item() == pytest.approx(reference.item(), rel=1e-5)
        else:
            assert credited.item() < reference.item() - 1e-4



def test_overrides_set_fields_of_each_config_and_name_what_is_wrong():
    from tdlib.presets import apply_overrides, preset
    model, train, examples = apply_overrides(
        *preset("smoke"), ["d_model=48", "encoder=nf_micro", "examples.rho=0.5",
                           "train.lr=0.003", "pointer_positions=True"])
    assert (model.d_model, model.encoder, model.pointer_positions) == (48, "nf_micro", True)
    assert (examples.rho, train.lr) == (0.5, 0.003)
    for bad, says in [("d_modle=4", "no field 'd_modle'"), ("nothing", "not key=value"),
                      ("optim.lr=1", "unknown section"), ("examples.rho=2", "rho must be")]:
        with pytest.raises(ValueError, match=says):
            apply_overrides(*preset("smoke"), [bad])


def test_a_restart_anneals_from_its_step_to_the_floor(tmp_path):
    """restart_step starts the cosine at that step (lr there, min_lr_ratio * lr at the end);
    0 keeps the warm-up-then-cosine schedule."""
    plain = smoke_trainer(tmp_path / "a", steps=100)
    restarted = smoke_trainer(tmp_path / "b", steps=100, restart_step=60, lr=2e-3)
    cfg = plain.config
    assert plain.lr_at(cfg.warmup_steps) == pytest.approx(cfg.lr)
    assert plain.lr_at(100) == pytest.approx(cfg.lr * cfg.min_lr_ratio)
    assert restarted.lr_at(60) == pytest.approx(2e-3)
    assert restarted.lr_at(80) == pytest.approx(2e-3 * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) / 2))
    assert restarted.lr_at(100) == pytest.approx(2e-3 * cfg.min_lr_ratio)
    assert restarted.lr_at(30) == pytest.approx(2e-3)  # before the restart: flat at lr


def test_the_record_keeps_every_piece_of_a_resumed_run(tmp_path):
    """A resume with a new schedule adds a piece to the record's history; continuing with the
    same settings extends the last piece."""
    smoke_trainer(tmp_path, steps=2).fit()
    first = json.loads((tmp_path / "model.json").read_text())["history"]
    assert [h["from_step"] for h in first] == [0]
    smoke_trainer(tmp_path, steps=4, resume=True, restart_step=2, lr=5e-4).fit(steps=3)
    smoke_trainer(tmp_path, steps=4, resume=True, restart_step=2, lr=5e-4).fit()
    history = json.loads((tmp_path / "model.json").read_text())["history"]
    assert [h["from_step"] for h in history] == [0, 2]
    assert [h["train"]["lr"] for h in history] == [first[0]["train"]["lr"], 5e-4]


def test_a_run_can_start_from_another_checkpoints_weights(tmp_path):
    source = smoke_trainer(tmp_path / "source", steps=6, checkpoint_every=100)
    source.fit()
    tuned = smoke_trainer(tmp_path / "tuned", "policy", "csg2d-sketch", steps=4,
                          checkpoint_every=100, init_from=str(tmp_path / "source"))
    fresh = smoke_trainer(tmp_path / "fresh", "policy", "csg2d-sketch", steps=4,
                          checkpoint_every=100)
    for key, value in source.model.state_dict().items():
        assert torch.equal(tuned.model.state_dict()[key], value)
    assert any(not torch.equal(fresh.model.state_dict()[k], v)
               for k, v in source.model.state_dict().items())
    tuned.fit()
    record = json.loads((tmp_path / "tuned" / "model.json").read_text())
    assert record["train"]["init_from"] == str(tmp_path / "source")
    # the record keeps what the starting weights had seen
    source_record = json.loads((tmp_path / "source" / "model.json").read_text())
    started = record["initialised_from"]
    assert (started["folder"], started["kind"], started["env"], started["step"],
            started["examples_seen"], started["history"]) == (
        str(tmp_path / "source"), "policy", "csg2d", 6, source_record["examples_seen"],
        source_record["history"])
    # fine-tuned on another language: a new network, not the source trained further
    assert checkpoint.trained_further_from(record) == {}
    further = smoke_trainer(tmp_path / "further", steps=2, checkpoint_every=100,
                            init_from=str(tmp_path / "source"))
    further.fit()
    further_record = json.loads((tmp_path / "further" / "model.json").read_text())
    assert checkpoint.trained_further_from(further_record)["step"] == 6
    resumed = smoke_trainer(tmp_path / "tuned", "policy", "csg2d-sketch", steps=4,
                            checkpoint_every=100, init_from=str(tmp_path / "source"), resume=True)
    for key, value in tuned.model.state_dict().items():  # resume loads its own weights
        assert torch.equal(resumed.model.state_dict()[key], value)
    resumed.save()  # and keeps where they came from
    assert json.loads((tmp_path / "tuned" / "model.json").read_text())[
        "initialised_from"] == started
    with pytest.raises(checkpoint.CheckpointError, match="does not fit"):
        smoke_trainer(tmp_path / "other", "policy", "tinysvg", steps=2,
                      init_from=str(tmp_path / "source"))


def _value_from(tmp_path, source, **model_changes):
    model, train, examples = preset("smoke", "value", "csg2d")
    model = replace(model, **model_changes)
    train = replace(train, steps=2, checkpoint_every=100, init_from=str(source))
    return Trainer(make_task("value", "csg2d", model, examples, train.seed), train, tmp_path,
                   progress=False)


def test_a_value_network_can_start_from_a_policys_encoder_and_blocks(tmp_path):
    source = smoke_trainer(tmp_path / "source", steps=3, checkpoint_every=100)
    source.fit()
    policy = source.model.state_dict()
    fresh = _value_from(tmp_path / "fresh", tmp_path / "source",
                        value_layers=source.task.model_config.n_layers)
    value = fresh.model.state_dict()
    loaded = {k for k, v in value.items() if k in policy and torch.equal(v, policy[k])}
    # what the two networks share, by name and shape, and nothing else
    assert loaded == {k for k in value if k.startswith(("encoder.", "blocks."))}
    assert any(k.startswith("blocks.") for k in loaded)
    fresh.fit()  # and it trains from there
    with pytest.raises(checkpoint.CheckpointError, match="its encoder differs"):
        _value_from(tmp_path / "other", tmp_path / "source", encoder="nf_micro")


@given(st.lists(st.tuples(st.floats(-5, 5), st.integers(1, 5)), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_the_pairwise_rank_loss_averages_over_every_ordered_pair(rows):
    """Brute force over all pairs (i, j) with distance_i < distance_j."""
    import math
    from tdlib.tasks import pairwise_rank_loss
    predicted = torch.tensor([p for p, _ in rows], dtype=torch.float64)
    distance = torch.tensor([float(d) for _, d in rows], dtype=torch.float64)
    terms = [math.log1p(math.exp(p_i - p_j)) for p_i, d_i in rows for p_j, d_j in rows
             if d_i < d_j]
    got = pairwise_rank_loss(predicted, distance).item()
    assert got == pytest.approx(sum(terms) / len(terms) if terms else 0.0, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bins", [0, 8])
def test_the_value_loss_adds_the_rank_term_when_weighted(bins):
    """The weighted rank term is added to the loss (regression or distance bins) and reported; a
    negative weight is refused."""
    model, train, examples = preset("smoke", "value", "csg2d")
    ranked = replace(model, value_rank_weight=0.5, value_bins=bins)
    task = make_task("value", "csg2d", ranked, examples, train.seed)
    network = build_model(ranked)
    batch = task.collate([task.example(i) for i in range(16)])
    loss, metrics = task.loss(network, batch)
    plain = replace(ranked, value_rank_weight=0.0)
    plain_task = make_task("value", "csg2d", plain, examples, train.seed)
    base, base_metrics = plain_task.loss(network, batch)
    assert "rank" in metrics and "rank" not in base_metrics
    assert metrics["rank"] > 0
    assert loss.item() == pytest.approx(base.item() + 0.5 * metrics["rank"], rel=1e-5)
    with pytest.raises(ValueError, match="value_rank_weight"):
        replace(plain, value_rank_weight=-1.0)


def test_a_fresh_run_starts_its_logs_anew_and_a_resume_drops_torn_log_rows(tmp_path):
    (tmp_path / "train_log.csv").write_text("step,loss\n5,9.9\n10,9.8\n")  # a run that died
    smoke_trainer(tmp_path, steps=4).fit()
    steps = [r.split(",")[0] for r in (tmp_path / "train_log.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps, key=int) and "10" not in steps
    with open(tmp_path / "train_log.csv", "a") as f:
        f.write("garbage,row\n9,1.0")  # a torn last line
    smoke_trainer(tmp_path, steps=6, resume=True).fit()
    rows = (tmp_path / "train_log.csv").read_text().splitlines()[1:]
    assert all(r.split(",")[0].isdigit() for r in rows)


def test_value_networks_are_compared_on_both_distances_whatever_they_learnt():
    from tdlib.metrics import value_spearman, value_spearmans
    env = tdlib.make_env("csg2d")
    model_config, _, examples = preset("smoke", "value", "csg2d")
    torch.manual_seed(0)
    model = build_model(model_config).eval()
    size = model_config.image_size
    visible = replace(examples, value_target="visible")
    found = value_spearmans(model, env, 32, size, 1, visible)
    assert found == {"spearman": value_spearman(model, env, 32, size, 1, examples),
                     "spearman_visible": value_spearman(model, env, 32, size, 1, visible)}
    assert value_spearmans(model, env, 32, size, 1, examples) == found
