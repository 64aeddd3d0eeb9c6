"""What a reward program reads, found in its text: the State paths, and the components each one feeds.

`reward_reads` parses the program (it never runs it) and finds every
attribute chain rooted at a parameter of `compute_reward`:
`next_state.bodies.foot.pos[:, 2]` is the path `bodies.foot.pos`, column 2,
and `action[:, 0]` the path `action`, column 0. It follows what costs little
to follow: local aliases (`feet = next_state.bodies`, then `feet.foot.pos`;
`for foot in (s.bodies.foot, s.bodies.foot_left)`), `state.resolve("...")`
with a literal path, and functions of the program called with the State
(every read inside one is taken to flow into what it returns).

Which component a read feeds comes from a data flow over assignments, blind
to order and to control: a name depends on every read and name in every
value assigned to it (`x = ...`, `x += ...`, `x[i] = ...`, `for x in ...`,
`terms.append(...)`), and a component on what its value in the returned
dict depends on. The dict may be written out in the `return`, or be a name
filled with literals, `d["k"] = ...` and `d.update(...)`. A read that reaches
the total but no component feeds `()`. One that reaches neither (it only
decides an `if`), or any read that reaches no component the text shows when
some `return`'s dict is built in a way this does not follow (such as a
comprehension), is not traced: `feeds` is None.

`fields_of` then keeps the reads that name an array field of a State of the
task (`LaidOutState.resolve`), cut to that field (`bodies.foot.pos.mean`
reads `bodies.foot.pos`); the trajectory summary (`sim/trajectory.py`) calls
it where the task's State is at hand, in the evaluation worker.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace

import numpy as np

from autoreward.contract.reward_program import ENTRY_POINT, NUMPY_NAMES, PARAMETERS
from autoreward.records import RewardRead

ACTION = "action"
MAX_READS = 32  # the most reads a program's text yields: the summary shows fewer still
HELPER_DEPTH = 3  # how deep calls of the program's own functions are followed
MAX_PASSES = 50  # of the data flow; a program that needs more gets what was found by then
MUTATING_METHODS = frozenset({"append", "extend", "insert", "update", "setdefault"})
MODULE_NAMES = frozenset({*NUMPY_NAMES, "math"})
# What tells an array's shape, not its values: `len(action)` and `x.shape` read no quantity.
SHAPE_ATTRIBUTES = frozenset({"shape", "ndim", "size", "dtype"})
SHAPE_FUNCTIONS = frozenset({"len", "shape", "ndim", "size", "zeros_like", "ones_like", "empty_like", "full_like"})

Chain = tuple[str, tuple[str, ...]]  # a parameter ("state", "action", "next_state") and attributes from it


@dataclass(frozen=True)
class _Site:
    """One place the text reads a path: the parameter, the attributes, the column, and where it is read."""

    root: str
    parts: tuple[str, ...]
    column: int | None
    order: tuple[int, ...]

    @property
    def path(self) -> str:
        if self.root == ACTION:
            return ".".join((ACTION, *self.parts))
        return ".".join(self.parts)


def reward_reads(code: str) -> tuple[RewardRead, ...]:
    """The State paths `code`'s `compute_reward` reads, in the order the text first reads them, each with the
    components it feeds (see the module's docstring); () for a text that does not parse or defines none."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return ()
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    entry = functions.get(ENTRY_POINT)
    if entry is None:
        return ()
    parameters = [a.arg for a in entry.args.posonlyargs + entry.args.args]
    roots = {name: ((canonical, ()),) for name, canonical in zip(parameters, PARAMETERS)}
    try:
        return _Flow(entry, roots, functions).reads()[:MAX_READS]
    except RecursionError:  # a chain nested past Python's limit: nothing a reward needs
        return ()


def fields_of(reads: tuple[RewardRead, ...], probe) -> tuple[RewardRead, ...]:
    """The reads that name an array field of State `probe` (anything with the State's `resolve`), each cut to
    that field, merged where two come to the same field and column; `action` is kept as it is read."""
    kept = []
    for read in reads:
        parts = tuple(read.path.split("."))
        if parts[0] == ACTION:
            kept.append(replace(read, path=ACTION, column=read.column if len(parts) == 1 else None))
            continue
        field = _field(probe, parts)
        if field is not None:
            kept.append(replace(read, path=".".join(field), column=read.column if field == parts else None))
    return _merged(kept)


def _field(probe, parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """The leading parts of a path that name an array of the State (`bodies.foot.pos` of `bodies.foot.pos.T`).

    The observation is an array-like whose named columns are arrays too: `obs.cos_theta` is a field of its own.
    """
    field = None
    for end in range(1, len(parts) + 1):
        try:
            value = probe.resolve(".".join(parts[:end]))
        except (AttributeError, KeyError, TypeError, ValueError):
            break
        if hasattr(value, "__array__"):
            field = parts[:end]
            if isinstance(value, np.ndarray):
                break
    return field


def _merged(reads) -> tuple[RewardRead, ...]:
    """One read per path and column, at its first place, feeding every component any of them feeds."""
    merged: dict[tuple[str, int | None], RewardRead] = {}
    for read in reads:
        key = (read.path, read.column)
        known = merged.get(key)
        if known is None:
            merged[key] = read
        elif read.feeds is not None:
            feeds = tuple(dict.fromkeys((*(known.feeds or ()), *read.feeds)))
            merged[key] = replace(known, feeds=feeds)
    return tuple(merged.values())


# --- the reading of one function ----------------------------------------------------------------------


def _chains(node: ast.AST, known: dict[str, tuple[Chain, ...]]) -> tuple[Chain, ...] | None:
    """What an expression made of a name and attributes (and `.resolve("a.b")`) stands for, or None: one
    chain, or several for a name that stands for each of a few (`for foot in (s.foot, s.foot_left)`)."""
    if isinstance(node, ast.Name):
        return known.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _chains(node.value, known)
        return None if base is None else tuple((root, (*parts, node.attr)) for root, parts in base)
    literal = _resolved_path(node)
    if literal is not None:
        base = _chains(node.func.value, known)
        return None if base is None else tuple((root, (*parts, *literal)) for root, parts in base)
    return None


def _resolved_path(node: ast.AST) -> tuple[str, ...] | None:
    """The parts of `x.resolve("bodies.foot.pos")` when its path is a literal of public names."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "resolve"
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return None
    parts = tuple(node.args[0].value.split("."))
    if all(p.isidentifier() and not p.startswith("_") for p in parts):
        return parts
    return None


def _column(subscript: ast.Subscript) -> int | None:
    """k of `x[:, k]` or `x[..., k]` (k a whole number, maybe negative); None for any other index."""
    index = subscript.slice
    if not (isinstance(index, ast.Tuple) and len(index.elts) == 2):
        return None
    batch, column = index.elts
    whole = (isinstance(batch, ast.Slice) and batch.lower is None and batch.upper is None and batch.step is None) or (
        isinstance(batch, ast.Constant) and batch.value is Ellipsis
    )
    sign = 1
    if isinstance(column, ast.UnaryOp) and isinstance(column.op, ast.USub):
        sign, column = -1, column.operand
    if whole and isinstance(column, ast.Constant) and type(column.value) is int:
        return sign * column.value
    return None


def _shape_only(node: ast.AST, parent: ast.AST | None) -> bool:
    """Whether a chain only asks for a shape: `x.shape[0]`, `len(x)`, `np.zeros_like(x)`."""
    if isinstance(node, ast.Attribute) and node.attr in SHAPE_ATTRIBUTES:
        return True
    if not (isinstance(parent, ast.Call) and parent.args and parent.args[0] is node):
        return False
    function = parent.func
    if isinstance(function, ast.Attribute):
        return function.attr in SHAPE_FUNCTIONS
    return isinstance(function, ast.Name) and function.id in SHAPE_FUNCTIONS


def _inner_nodes(function: ast.FunctionDef):
    """Every node of a function's body, its nested functions' included."""
    for statement in function.body:
        yield from ast.walk(statement)


def _own_returns(function: ast.FunctionDef):
    """The function's own `return` statements, not those of functions defined inside it."""
    stack = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def _targets(target: ast.AST, value: ast.AST | None):
    """(name, value) for each name an assignment binds; an unpacking of a literal tuple pairs them up."""
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, (ast.Tuple, ast.List)):
        paired = isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts)
        for position, element in enumerate(target.elts):
            yield from _targets(
                element.value if isinstance(element, ast.Starred) else element,
                value.elts[position] if paired else value,
            )
    elif isinstance(target, ast.Subscript):  # x[i] = v: x now holds v (and depends on i)
        base = target.value
        while isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name):
            yield base.id, value
            yield base.id, target.slice


