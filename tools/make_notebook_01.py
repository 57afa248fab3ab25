"""Writes notebooks/01_grammars_and_sampling.ipynb (source, no outputs)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md("""# 01 · Grammars and size-constrained sampling

Tree diffusion works on **syntax trees** of a context-free language. Everything in `tdlib` starts
from a grammar: a `.lark` file plus the names of its *primitive* alternatives. From it tdlib knows each
production rule, its alternatives, which literal tokens a program is made of, and how many primitives
(σ, the paper's program size) each rule can derive.

This notebook covers
1. the four languages of the paper and their grammars (Appendix B),
2. parsing: text → tree → text is exact, and every node knows its span and σ,
3. `ConstrainedSample(σ_min, σ_max)` (§3.1): random programs with an exact number of primitives,
4. **Figure 9**: random CSG2D and TinySVG programs beside their code,
5. bringing a grammar of your own."""),
code("""# Parameters (papermill injects new values below this cell).
preset = "cpu"   # "smoke" (seconds, for tests), "cpu" (the shipped results), "paper"
seed = 0""", metadata={"tags": ["parameters"]}),
code("""import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

import tdlib
from tdlib.plotting import savefig, save_table, image_grid, results_dir

n_samples = {"smoke": 300, "cpu": 10_000, "paper": 10_000}[preset]
rng = np.random.default_rng(seed)"""),
md("""## 1. The languages

`tdlib.list_envs()` names the languages; `tdlib.make_env(name)` builds one. The compiled grammar inlines
rules that only ever stand for a whole alternative (`s: binop | circle | quad`), so that a circle's
*production rule* is `s`: a mutation may replace a circle by any shape. Primitives are starred."""),
code("""for name, description in tdlib.list_envs().items():
    env = tdlib.make_env(name)
    print(f"== {name}: {description}")
    print(env.grammar.describe(), end="\\n\\n")"""),
md("""The source of a grammar is an ordinary Lark file shipped as package data. Layout is part of the
language: the single spaces a program contains are literals of the grammar, so a program has exactly one
spelling and `str(parse(text)) == text`."""),
code("""from tdlib.grammar import grammar_source
print(grammar_source("csg2d"))"""),
md("""## 2. Parsing: trees with spans and σ

The program of Appendix A parses unchanged. Each node has its production rule, its character and token
span, and σ (the number of primitives beneath it)."""),
code("""csg = tdlib.make_env("csg2d")
tree = csg.parse("(+ (+ (+ (Circle A D 4) (Quad F E 4 6 K)) (Quad 3 E C 2 M)) (Circle C 2 1))")
assert str(tree) == tree.text
rows = [dict(rule=n.rule.name, alternative=n.node.alt.name, sigma=n.sigma,
             chars=f"{n.start}:{n.end}", tokens=f"{n.token_start}:{n.token_end}", text=n.node.text)
        for n in tree.nodes]
print("tokens:", " ".join(tree.tokens))
pd.DataFrame(rows).head(12)"""),
md("""Malformed programs raise `tdlib.ProgramSyntaxError`, which names the column and what the grammar
expected there. A value out of range is just another syntax error:"""),
code("""for bad in ["(Circle G 8 8)", "(+ (Circle 1 2 3)", "(Quad 1 2 3 4 5)"]:
    try:
        csg.parse(bad)
    except tdlib.ProgramSyntaxError as err:
        print(f"{bad!r:24} -> {err}")"""),
md("""## 3. ConstrainedSample

`env.sample(rng, min_primitives, max_primitives)` first draws the size n uniformly among the sizes the
rule can reach, then expands top-down, choosing at every node only alternatives and splits of n that can
still end with exactly n primitives (Luke 2000; the fuzzing book). Only true primitives count: TinySVG's
`Move` wraps a shape without adding one, so σ stays exact. The histogram should be flat over [2, 8]."""),
code("""fig, axes = plt.subplots(1, 4, figsize=(13, 2.6), sharey=True)
counts = {}
for ax, name in zip(axes, ["csg2d", "tinysvg", "rainbow", "csg2d-sketch"]):
    env = tdlib.make_env(name)
    sigmas = [env.sample(rng, 2, 8).sigma for _ in range(n_samples)]
    counts[name] = np.bincount(sigmas, minlength=9)[2:9]
    ax.bar(range(2, 9), counts[name] / n_samples, color="tab:blue")
    ax.axhline(1 / 7, color="k", lw=0.8, ls="--")
    ax.set_title(name)
    ax.set_xlabel("σ (primitives)")
axes[0].set_ylabel("fraction of samples")
savefig(fig, "sampling_sigma_histogram")
table = pd.DataFrame(counts, index=pd.Index(range(2, 9), name="sigma"))
save_table(table, "sampling_sigma_counts")
table"""),
md("""Sampling works from any rule. Replacements for small mutations (§3.1) are drawn exactly like this,
from the production rule of the node being replaced and with σ ≤ σ_small = 2:"""),
code("""for rule in ["s", "number", "angle", "op"]:
    print(f"{rule:7}", [str(csg.grammar.sample(rng, 0, 2, rule=rule)) for _ in range(4)])"""),
md("""## 4. Figure 9: random programs of CSG2D and TinySVG

CSG2D images are ink coverage (shown black on white); TinySVG images are RGB. Hierarchical CSG
semantics hold: every subtree is evaluated as one shape."""),
code("""def example_grid(env, count, columns):
    trees = [env.sample(rng, 2, 8) for _ in range(count)]
    images = [env.display(env.render(t)) for t in trees]
    return image_grid(images, [str(t) for t in trees], columns=columns, cell=2.2, title_size=5)

count = 4 if preset == "smoke" else 8
fig_csg = example_grid(csg, count, 4)
fig_csg.suptitle("(a) CSG2D", y=1.02)
savefig(fig_csg, "fig09_examples_csg2d")
svg = tdlib.make_env("tinysvg")
fig_svg = example_grid(svg, count, 4)
fig_svg.suptitle("(b) TinySVG", y=1.02)
savefig(fig_svg, "fig09_examples_tinysvg")"""),
md("""Both panels together, as in the paper:"""),
code("""import matplotlib.image as mpimg
from tdlib.plotting import figures_dir
fig, axes = plt.subplots(1, 2, figsize=(14, 8))
for ax, name in zip(axes, ["fig09_examples_csg2d", "fig09_examples_tinysvg"]):
    ax.imshow(mpimg.imread(figures_dir() / f"{name}.png"))
    ax.axis("off")
fig.tight_layout()
savefig(fig, "fig09_examples")"""),
md("""Any resolution comes from one parameter: models see 64 px, goal checks use 128 px."""),
code("""ring = "(- (Circle 4 8 8) (Circle 2 8 8))"
fig, axes = plt.subplots(1, 3, figsize=(7, 2.4))
for ax, size in zip(axes, [32, 64, 128]):
    ax.imshow(csg.display(csg.render(ring, size=size)), interpolation="nearest")
    ax.set_title(f"{size} px")
    ax.axis("off")
exact = np.pi * (4**2 - 2**2) * 64  # area in 128-px pixels: 8 px per unit
print("ring area at 128 px:", csg.render(ring).sum(), "exact:", round(exact, 1))"""),
md("""## 5. A grammar of your own

A new language is a `.lark` file, the names of its primitives and a renderer: nothing else changes.
Here is a toy language of stacked bars whose image is a bar chart."""),
code("""from tdlib.grammar import Grammar
from tdlib.env import Env

toy_source = '''
start: s
s: stack | bar
stack: "[" s " " s "]"
bar: "|" height
height: "1" | "2" | "3" | "4"
'''

class BarRenderer:
    channels = 1
    def __init__(self, grammar):
        self.heights = {a.index: int(a.literal) for a in grammar.rules["height"].alternatives}
    def bars(self, node):
        if node.alt.name == "bar":
            return [self.heights[node.children[0].alt.index]]
        return self.bars(node.children[0]) + self.bars(node.children[1])
    def render(self, node, size):
        image = np.zeros((size, size, 1), np.float32)
        width = size // 8
        for i, h in enumerate(self.bars(node)[:8]):
            image[size - h * size // 4:, i * width:(i + 1) * width - 1] = 1.0
        return image
    def is_solved(self, image, target):
        return bool(np.array_equal(image > 0.5, target > 0.5))

toy_grammar = Grammar(toy_source, primitives=["bar"], name="bars")
tdlib.register_env("bars", lambda: Env("bars", toy_grammar, BarRenderer(toy_grammar), default_size=32))
bars = tdlib.make_env("bars")
programs = [bars.sample(rng, 3, 6) for _ in range(4)]
fig = image_grid([bars.display(bars.render(p)) for p in programs], [str(p) for p in programs], columns=4)
print(bars.grammar.describe())"""),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
nbf.write(nb, "notebooks/01_grammars_and_sampling.ipynb")
