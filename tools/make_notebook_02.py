"""Writes notebooks/02_mutations.ipynb (source, no outputs)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md(r"""# 02 · Small mutations: the noising process

Tree diffusion adds "noise" to a program by applying **small mutations** to its syntax tree (§3.1,
Appendix A). A mutation picks a *candidate* node, one with at most σ_small = 2 primitives beneath it, and
replaces it by a fresh random expression of the **same production rule**, also with at most σ_small
primitives and never equal to the original. The result is a valid program by construction.

This notebook covers
1. **Figure 2**: a noising chain z₀ → z₁ → … on CSG2D, with images and Appendix A style edit listings,
2. **Figure 8**: which nodes of a syntax tree are candidates,
3. the **length effect** of one mutation (Appendix A: shorter 30.8 %, equal 49.2 %, longer 20.0 %) under
   the three node-choice schemes tdlib offers,
4. mutations of TinySVG programs."""),
code(r"""# Parameters (papermill injects new values below this cell).
preset = "cpu"   # "smoke" (seconds, for tests), "cpu" (the shipped results), "paper"
seed = 0""", metadata={"tags": ["parameters"]}),
code(r"""import random

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

import tdlib
from tdlib.mutation import Mutator, SCHEMES, SIGMA_SMALL
from tdlib.plotting import savefig, save_table, image_grid, results_dir

n_mutations = {"smoke": 300, "cpu": 10_000, "paper": 10_000}[preset]
csg = tdlib.make_env("csg2d")
svg = tdlib.make_env("tinysvg")
print("sigma_small =", SIGMA_SMALL, "| schemes:", SCHEMES, "| mutations per scheme:", n_mutations)"""),
md(r"""## 1. Figure 2: a noising chain

`Mutator.chain(tree, steps, rng)` applies `steps` successive mutations and returns the programs
z₀ … z_s together with the edits between them. Each `Edit` knows the path of the replaced node, the old
and the new subtree; `edit.describe(tree)` prints it the way Appendix A does, a caret line under the
replaced span followed by the replacement.

We start from the program of Appendix A and use the default `"count"` scheme (§3 below). To make the
figure informative we take the first seeded chain in which every mutation visibly changes the image
(many mutations, e.g. a changed angle of a square or a radius hidden under another shape, do not)."""),
code(r"""start = csg.parse("(+ (+ (+ (Circle A D 4) (Quad F E 4 6 K)) (Quad 3 E C 2 M)) (Circle C 2 1))")
mutator = csg.mutator("count")
r = random.Random(seed)
steps = 4
for attempt in range(200):
    trees, edits = mutator.chain(start, steps, r)
    images = [csg.render(t) for t in trees]
    if all(np.any(np.abs(a - b) > 0.5) for a, b in zip(images, images[1:])):
        break
print(f"chain found after {attempt + 1} attempt(s)\n")
listing = []
for tree, edit in zip(trees, edits):
    listing += [tree.text, edit.describe(tree)]
listing.append(trees[-1].text)
print("\n".join(listing))"""),
code(r"""fig = plt.figure(figsize=(13, 4.5))
grid = fig.add_gridspec(2, steps + 1, height_ratios=[2.4, 1.5], hspace=0.08, wspace=0.2)
for i, (tree, image) in enumerate(zip(trees, images)):
    ax = fig.add_subplot(grid[0, i])
    ax.imshow(csg.display(image), interpolation="nearest")
    ax.set_xticks([]); ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("0.7")
    ax.set_title(f"$z_{i}$" + ("  (target)" if i == 0 else ""), fontsize=12)
    if i < steps:  # an arrow between panels
        ax.annotate("", xy=(1.18, 0.5), xytext=(1.02, 0.5), xycoords="axes fraction",
                    arrowprops=dict(arrowstyle="-|>", lw=2, color="tab:red", mutation_scale=18))
text_ax = fig.add_subplot(grid[1, :])
text_ax.axis("off")
lines = []
for i, (tree, edit) in enumerate(zip(trees, edits)):
    lines += [f"z{i}  {tree.text}", f"    {edit.describe(tree)}"]
lines.append(f"z{steps}  {trees[-1].text}")
text_ax.text(0.0, 0.95, "\n".join(lines), family="monospace", fontsize=9, va="top", ha="left",
             transform=text_ax.transAxes)
fig.suptitle("Noising: successive small mutations of the Appendix A program (CSG2D, σ_small = 2)",
             y=1.0, fontsize=12)
savefig(fig, "fig02_noising_chain");"""),
md(r"""## 2. Figure 8: candidate nodes

