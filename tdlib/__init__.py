"""tdlib: diffusion on syntax trees for program synthesis, as a reproducible paper artifact.

Start with :func:`make_env`::

    import tdlib
    env = tdlib.make_env("csg2d")
    tree = env.sample(0, min_primitives=2, max_primitives=8)
    image = env.render(tree)

and turn a picture into a program with :func:`solve` (TD search with the shipped models)::

    result = tdlib.solve("csg2d", "icon.png", budget=5000)
    print(result.program, result.solved)
"""

from tdlib.env import Env, list_envs, make_env, register_env
from tdlib.grammar import Grammar, GrammarError, ProgramSyntaxError, load_grammar
from tdlib.tree import Located, Node, SyntaxTree

__version__ = "0.1.0"


def __getattr__(name):
    # tdlib.solve loads torch (and image_to_observation Pillow) only when first asked for:
    # ``import tdlib`` stays light
    if name in ("solve", "Solution"):
        from tdlib import solver
        return getattr(solver, name)
    if name == "image_to_observation":
        from tdlib.image_input import image_to_observation
        return image_to_observation
    raise AttributeError(f"module 'tdlib' has no attribute {name!r}")


__all__ = [
    "Env", "Grammar", "GrammarError", "Located", "Node", "ProgramSyntaxError", "SyntaxTree",
    "Solution", "image_to_observation", "list_envs", "load_grammar", "make_env", "register_env",
    "solve",
]
