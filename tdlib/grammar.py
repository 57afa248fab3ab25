"""A generic grammar engine built from a Lark grammar and the names of its primitives.

Any context-free grammar whose terminals are literal strings works.  Layout is part of the
grammar: write the spaces a program must contain as literals (``" "``), so that the text of a
tree is exact and a program has exactly one spelling.

Compilation turns Lark's rules into *slot rules*: the nonterminals that appear as a part of an
expansion (``s``, ``op``, ``number`` in CSG2D).  A rule used only as a whole alternative of
another (``binop``, ``circle`` in ``s: binop | circle | quad``) is inlined into it, so a circle
node's production rule is ``s``: mutating it may give any shape, as the paper requires.
Alternatives named in ``primitives`` count towards sigma, the program size.

The grammar is parsed by Lark's LALR parser, regenerated once with one alias per alternative
so that the parser builds :class:`~tdlib.tree.Node` trees directly, without an intermediate
parse tree.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Iterable

import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from tdlib.rules import Alternative, Rule
from tdlib.sampling import ConstrainedSampler
from tdlib.tree import Node, SyntaxTree, node_depth


class GrammarError(ValueError):
    """The grammar itself cannot be used by tdlib."""


class ProgramSyntaxError(ValueError):
    """A program text does not belong to the language.

    ``column`` is 1-based, ``expected`` lists what the grammar allowed there and ``found``
    is what the text had (``None`` at the end of the input).
    """

    def __init__(self, text: str, column: int, expected: list[str], found: str | None):
        self.text = text
        self.column = column
        self.expected = expected
        self.found = found
        what = "end of input" if found is None else repr(found)
        super().__init__(f"column {column}: expected {' or '.join(expected)}, found {what}")


# Programs nest at most this deep (a node under 256 others): the renderers, mutations and edit
# paths recurse once per level, and Python's stack ends near 1,000.  Sampled programs nest
# about 10 deep.
MAX_DEPTH = 256


class ProgramTooDeepError(ValueError):
    """A program nests deeper than :data:`MAX_DEPTH`."""


def _quote(literal: str) -> str:
    return '"' + literal.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Grammar:
    """A compiled grammar: rules, alternatives, primitive counts, a cached LALR parser.

    Parameters
    ----------
    source:
        Lark grammar text.  It must define ``start``; terminals must be literal strings.
    primitives:
        Names of the alternatives (rule names or aliases) that count as one primitive.
    name:
        A label for messages.
    weights:
        Optional relative weights of alternatives (by name) when the sampler chooses among
        the feasible ones; default 1.  TinySVG uses it to keep ``Move`` chains short.
    """

    def __init__(self, source: str, primitives: Iterable[str], name: str = "grammar",
                 weights: dict[str, float] | None = None):
        self.name = name
        self.source = source
        self.primitive_names = frozenset(primitives)
        self.weights = dict(weights or {})
        try:
            loaded = lark.Lark(source, parser="lalr", start="start")
        except lark.exceptions.GrammarError as err:
            raise GrammarError(f"{name}: {err}") from err
        self._compile(loaded)
        self._parser = lark.Lark(
            self._generated_source(), parser="lalr", start="start",
            transformer=self._make_transformer(),
        )
        self._literal_of_terminal = {
            t.name: t.pattern.value for t in self._parser.terminals
        }
        self._sampler = None
        _GRAMMARS.setdefault(self._key(), self)

    def _key(self) -> tuple:
        return (self.source, tuple(sorted(self.primitive_names)), self.name,
                tuple(sorted(self.weights.items())))

    def __reduce__(self):
        # Pickled by definition, so trees cross process boundaries (DataLoader workers) cheaply
        # and alternatives keep their identity in the receiving process.
        return (_grammar_of, self._key())

    # ------------------------------------------------------------------ compile
    def _compile(self, loaded: lark.Lark) -> None:
        expansions: dict[str, list[tuple[list, str | None]]] = {}
        for rule in loaded.rules:
            expansions.setdefault(rule.origin.name, []).append((rule.expansion, rule.alias))
        literal = {}
        for term in loaded.terminals:
            if term.pattern.type != "str":
                raise GrammarError(
                    f"{self.name}: terminal {term.name} is a regular expression "
                    f"({term.pattern.value!r}); tdlib needs literal terminals to sample programs"
                )
            literal[term.name] = term.pattern.value

        def is_unit(expansion) -> bool:
            return len(expansion) == 1 and not expansion[0].is_term

        # A rule is inlined when it is only ever used as a whole alternative of other rules.
        used_in_parts = {"start"}
        for name, alts in expansions.items():
            for expansion, _ in alts:
                if not is_unit(expansion):
                    used_in_parts.update(s.name for s in expansion if not s.is_term)
        root = "start"
        while len(expansions[root]) == 1 and is_unit(expansions[root][0][0]):
            root = expansions[root][0][0][0].name
        used_in_parts.add(root)
        slot_names = sorted(n for n in used_in_parts if n != "start" or root == "start")

        self.rules: dict[str, Rule] = {n: Rule(n, self) for n in slot_names}
        self.alternatives: list[Alternative] = []

        def flatten(name: str, seen: tuple[str, ...]) -> list[tuple[str, list]]:
            out = []
            for expansion, alias in expansions[name]:
                target = expansion[0].name if is_unit(expansion) else None
                if target is not None and target not in self.rules:
                    if target in seen:
                        raise GrammarError(f"{self.name}: unit cycle through {target}")
                    sub = flatten(target, seen + (target,))
                    if len(expansions[target]) == 1 and sub:
                        sub = [(alias or target, sub[0][1])]
                    out.extend(sub)
                else:
                    default = name if len(expansions[name]) == 1 else None
                    out.append((alias or default, expansion))
            return out

        for rule_name in slot_names:
            rule = self.rules[rule_name]
            for alt_name, expansion in flatten(rule_name, (rule_name,)):
                pieces = [literal[s.name] if s.is_term else self.rules[s.name] for s in expansion]
                if alt_name is None:
                    alt_name = "".join(p for p in pieces if isinstance(p, str)).strip() or rule_name
                alt = Alternative(rule, len(self.alternatives), alt_name, pieces,
                                  alt_name in self.primitive_names)
                rule.alternatives.append(alt)
                self.alternatives.append(alt)
        unknown_weights = set(self.weights) - {a.name for a in self.alternatives}
        if unknown_weights:
            raise GrammarError(f"{self.name}: weights {sorted(unknown_weights)} name no alternative")
        unknown = self.primitive_names - {a.name for a in self.alternatives}
        if unknown:
            raise GrammarError(
                f"{self.name}: primitives {sorted(unknown)} name no alternative; alternatives "
                f"are {sorted({a.name for a in self.alternatives})}"
            )
        self.root_rule = self.rules[root]

    def _generated_source(self) -> str:
        lines = [f"start: {self.root_rule.name}"]
        for rule in self.rules.values():
            alts = []
            for alt in rule.alternatives:
                parts = [p.name if isinstance(p, Rule) else _quote(p) for p in alt.pieces]
                alts.append(" ".join(parts) + f" -> tdalt{alt.index}")
            lines.append(f"{rule.name}: " + "\n    | ".join(alts))
        return "\n".join(lines) + "\n"

    def _make_transformer(self) -> lark.Transformer:
        methods = {"start": lambda self_, children: children[0]}
        for alt in self.alternatives:
            if alt.leaf is not None:
                methods[f"tdalt{alt.index}"] = (lambda leaf: lambda self_, children: leaf)(alt.leaf)
            else:
                methods[f"tdalt{alt.index}"] = (
                    lambda a: lambda self_, children: Node(a, tuple(children)))(alt)
        return type("NodeBuilder", (lark.Transformer,), methods)()

    # ------------------------------------------------------------------ parse
    def parse(self, text: str) -> SyntaxTree:
        """Parse a program; raises :class:`ProgramSyntaxError` naming the column on bad input
        and :class:`ProgramTooDeepError` for one that nests deeper than :data:`MAX_DEPTH`."""
        root = self.parse_node(text, self.root_rule)
        depth = node_depth(root)
        if depth > MAX_DEPTH:
            raise ProgramTooDeepError(f"the program nests {depth} levels deep; tdlib handles at "
                                      f"most {MAX_DEPTH}")
        return SyntaxTree(root, self)

    def parse_node(self, text: str, rule: Rule | None = None) -> Node:
        """Parse text derived from ``rule`` (default: the root rule) into a node."""
        if not isinstance(text, str):
            raise TypeError(f"a program is a str, not {type(text).__name__}")
        if rule is not None and rule is not self.root_rule:
            return self._rule_parser(rule.name).parse(text)
        try:
            return self._parser.parse(text)
        except UnexpectedInput as err:
            raise self._syntax_error(text, err) from None

    @functools.lru_cache(maxsize=None)
    def _rule_parser(self, rule_name: str):
        parser = lark.Lark(self._generated_source(), parser="lalr", start=rule_name,
                           transformer=self._make_transformer())

        class RuleParser:
            def parse(inner, text):
                try:
                    return parser.parse(text)
                except UnexpectedInput as err:
                    raise self._syntax_error(text, err) from None

        return RuleParser()

    def _syntax_error(self, text: str, err: UnexpectedInput) -> ProgramSyntaxError:
        if isinstance(err, UnexpectedCharacters):
            column, allowed, found = err.column, err.allowed, text[err.pos_in_stream]
        elif isinstance(err, UnexpectedEOF):
            column, allowed, found = len(text) + 1, err.expected, None
        elif isinstance(err, UnexpectedToken):
            if err.token.type == "$END":
                column, found = len(text) + 1, None
            else:
                column, found = err.column, str(err.token)
            allowed = err.expected
        else:  # pragma: no cover - lark has no other subclasses today
            column, allowed, found = 0, set(), None
        literals = sorted(
            {self._literal_of_terminal.get(name, name) for name in allowed if name != "$END"}
        )
        return ProgramSyntaxError(text, column, self._describe(literals, "$END" in allowed),
                                  found)

    def _describe(self, literals: list[str], end_ok: bool) -> list[str]:
        """Name whole leaf rules ("number (0 1 ... F)") instead of listing their literals."""
        remaining = set(literals)
        out = []
        for rule in self.rules.values():
            if rule.is_leaf_rule and len(rule.alternatives) > 2:
                values = [a.literal for a in rule.alternatives]
                if set(values) <= remaining:
                    remaining -= set(values)
                    out.append(f"{rule.name} ({' '.join(values)})")
        out.extend(repr(lit) for lit in sorted(remaining))
        if end_ok:
            out.append("end of input")
        return out or ["nothing (input is complete)"]

    # ------------------------------------------------------------------ sample
    @property
    def sampler(self):
        """The :class:`~tdlib.sampling.ConstrainedSampler` of this grammar (built on first use)."""
        if self._sampler is None:
            self._sampler = ConstrainedSampler(self)
        return self._sampler

    def sample(self, rng, min_sigma: int = 0, max_sigma: int = 8,
               rule: Rule | str | None = None) -> SyntaxTree:
        """ConstrainedSample: a random program with ``min_sigma <= sigma <= max_sigma``."""
        rule = self.rule(rule)
        return SyntaxTree(self.sampler.sample(rng, rule, min_sigma, max_sigma), self)

    def rule(self, rule: Rule | str | None) -> Rule:
        if rule is None:
            return self.root_rule
        if isinstance(rule, Rule):
            return rule
        try:
            return self.rules[rule]
        except KeyError:
            raise KeyError(f"{self.name} has no rule {rule!r}; rules: {sorted(self.rules)}") from None

    def node(self, alt_name: str, *children: Node) -> Node:
        """Build a node by alternative name (for tests and hand-written programs)."""
        for alt in self.alternatives:
            if alt.name == alt_name:
                if len(children) != len(alt.slots):
                    raise ValueError(f"{alt_name} takes {len(alt.slots)} children")
                return alt.leaf if alt.leaf is not None else Node(alt, tuple(children))
        raise KeyError(alt_name)

    @property
    def terminals(self) -> list[str]:
        """Every distinct literal token of the grammar, in a stable order."""
        seen: dict[str, None] = {}
        for alt in self.alternatives:
            for tok in alt.tokens:
                seen.setdefault(tok)
        return list(seen)

    def describe(self) -> str:
        """The compiled grammar as text, one rule per line, primitives starred."""
        lines = []
        for rule in self.rules.values():
            alts = []
            for alt in rule.alternatives:
                parts = [p.name if isinstance(p, Rule) else p.strip() for p in alt.pieces]
                body = " ".join(p for p in parts if p)
                alts.append(body + (" *" if alt.is_primitive else ""))
            lines.append(f"{rule.name}: " + " | ".join(alts))
        return "\n".join(lines)


_GRAMMARS: dict[tuple, Grammar] = {}


def _grammar_of(source, primitives, name, weights) -> Grammar:
    key = (source, primitives, name, weights)
    if key not in _GRAMMARS:
        Grammar(source, primitives, name=name, weights=dict(weights))
    return _GRAMMARS[key]


def grammar_source(name: str) -> str:
    """Text of a grammar shipped with tdlib (``tdlib/grammars/<name>.lark``)."""
    return resources.files("tdlib.grammars").joinpath(f"{name}.lark").read_text()


@functools.lru_cache(maxsize=None)
def load_grammar(name_or_path: str, primitives: tuple[str, ...],
                 weights: tuple[tuple[str, float], ...] = ()) -> Grammar:
    """Load and compile a grammar once per process: a shipped name or a ``.lark`` path."""
    path = Path(name_or_path)
    if path.suffix == ".lark":
        source, name = path.read_text(), path.stem
    else:
        source, name = grammar_source(name_or_path), name_or_path
    return Grammar(source, primitives, name=name, weights=dict(weights))