`Mutator.candidates(root)` lists the (path, node) pairs a mutation may replace: every node with σ ≤ 2
whose production rule has something else to offer. Below, the tree of a small CSG2D program: candidates
green, the rest grey. Internal nodes are labelled with their alternative and σ, leaves with their literal;
the small numbers are preorder indices, as in the paper's figure. Only the nodes with σ > 2 (the upper
`binop`s) are out of reach; each candidate can only be replaced within its rule: an `op` by `+`/`-`, a
`number` by a digit, an `angle` by an angle letter, an `s` node by any shape or a union/difference of two."""),
code(r"""def tidy_layout(tree):
    # x: leaves left to right, parents centred over their children; y: depth.
    pos, next_leaf = {}, [0]
    def place(located_by_path, path):
        node = located_by_path[path].node
        if node.is_leaf:
            pos[path] = (next_leaf[0], -len(path))
            next_leaf[0] += 1
        else:
            xs = [place(located_by_path, path + (i,)) for i in range(len(node.children))]
            pos[path] = (sum(xs) / len(xs), -len(path))
        return pos[path][0]
    place({n.path: n for n in tree.nodes}, ())
    return pos

figure8 = csg.parse("(+ (+ (+ (Circle A D 4) (Quad F E 4 6 K)) (Quad 3 E C 2 M)) (Circle C 2 1))")
candidates = {path for path, _ in mutator.candidates(figure8.root)}
pos = tidy_layout(figure8)
fig, ax = plt.subplots(figsize=(14, 5.2))
for located in figure8.nodes:
    x, y = pos[located.path]
    for i in range(len(located.node.children)):
        cx, cy = pos[located.path + (i,)]
        ax.plot([x, cx], [y, cy], color="0.6", lw=1, zorder=1)
for index, located in enumerate(figure8.nodes):
    node, (x, y) = located.node, pos[located.path]
    label = node.text if node.is_leaf else f"{node.alt.name}\nσ={node.sigma}"
    color = "#7fc97f" if located.path in candidates else "#d0d0d0"
    ax.text(x, y, label, ha="center", va="center", fontsize=8 if node.is_leaf else 7.5,
            family="monospace", zorder=2,
            bbox=dict(boxstyle="round,pad=0.35", fc=color, ec="0.35", lw=0.8))
    ax.annotate(str(index), (x, y), xytext=(-13 if node.is_leaf else -29, 0),
                textcoords="offset points", ha="right", va="center", fontsize=6.5, color="0.35")
ax.set_xlim(-0.8, max(x for x, _ in pos.values()) + 0.8)
ax.set_ylim(min(y for _, y in pos.values()) - 0.6, 0.6)
ax.axis("off")
from matplotlib.patches import Patch
ax.legend(handles=[Patch(fc="#7fc97f", ec="0.35", label="candidate (σ ≤ 2)"),
                   Patch(fc="#d0d0d0", ec="0.35", label="not a candidate (σ > 2)")],
          loc="upper right", fontsize=9, frameon=False)
ax.set_title(figure8.text, family="monospace", fontsize=9)
savefig(fig, "fig08_mutation_candidates")
print(f"{len(candidates)} of {len(figure8.nodes)} nodes are candidates")"""),
md(r"""## 3. How one mutation changes program length

Appendix A reports that choosing a candidate node uniformly "biases expressions to get longer on
average, since there are many more leaves than parents of leaves", and that a modified choice (a
production rule first, then a node of that rule) gave **shorter 30.8 %, equal 49.2 %, longer 20.0 %**
on CSG2D (n = 10,000). tdlib implements three node-choice schemes:

