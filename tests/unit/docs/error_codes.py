"""Every error code the collection's plugins can produce, found by reading their source (ast), not by importing it.

An error code is a string constant that reaches the place where a code travels:
- a keyword argument or parameter default named ``code`` / ``error_code`` (``code="AWS_ERROR"``);
- a dict entry keyed ``"code"`` / ``"error_code"`` (``{"error_code": "HOST_UNREACHABLE", ...}``);
- the ``code`` argument, by position, of a call to a plugin class whose ``__init__`` takes one (``ServiceError(msg, "NO_INSTANCES")``);
- what a function whose name ends in ``error_code`` returns;
- a class attribute ``code = ...`` or a module constant whose name ends in ``_CODE`` or is listed in ``ERROR_CODES``;
- ``x or "CODE"`` in any of these places.
Names are resolved through the module-level string constants of every plugin file (imports included).
"""
import ast
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CODE_KEYS = ("code", "error_code")
CODE_SHAPE = re.compile(r"^[A-Z][A-Za-z0-9_]+$")


def _plugin_files():
    for folder, _dirs, files in os.walk(os.path.join(REPO, "plugins")):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def _code_positions(trees):
    """{class name: position of its __init__'s code argument} for the plugins' classes (inherited by name)."""
    own, bases = {}, {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [base.id for base in node.bases if isinstance(base, ast.Name)]
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                        names = [arg.arg for arg in item.args.args[1:]]
                        own[node.name] = next((names.index(key) for key in CODE_KEYS if key in names), None)
    positions = {}
    for name in bases:
        seen, current = set(), name
        while current not in own and current in bases and current not in seen:
            seen.add(current)
            current = next(iter(bases[current]), None)
        if own.get(current) is not None:
            positions[name] = own[current]
    return positions


def _constants(trees):
    """Module-level NAME = "text" (and NAME = (A, B, ...) of such names) across all files."""
    strings, tuples = {}, {}
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name, value = node.targets[0].id, node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    strings.setdefault(name, set()).add(value.value)
                elif isinstance(value, ast.Tuple):
                    tuples[name] = value.elts
    return strings, tuples


def _values(node, strings):
    """The code strings an expression can evaluate to (``strings``: name -> values, the file's own first)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name):
        return set(strings(node.id))
    if isinstance(node, ast.BoolOp):
        found = set()
        for operand in node.values:
            found |= _values(operand, strings)
        return found
    if isinstance(node, ast.IfExp):
        return _values(node.body, strings) | _values(node.orelse, strings)
    return set()


def _call_name(node):
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _codes_in(tree, strings, tuples, positions):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in CODE_KEYS:
                    found |= _values(keyword.value, strings)
            position = positions.get(_call_name(node))
            if position is not None and len(node.args) > position:
                found |= _values(node.args[position], strings)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in CODE_KEYS:
                    found |= _values(value, strings)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.endswith("error_code"):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and inner.value is not None:
                        found |= _values(inner.value, strings)
            args = node.args.args[len(node.args.args) - len(node.args.defaults):]
            for arg, default in zip(args, node.args.defaults):
                if arg.arg in CODE_KEYS:
                    found |= _values(default, strings)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in CODE_KEYS or name.endswith("_CODE"):
                found |= _values(node.value, strings)
            elif name == "ERROR_CODES" and name in tuples:
                for element in tuples[name]:
                    found |= _values(element, strings)
    return found


def plugin_error_codes():
    """{code: [files that produce it]} for every error code in plugins/."""
    trees = {}
    for path in _plugin_files():
        with open(path, encoding="utf-8") as handle:
            trees[path] = ast.parse(handle.read(), filename=path)
    everywhere, tuples = _constants(trees)
    positions = _code_positions(trees)
    codes = {}
    for path, tree in trees.items():
        here, _tuples = _constants({path: tree})
        for code in _codes_in(tree, _lookup(here, everywhere), tuples, positions):
            if CODE_SHAPE.match(code):
                codes.setdefault(code, []).append(os.path.relpath(path, REPO))
    return codes


def _lookup(here, everywhere):
    """A name's string constants: the file's own first, else the ones defined anywhere."""
    def strings(name):
        return here.get(name) or everywhere.get(name, ())
    return strings
