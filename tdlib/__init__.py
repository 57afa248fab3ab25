"""tdlib: diffusion on syntax trees for program synthesis, as a reproducible paper artifact.

Start with :func:`make_env`::

    import tdlib
    env = tdlib.make_env("csg2d")
    tree = env.sample(0, min_primitives=2, max_primitives=8)
    image = env.render(tree)
"""

from tdlib.env import Env, list_envs, make_env, register_env
from tdlib.grammar import Grammar, GrammarError, ProgramSyntaxError, load_grammar
from tdlib.tree import Located, Node, SyntaxTree

__version__ = "0.1.0"

__all__ = [
    "Env", "Grammar", "GrammarError", "Located", "Node", "ProgramSyntaxError", "SyntaxTree",
    "list_envs", "load_grammar", "make_env", "register_env",
]