| scheme | how the node is chosen |
|---|---|
| `count` (default) | a primitive count σ ∈ {0, 1, 2} uniformly among those present, then a node with that σ — what the authors' public code does (REFERENCE.md §2: 30.79 / 49.24 / 19.97) |
| `rule` | a production rule uniformly among those of the candidates, then a node of that rule (Appendix A's formula) |
| `uniform` | a candidate uniformly (§3.1 as first stated) |

We mutate the same random CSG2D programs (2-8 primitives, `env.sample(rng, 2, 8)`) once with each
scheme and classify the change of length, in grammar tokens and in characters."""),
code(r"""rng = np.random.default_rng(seed)
programs = [csg.sample(rng, 2, 8) for _ in range(n_mutations)]

def sign_class(before, after):
    return "shorter" if after < before else ("longer" if after > before else "equal")

records = []
for scheme in SCHEMES:
    m = csg.mutator(scheme)
    r = random.Random(seed)  # the same stream for every scheme
    for tree in programs:
        edit = m.random_edit(tree, r)
        new = edit.apply(tree)
        records.append(dict(scheme=scheme, old_sigma=edit.old.sigma, new_sigma=edit.new.sigma,
                            old_rule=edit.old.rule.name,
                            tokens=sign_class(len(tree.tokens), len(new.tokens)),
                            chars=sign_class(len(tree.text), len(new.text))))
mutations = pd.DataFrame(records)

rows = [dict(scheme="paper (Appendix A)", measure="tokens", n=10_000,
             shorter_pct=30.8, equal_pct=49.2, longer_pct=20.0)]
for scheme in SCHEMES:
    for measure in ("tokens", "chars"):
        counts = mutations.loc[mutations.scheme == scheme, measure].value_counts()
        n = int(counts.sum())
        rows.append(dict(scheme=scheme, measure=measure, n=n,
                         **{f"{k}_pct": round(100 * counts.get(k, 0) / n, 2)
                            for k in ("shorter", "equal", "longer")}))
length_effect = pd.DataFrame(rows)
save_table(length_effect, "mutation_length_effect", index=False)
length_effect"""),
code(r"""colors = {"shorter": "tab:blue", "equal": "0.75", "longer": "tab:orange"}
shown = length_effect[(length_effect.measure == "tokens")]
labels = [s if s.startswith("paper") else f"{s} (tdlib)" for s in shown.scheme]
fig, ax = plt.subplots(figsize=(8, 2.9))
left = np.zeros(len(shown))
for kind, color in colors.items():
    values = shown[f"{kind}_pct"].to_numpy()
    ax.barh(labels, values, left=left, color=color, label=kind, edgecolor="white")
    for y, (l, v) in enumerate(zip(left, values)):
        if v >= 4:
            ax.text(l + v / 2, y, f"{v:.1f}", ha="center", va="center", fontsize=9)
    left += values
ax.invert_yaxis()
ax.set_xlim(0, 100)
ax.set_xlabel("% of single mutations (change of length in tokens)")
ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
ax.set_title(f"CSG2D, one mutation of a random 2-8 primitive program (n = {n_mutations:,} per scheme)",
             fontsize=10, pad=24)
savefig(fig, "mutation_length_effect");"""),
md(r"""Tokens and characters always agree on the direction: in CSG2D every leaf literal is one character,
and the only way to change length is to swap a whole shape (`Circle` ↔ `Quad`, or a shape ↔ a `binop`).

Where the mutations come from, for the `count` scheme: σ of the replaced node against σ of its
replacement, with the length effect."""),
code(r"""count = mutations[mutations.scheme == "count"]
print(pd.crosstab([count.old_sigma, count.new_sigma], count.tokens, margins=True))
print()
print("replacement σ for an `s` node (count scheme):")
print(count[count.old_rule == "s"].new_sigma.value_counts(normalize=True).round(3).sort_index())"""),
md(r"""**How ours compares** (cpu preset: n = 10,000 per scheme, seed 0; the smoke preset's few hundred
mutations move the percentages by several points).

* `count`, the scheme the public code used, gives **30.8 % shorter / 49.6 % equal / 19.6 % longer**
  against the paper's 30.8 / 49.2 / 20.0: the paper's figure, within sampling noise.
  A third of the mutations pick a σ = 0 leaf (an operator or a digit), which can only be swapped in place.
* How big the replacement is matters as much as which node is picked. tdlib draws the replacement's size
  uniformly from {0, 1, 2} and moves it to the nearest size the rule can derive, so an `s` node gets a
  single shape (σ = 1) twice as often as a `binop` (σ = 2) — see the crosstab above. A shape replaced by
  a `binop` always gets longer and a `binop` replaced by a shape always gets shorter, so this lean makes
  programs shorter more often than longer. Drawing σ = 1 and σ = 2 with probability ½ each (uniform
  among feasible sizes, as `ConstrainedSample` does for whole programs) gives about 26 / 49 / 25 instead.
* `rule`, the scheme Appendix A's formula describes, cannot produce the paper's figure on CSG2D: the
  candidates' rules are `s`, `op`, `number` and `angle`, and three of the four are one-character leaves,
  so about 81 % of its mutations keep the length and only 9 % shorten. This is why REFERENCE.md attributes
  30.8 / 49.2 / 20.0 to the count-based choice of the public code.
* `uniform` mutates leaves most of the time (most candidates are digits), so 84 % keep the length; of the
  mutations that do change it, more make the program longer than shorter (8.5 % against 7.3 %): the
  growth bias Appendix A describes."""),
md(r"""## 4. TinySVG mutations

The same mutator works on any grammar. In TinySVG a candidate may be a colour, a size, a direction, a
sign, an `Arrange` of two shapes or a `Move`; replacements again stay within the rule and within
σ_small = 2 primitives."""),
code(r"""r = random.Random(seed + 1)
svg_start = svg.sample(r, 3, 6)
svg_trees, svg_edits = svg.mutator("count").chain(svg_start, 5, r)
for tree, edit in zip(svg_trees, svg_edits):
    print(tree.text)
    print(edit.describe(tree))
print(svg_trees[-1].text)
fig = image_grid([svg.display(svg.render(t)) for t in svg_trees],
                 [f"z{i}: {t.text}" for i, t in enumerate(svg_trees)], columns=3,
                 cell=3.4, title_size=6.5)
fig.suptitle("TinySVG: a noising chain (z0 = sampled target)", y=1.03)
savefig(fig, "mutation_chain_tinysvg");"""),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
nbf.write(nb, "notebooks/02_mutations.ipynb")