class _Flow:
    """The reads of one function given what its names stand for (`roots`), and where each flows."""

    def __init__(self, function: ast.FunctionDef, roots: dict[str, tuple[Chain, ...]], functions, depth: int = 0):
        self.function = function
        # The program's functions, and this one's own: a reward may define its helpers inside it.
        self.functions = {**functions, **{n.name: n for n in _inner_nodes(function) if isinstance(n, ast.FunctionDef)}}
        self.depth = depth
        self.aliases = self._aliases(roots)
        self.known = {**roots, **self.aliases}
        self.sites: list[_Site] = []
        self.at: dict[int, list[int]] = {}  # id of a node -> the sites it reads
        self._find_sites()

    # What names stand for a part of the State: `feet = next_state.bodies`, `for foot in (a.foot, a.bar)`,
    # `for b in parts` after `parts = [a.foot, a.bar]`.

    def _aliases(self, roots: dict[str, tuple[Chain, ...]]) -> dict[str, tuple[Chain, ...]]:
        bound: dict[str, list[list[ast.AST] | str | None]] = {}  # name -> each binding: its values, or None
        # (a name's binding by a loop over another name is that name, replaced below by what it lists)

        def bind(name: str, chains: list[ast.AST] | str | None) -> None:
            bound.setdefault(name, []).append(chains)

        for node in _inner_nodes(self.function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    for name, value in _targets(target, node.value):
                        bind(name, [value] if isinstance(target, ast.Name) else None)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                for name, _ in _targets(node.target, None):
                    bind(name, [node.value] if isinstance(node, ast.AnnAssign) and node.value is not None else None)
            elif isinstance(node, (ast.For, ast.comprehension)):
                listed = node.iter.id if isinstance(node.iter, ast.Name) else None
                if isinstance(node.iter, (ast.Tuple, ast.List)):
                    listed = list(node.iter.elts)
                for name, _ in _targets(node.target, None):
                    bind(name, listed if isinstance(node.target, ast.Name) else None)
            elif isinstance(node, ast.NamedExpr):
                bind(node.target.id, [node.value])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for argument in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                    bind(argument.arg, None)
                if not isinstance(node, ast.Lambda):
                    bind(node.name, None)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                for name, _ in _targets(node.optional_vars, None):
                    bind(name, None)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bind(node.name, None)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for imported in node.names:
                    bind(imported.asname or imported.name, None)
        for bindings in bound.values():
            for index, binding in enumerate(bindings):
                if isinstance(binding, str):  # a loop over a name: what that name lists, if it only lists
                    listed = bound.get(binding, [])
                    literal = listed and all(
                        isinstance(b, list) and len(b) == 1 and isinstance(b[0], (ast.List, ast.Tuple)) for b in listed
                    )
                    bindings[index] = [e for b in listed for e in b[0].elts] if literal else None
        aliases: dict[str, tuple[Chain, ...]] = {}
        changed = True
        while changed:  # an alias of an alias is found on a later pass
            changed = False
            for name, bindings in bound.items():
                if name in roots or name in aliases or any(b is None for b in bindings):
                    continue
                found = [_chains(value, {**roots, **aliases}) for binding in bindings for value in binding]
                if found and all(chains is not None for chains in found):
                    aliases[name] = tuple(dict.fromkeys(c for chains in found for c in chains))
                    changed = True
        # What an alias is given is not read there: it is read where the alias is used, and ranked where it was made.
        self._alias_values = {id(value) for name in aliases for binding in bound[name] for value in binding}
        self._alias_order = {
            name: min((value.lineno, value.col_offset) for binding in bound[name] for value in binding)
            for name in aliases
        }
        return aliases

    # Where the State is read.

    def _find_sites(self) -> None:
        parents = {
            id(child): parent for parent in _inner_nodes(self.function) for child in ast.iter_child_nodes(parent)
        }
        for node in _inner_nodes(self.function):
            if isinstance(node, ast.Call):
                self._follow_call(node)
            if not isinstance(node, (ast.Name, ast.Attribute, ast.Call)) or id(node) in self._alias_values:
                continue
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                continue
            chains = _chains(node, self.known)
            if not chains:
                continue
            parent = parents.get(id(node))
            if isinstance(parent, ast.Attribute) and parent.value is node:
                continue  # the chain goes on: its end is the read
            if isinstance(parent, ast.Call) and parent.func is node and _resolved_path(parent) is not None:
                continue  # `state.resolve`: the call is the read
            if _shape_only(node, parent):
                continue
            column = _column(parent) if isinstance(parent, ast.Subscript) and parent.value is node else None
            base = node.func.value if isinstance(node, ast.Call) else node
            while isinstance(base, ast.Attribute):
                base = base.value
            order = (*self._alias_order.get(getattr(base, "id", ""), ()), node.lineno, node.col_offset)
            for root, parts in chains:
                if parts or root == ACTION:  # a bare State passed along is read where it arrives
                    self._add(node, _Site(root, parts, column, order))

    def _add(self, node: ast.AST, site: _Site) -> None:
        self.at.setdefault(id(node), []).append(len(self.sites))
        self.sites.append(site)

    def _follow_call(self, call: ast.Call) -> None:
        """A call of the program's own function with (part of) the State: its reads are this call's."""
        if not isinstance(call.func, ast.Name) or call.func.id in self.known or self.depth >= HELPER_DEPTH:
            return
        helper = self.functions.get(call.func.id)
        if helper is None or helper is self.function:
            return
        parameters = [a.arg for a in helper.args.posonlyargs + helper.args.args]
        given = list(zip(parameters, call.args)) + [(k.arg, k.value) for k in call.keywords if k.arg in parameters]
        roots = {name: chains for name, value in given if (chains := _chains(value, self.known))}
        if not roots:
            return
        inner = _Flow(helper, roots, self.functions, self.depth + 1)
        for site in inner.sites:
            self._add(call, replace(site, order=(call.lineno, call.col_offset, *site.order)))

    # Where each read flows.

    def reads(self) -> tuple[RewardRead, ...]:
        components, total = self._components()
        found = []
        for index in sorted(range(len(self.sites)), key=lambda i: self.sites[i].order):
            site = self.sites[index]
            feeds = tuple(name for name, reached in components.items() if index in reached)
            if not feeds:  # () where it reaches the total alone; None where this cannot tell
                feeds = () if total is not None and index in total else None
            found.append(RewardRead(site.path, site.column, feeds))
        return _merged(found)

    def _components(self) -> tuple[dict[str, set[int]], set[int] | None]:
        """Each component of the returned dict and the sites its value depends on; and those the total depends
        on, or None when some `return`'s components could not be read (a read may feed one of them)."""
        flows = self._assignments()
        depends: dict[str, set[int]] = {}
        for _ in range(MAX_PASSES):
            changed = False
            for name, value in flows:
                reached = self._depends(value, depends)
                if not reached <= depends.setdefault(name, set()):
                    depends[name] |= reached
                    changed = True
            if not changed:
                break
        entries, opaque = self._dict_entries()
        components: dict[str, set[int]] = {}
        total: set[int] | None = set()
        for returned in _own_returns(self.function):
            value = returned.value
            pairs = None
            if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                pairs = self._entries_of(value.elts[1], entries, opaque)
            if pairs is None:
                total = None
                continue
            for key, expression in pairs:
                components.setdefault(key, set()).update(self._depends(expression, depends))
            if total is not None:
                total |= self._depends(value.elts[0], depends)
        return components, total

    def _depends(self, expression: ast.AST, depends: dict[str, set[int]]) -> set[int]:
        reached: set[int] = set()
        for node in ast.walk(expression):
            reached.update(self.at.get(id(node), ()))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                reached |= depends.get(node.id, set())
        return reached

    def _assignments(self) -> list[tuple[str, ast.AST]]:
        """(name, value) for everything that puts a value in a name, in any order."""
        flows = []
        for node in _inner_nodes(self.function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    flows += [(n, v) for n, v in _targets(target, node.value) if v is not None]
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                flows += [(n, v) for n, v in _targets(node.target, node.value) if v is not None]
            elif isinstance(node, (ast.For, ast.comprehension)):
                flows += [(n, node.iter) for n, _ in _targets(node.target, None)]
            elif isinstance(node, ast.NamedExpr):
                flows.append((node.target.id, node.value))
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                flows += [(n, node.context_expr) for n, _ in _targets(node.optional_vars, None)]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                flows.append((node.name, node))  # what it returns may depend on anything it reads
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if (
                    node.func.attr in MUTATING_METHODS
                    and isinstance(owner, ast.Name)
                    and owner.id not in MODULE_NAMES
                    and owner.id not in self.known
                ):
                    flows.append((owner.id, node))  # terms.append(x): terms now holds x
        return flows

    def _dict_entries(self) -> tuple[dict[str, list[tuple[str, ast.AST]]], set[str]]:
        """The literal keys each dict name is given (`d = {...}`, `d["k"] = v`, `d.update(...)`), and the names
        also given something this cannot read keys from."""
        entries: dict[str, list[tuple[str, ast.AST]]] = {}
        opaque: set[str] = set()

        def given(name: str, value: ast.AST) -> None:
            found = self._literal_entries(value)
            if found is None:
                opaque.add(name)
            else:
                entries.setdefault(name, []).extend(found)

        for node in _inner_nodes(self.function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        given(target.id, node.value)
                    elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                        key = target.slice
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            entries.setdefault(target.value.id, []).append((key.value, node.value))
                        else:
                            opaque.add(target.value.id)
                    else:
                        opaque.update(n for n, _ in _targets(target, None))
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                given(node.target.id, node.value)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "update"
                and isinstance(node.func.value, ast.Name)
            ):
                found = self._literal_entries(ast.Call(ast.Name("dict"), node.args, node.keywords))
                if found is None:
                    opaque.add(node.func.value.id)
                else:
                    entries.setdefault(node.func.value.id, []).extend(found)
        return entries, opaque

    def _literal_entries(self, value: ast.AST) -> list[tuple[str | None, ast.AST]] | None:
        """The (key, value) pairs of a dict literal or `dict(k=v, ...)`; a `**other` is kept as (None, other)."""
        if isinstance(value, ast.Dict):
            pairs = []
            for key, item in zip(value.keys, value.values):
                if key is None:
                    pairs.append((None, item))
                elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                    pairs.append((key.value, item))
                else:
                    return None
            return pairs
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
            pairs = [(None, argument) for argument in value.args]
            return pairs + [(k.arg, k.value) for k in value.keywords]
        return None

    def _entries_of(self, value: ast.AST, entries, opaque, seen: frozenset[str] = frozenset()):
        """The (key, value) pairs of the components a `return` hands back, or None where this cannot say."""
        if isinstance(value, ast.Name):
            if value.id in seen:  # d = dict(d, k=v): d's entries are counted once
                return []
            if value.id in opaque or value.id not in entries:
                return None
            pairs = entries[value.id]
            seen = seen | {value.id}
        else:
            pairs = self._literal_entries(value)
            if pairs is None:
                return None
        found = []
        for key, item in pairs:
            if key is None:  # **other, or dict(other): its own entries
                inner = self._entries_of(item, entries, opaque, seen)
                if inner is None:
                    return None
                found += inner
            else:
                found.append((key, item))
        return found
