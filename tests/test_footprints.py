"""Footprints: the pixels each part of a program draws and decides, and the policy that reads
them."""

import dataclasses
import random

import numpy as np
import pytest
import torch

import tdlib
from tdlib import checkpoint
from tdlib.footprints import NONE, batch_footprints, program_footprints
from tdlib.model import EditModel
from tdlib.presets import preset
from tdlib.tasks import make_task

SIZE = 64


@pytest.fixture(scope="module")
def env():
    return tdlib.make_env("csg2d")


def programs(env, n, seed=0):
    r = random.Random(seed)
    return [env.sample(r, 1, 8) for _ in range(n)]


def test_drawn_is_the_part_rendered_alone(env):
    for tree in programs(env, 30):
        parts = env.footprints(tree, SIZE)
        assert [path for path, _, _ in parts] == [
            loc.path for loc in tree.nodes if loc.rule is env.grammar.rules["s"]]
        for path, drawn, _ in parts:
            np.testing.assert_array_equal(drawn, env.render(tree.at(path), SIZE)[:, :, 0])


def test_visible_is_what_removing_the_part_changes(env):
    """Brute force: replace the part by an empty shape and see which pixels change.  Coverages
    multiplied as independent events differ from the exact render only on anti-aliased edges."""
    empty = env.parse("(Circle 0 0 0)").root
    mismatched = total = 0
    for tree in programs(env, 60, seed=1):
        whole = env.render(tree, SIZE)[:, :, 0]
        for path, drawn, visible in env.footprints(tree, SIZE)[1:]:
            changed = np.abs(whole - env.render(tree.replace(path, empty), SIZE)[:, :, 0])
            assert np.all(visible <= drawn + 1e-6)
            wrong = np.count_nonzero((visible > 0.5) != (changed > 0.5))
            assert wrong <= 0.1 * np.count_nonzero(changed > 0.5) + 4 * SIZE / 16
            mismatched += wrong
            total += np.count_nonzero(changed > 0.5)
    assert mismatched < 0.01 * total


def test_a_hidden_primitive_has_no_visible_pixels(env):
    tree = env.parse("(+ (Circle 6 8 8) (Circle 2 8 8))")
    (_, whole, _), (_, big, big_visible), (_, small, small_visible) = env.footprints(tree, SIZE)
    assert small.sum() > 100 and small_visible.max() == 0
    assert big_visible.sum() == pytest.approx(big.sum() - small.sum(), rel=0.02)
    cut = env.parse("(- (Circle 6 8 8) (Circle 2 8 8))")
    _, _, (_, hole, hole_visible) = env.footprints(cut, SIZE)
    assert hole_visible.sum() == pytest.approx(hole.sum(), rel=0.02)  # it decides its pixels


def test_every_token_belongs_to_its_innermost_part(env):
    shape = env.grammar.rules["s"]
    for tree in programs(env, 30, seed=2):
        masks, token_part = program_footprints(env, tree, SIZE)
        paths = [path for path, _, _ in env.footprints(tree, SIZE)]
        assert masks.shape == (len(paths), 2, SIZE, SIZE) and masks.dtype == np.uint8
        assert len(token_part) == len(tree.tokens)
        for k in range(len(token_part)):
            spanning = [loc for loc in tree.nodes if loc.rule is shape
                        and loc.token_start <= k < loc.token_end]
            innermost = max(spanning, key=lambda loc: loc.depth)
            assert paths[token_part[k]] == innermost.path


def test_batches_pad_parts_and_tokens(env):
    trees = programs(env, 3, seed=3)
    items = [program_footprints(env, t, SIZE) for t in trees]
    width = max(len(t.tokens) for t in trees) + 5
    masks, index = batch_footprints(items, width)
    assert masks.shape == (3, max(len(m) for m, _ in items), 2, SIZE, SIZE)
    for row, (m, parts) in enumerate(items):
        assert torch.equal(masks[row, :len(m)], torch.from_numpy(m))
        assert masks[row, len(m):].sum() == 0
        assert index[row, :len(parts)].tolist() == parts.tolist()
        assert (index[row, len(parts):] == NONE).all()


class _DrawsOnly:
    """A renderer with only what a language needs: no footprints."""

    def __init__(self, renderer):
        self.channels, self.render, self.is_solved = (renderer.channels, renderer.render,
                                                      renderer.is_solved)


def test_languages_without_footprints_say_so(monkeypatch):
    from tdlib import env as languages
    csg = tdlib.make_env("csg2d")
    monkeypatch.setitem(languages._FACTORIES, "plain-csg",
                        lambda: languages.Env("plain-csg", csg.grammar, _DrawsOnly(csg.renderer)))
    plain = tdlib.make_env("plain-csg")
    assert not plain.has_footprints
    with pytest.raises(NotImplementedError, match="plain-csg"):
        plain.footprints("(Circle 1 1 1)", SIZE)
    model, _, examples = preset("smoke", "policy", "plain-csg")
    assert not preset("cpu", "policy", "plain-csg")[0].footprints
    with pytest.raises(ValueError, match="footprints"):
        make_task("policy", "plain-csg", dataclasses.replace(model, footprints=True), examples)


def _inked_alone(env, tree, keep):
    """``tree`` with every primitive but the one at ``keep`` uncoloured and that one in black
    (where it has a fill or a border): the same layout, one shape's ink."""
    colour = {a.literal: a.leaf for a in env.grammar.rules["color"].alternatives}
    for loc in tree.nodes:
        if loc.node.alt.name not in ("rect", "ellipse"):
            continue
        for slot in (2, 3):  # fill, border colour
            had = loc.node.children[slot].alt.literal != "none"
            ink = "black" if loc.path == keep and had else "none"
            tree = tree.replace(loc.path + (slot,), colour[ink])
    return tree


