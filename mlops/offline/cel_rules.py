"""The CEL rules of a CRD (`x-kubernetes-validations`), evaluated the way the API server does.

A structural schema says which fields exist and what they hold; the rules say how they fit
together (Gateway API: "hostname must not be specified for protocols ['TCP', 'UDP']"; Envoy
Gateway: "either remoteJWKS or localJWKS must be specified."). The API server refuses an object
that breaks one, so `mlops validate` evaluates them first, as k8s.io/apiextensions-apiserver
(pkg/apiserver/schema/cel/validation.go) does:

- a rule runs at the schema node that declares it, with `self` bound to the value there, for
  every value the object has at that node (each item of a list, each value of a map); a node
  the object does not have runs nothing;
- the object is defaulted first (the structural defaults of pkg/apiserver/schema/defaulting),
  since the API server defaults before it validates and rules read defaulted fields;
- integers are CEL ints (Pulumi's mocks hand integers back as floats), `format: byte` strings
  are bytes, and a property named like a CEL keyword or holding `__ . - /` is read by its
  escaped name (`namespace` is `self.__namespace__`; k8s.io/apiserver pkg/cel/escaping.go);
- a rule that reads `oldSelf` is a transition rule, run only when an object is updated: offline
  there is no previous object, so those are skipped;
- the libraries are CEL's standard one plus cel-go's strings extension (`lowerAscii`, `split`,
  ...), which Kubernetes enables; the functions the reference CRDs' rules call are listed by
  tests/spine/test_cel_rules.py, which fails when that set changes;
- a broken rule reads `<path>: Invalid value: "<type>": <message>`, and a rule that fails to
  evaluate reads `<error> evaluating rule: <rule>`, as the API server words them.

The `cel` package stops `all`/`exists` at the first element whose predicate fails to evaluate,
where CEL lets another element's `false` (all) or `true` (exists) decide: docs/validation.md says
what that changes.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import re
from collections.abc import Iterator
from typing import Any

import cel
from cel import stdlib as cel_extensions

RULES = "x-kubernetes-validations"
TRANSITION_VARIABLE = "oldSelf"
# cel-go's extension libraries Kubernetes' CEL environment includes (k8s.io/apiserver
# pkg/cel/environment/base.go) and the `cel` package implements.
KUBERNETES_EXTENSIONS = ["strings"]
# k8s.io/apiserver pkg/cel/escaping.go: CEL's reserved words, and what else a property name escapes.
CEL_RESERVED = frozenset(
    {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if", "import",
     "let", "loop", "package", "namespace", "return", "var", "void", "while"}
)
_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_ESCAPED = re.compile(r"__|[-./]|[^a-zA-Z0-9_]")


def rule_tree(schema: dict[str, Any], in_scope: bool = False) -> dict[str, Any] | None:
    """The parts of an openAPIV3Schema that rules need, or None when no rule is at or below it.

    Kept: each node's rules and type; below a node with rules (what its `self` can read), the
    defaults, integer types, byte formats and which maps are objects with declared properties
    (their property names are escaped, a map's keys are not). A CRD's schema is megabytes; this
    is a small part of it.
    """
    rules = schema.get(RULES) or []
    in_scope = in_scope or bool(rules)
    node: dict[str, Any] = {}
    if rules:
        node["rules"] = rules
        node["type"] = schema.get("type", "")
    if in_scope:
        if "default" in schema:
            node["default"] = schema["default"]
        if schema.get("type") == "integer" or schema.get("format") == "byte":
            node["type"], node["format"] = schema["type"], schema.get("format", "")
        if "properties" in schema:
            node["object"] = True
    properties = {key: tree for key, child in (schema.get("properties") or {}).items() if (tree := rule_tree(child, in_scope)) is not None}
    if properties:
        node["properties"] = properties
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict) and (tree := rule_tree(schema[key], in_scope)) is not None:
            node[key] = tree
    return node or None


class RuleCheck:
    """The CEL rules of one CRD version; `errors` answers like SchemaCheck.errors: (path, message)."""

    def __init__(self, tree: dict[str, Any]):
        self.tree = tree

    def errors(self, document: Any) -> list[tuple[str, str]]:
        return list(_violations(_defaulted(document, self.tree), self.tree, ""))


def escaped(name: str) -> str | None:
    """The name CEL reads a property by, None when it cannot be read (k8s.io/apiserver pkg/cel/escaping.go)."""
    if not name or name[0].isdigit():
        return None
    if name in CEL_RESERVED:
        return f"__{name}__"
    unreadable = False

    def escape(match: re.Match[str]) -> str:
        nonlocal unreadable
        if match.group() in _ESCAPES:
            return _ESCAPES[match.group()]
        unreadable = True
        return ""

    result = _ESCAPED.sub(escape, name)
    return None if unreadable else result


def _defaulted(value: Any, node: dict[str, Any] | None) -> Any:
    """`value` as the API server stores it: structural defaults filled in, ints and bytes typed."""
    if node is None:
        return value
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        result = dict(value)
        for key, child in properties.items():
            if key not in result and "default" in child:
                result[key] = copy.deepcopy(child["default"])
        return {key: _defaulted(item, properties.get(key, node.get("additionalProperties"))) for key, item in result.items()}
    if isinstance(value, list):
        return [_defaulted(item, node.get("items")) for item in value]
    if node.get("type") == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if node.get("format") == "byte" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            return value
    return value


def _violations(value: Any, node: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if rules := node.get("rules"):
        context = cel_context(_cel_value(value, node))
        for rule in rules:
            if (message := _broken(rule, node["type"], context)) is not None:
                yield path, message
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        for key, item in value.items():
            if key in properties:
                yield from _violations(item, properties[key], f"{path}.{key}" if path else key)
            elif "additionalProperties" in node:
                yield from _violations(item, node["additionalProperties"], f"{path}[{key}]")
    elif isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            yield from _violations(item, node["items"], f"{path}[{index}]")


def _cel_value(value: Any, node: dict[str, Any] | None) -> Any:
    """`value` as CEL sees it: the properties of declared objects by their escaped names."""
    if node is None:
        return value
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        if node.get("object"):
            return {name: _cel_value(item, properties.get(key)) for key, item in value.items() if (name := escaped(key)) is not None}
        return {key: _cel_value(item, node.get("additionalProperties")) for key, item in value.items()}
    if isinstance(value, list):
        return [_cel_value(item, node.get("items")) for item in value]
    return value


def _broken(rule: dict[str, Any], schema_type: str, context: cel.Context) -> str | None:
    """The API server's message when `self` in `context` (of `schema_type`) breaks `rule`, None when
    it keeps it or the rule is a transition rule."""
    program = _program(rule["rule"])
    if TRANSITION_VARIABLE in program.variables():
        return None
    try:
        kept = program.execute(context)
    except (KeyError, ValueError, TypeError, RuntimeError, ArithmeticError) as error:
        return f"{_error_text(error)} evaluating rule: {rule['rule']}"
    if kept is True:
        return None
    return f'Invalid value: "{schema_type}": {_message(rule, context)}'


def _message(rule: dict[str, Any], context: cel.Context) -> str:
    """`messageExpression` when it evaluates to a non-empty string, else `message`, else the rule."""
    if "messageExpression" in rule:
        try:
            text = _program(rule["messageExpression"]).execute(context)
        except (KeyError, ValueError, TypeError, RuntimeError, ArithmeticError):
            text = None
        if isinstance(text, str) and text.strip():
            return text
    return rule.get("message") or f"failed rule: {rule['rule']}"


def _error_text(error: Exception) -> str:
    return f"no such key: {error.args[0]}" if isinstance(error, KeyError) else str(error)


@functools.lru_cache(maxsize=None)
def _program(expression: str) -> cel.Program:
    return cel.compile(expression)


def cel_context(value: Any) -> cel.Context:
    context = cel.Context()
    cel_extensions.add_stdlib_to_context(context, extensions=KUBERNETES_EXTENSIONS)
    context.add_variable("self", value)
    return context