@pytest.mark.parametrize("name", ["tinysvg", "rainbow"])
def test_layout_footprints_draw_each_shape_where_the_layout_puts_it(name):
    """TinySVG and Rainbow, brute force through the grammar: a primitive's drawn pixels are the
    render of the program with only that shape inked; a part's are the union of its shapes'; the
    root's visible pixels are all the ink on the canvas, and any other part's are what changes when
    the grammar removes it (its Arrange replaced by the other part, a Move's content with the
    Move)."""
    env = tdlib.make_env(name)
    r = random.Random(4)
    for _ in range(20):
        tree = env.sample(r, 1, 6)
        parts = env.footprints(tree, SIZE)
        assert [path for path, _, _ in parts] == [
            loc.path for loc in tree.nodes if loc.rule is env.grammar.rules["s"]]
        whole = env.render(tree, SIZE)
        np.testing.assert_allclose(parts[0][2], np.abs(whole - 1).max(-1), atol=1e-6)
        shapes = {}
        for path, drawn, visible in parts:
            if path:
                cut = path
                while cut and tree.at(cut[:-1]).alt.name == "move":
                    cut = cut[:-1]
                if cut:  # a part of an Arrange: the Arrange becomes its other part
                    other = tree.at(cut[:-1]).children[3 - cut[-1]]
                    rest = env.render(tree.replace(cut[:-1], other), SIZE)
                else:  # nothing but Moves above: nothing is left
                    rest = np.ones_like(whole)
                np.testing.assert_allclose(visible, np.abs(whole - rest).max(-1), atol=1e-6)
            assert 0 <= drawn.min() and drawn.max() <= 1 and 0 <= visible.min() <= visible.max() <= 1
            if tree.at(path).alt.name in ("rect", "ellipse"):
                alone = env.render(_inked_alone(env, tree, path), SIZE)
                np.testing.assert_allclose(drawn, 1 - alone[:, :, 0], atol=1e-6)
                shapes[path] = drawn
        for path, drawn, _ in parts:
            inside = [d for p, d in shapes.items() if p[:len(path)] == path]
            np.testing.assert_allclose(drawn, np.maximum.reduce(inside), atol=1e-6)


def test_a_size_in_arrange_shows_in_the_footprints_of_the_shapes_it_moves():
    svg = tdlib.make_env("tinysvg")
    tree = svg.parse("(Arrange h (Rectangle 8 8 red none 0) (Ellipse 6 6 blue none 0) 0)")
    _, (_, left, left_visible), (_, right, right_visible) = svg.footprints(tree, SIZE)
    assert left.sum() > 50 and right.sum() > 50 and (left * right).sum() < 1
    assert right[:, SIZE // 2:].sum() > 0.95 * right.sum()  # laid out right of the centre
    # removing either shape lays the other out anew, in the middle: its pixels change too
    assert (left_visible * right).sum() > 0.5 * right.sum()
    assert (right_visible * left).sum() > 0.25 * left.sum()  # the rectangle shifts by 3 units


def test_a_policy_gains_footprints_without_changing_what_it_computes(tmp_path):
    """The footprint projection starts at zero: a policy started from one without footprints
    computes the same loss, and a checkpoint without them loads with only them fresh."""
    model_config, _, examples = preset("smoke", "policy", "csg2d")
    plain_task = make_task("policy", "csg2d", model_config, examples)
    task = make_task("policy", "csg2d", dataclasses.replace(model_config, footprints=True),
                     examples)
    torch.manual_seed(0)
    plain = EditModel(plain_task.model_config).eval()
    checkpoint.save(tmp_path / "plain", plain, {"kind": "policy", "env": "csg2d"})
    model = EditModel(task.model_config).eval()
    fresh = checkpoint.load_weights(model, tmp_path / "plain", new=("footprint_",))
    assert fresh == ["footprint_project.bias", "footprint_project.weight"]
    with pytest.raises(checkpoint.CheckpointError, match="missing"):
        checkpoint.load_weights(EditModel(task.model_config), tmp_path / "plain")
    batch = task.collate([task.example(i) for i in range(6)])
    assert batch["footprint_masks"].shape[:2] == (6, max(
        len(np.unique(row[row >= 0])) for row in batch["footprint_tokens"].numpy()))
    plain_batch = {k: v for k, v in batch.items() if not k.startswith("footprint")}
    with torch.no_grad():
        same, _ = task.loss(model, batch)
        reference, _ = plain_task.loss(plain, plain_batch)
        torch.nn.init.normal_(model.footprint_project.weight, std=0.3)
        changed, _ = task.loss(model, batch)
    assert same.item() == pytest.approx(reference.item(), abs=1e-6)
    assert changed.item() != pytest.approx(reference.item(), abs=1e-3)
    with pytest.raises(ValueError, match="footprints"):
        task.loss(model, plain_batch)


@pytest.mark.parametrize("env_name", ["csg2d", "csg2d-sketch", "tinysvg", "rainbow"])
def test_the_cpu_policy_reads_footprints_wherever_the_renderer_gives_them(env_name):
    has = tdlib.make_env(env_name).has_footprints
    assert preset("cpu", "policy", env_name)[0].footprints == has
    # the current image is what footprints are pooled from; the other kinds and presets go without
    assert not preset("cpu", "policy", env_name, ablations=("no_current_image",))[0].footprints
    assert not preset("cpu", "value", env_name)[0].footprints
    assert not preset("smoke", "policy", env_name)[0].footprints
