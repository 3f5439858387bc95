"""A recipe's text into a plain mapping, strictly: YAML 1.2 booleans (true/false only; `no` stays a string), floats
like 2e-4, duplicate keys and aliases rejected, a file that is not UTF-8 text named; and the command line's
`section.key=value` overrides set into it. rsft/recipe_types.py makes the typed sections of the mapping.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from rsft.errors import UserError


class _StrictLoader(yaml.SafeLoader):
    pass


_StrictLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\.inf|\.nan)$", re.I),
    list("-+0123456789."),
)


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise UserError(f"{loader.name}: line {key_node.start_mark.line + 1}: a key must be a plain name")
        if key in seen:
            raise UserError(
                f"{loader.name}: duplicate key '{key}' at line {key_node.start_mark.line + 1} "
                f"(first at line {seen[key] + 1})"
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _compose_node(loader, parent, index):
    # An alias (*name) repeats a node by reference: nine nested aliases of ten make 10^9 values to check.
    # No recipe needs one, so none is read.
    if loader.check_event(yaml.AliasEvent):
        event = loader.peek_event()
        raise UserError(f"{loader.name}: line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                        "allowed in a recipe; write the value out")
    return yaml.SafeLoader.compose_node(loader, parent, index)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.compose_node = _compose_node


def parse_yaml(text: str, name: str):
    """The YAML `text` as plain values, read by the strict loader above; a fault is one line naming `name`."""
    loader = None
    try:
        loader = _StrictLoader(text)  # reading starts here: a NUL or other control character fails already
        loader.name = name
        return loader.get_single_data()
    except yaml.YAMLError as e:
        raise UserError(f"{name}: not valid YAML: {e}".replace("\n", " ")) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise UserError(f"{name}: holds a number too long to read (over 4,300 digits)") from None
    except RecursionError:
        raise UserError(f"{name}: nested too deeply to be a recipe (sections hold keys, keys hold values)") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_recipe_text(path: Path) -> str:
    """The recipe file as text: a readable, UTF-8 text file, or a one-line error naming it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read recipe {path}: {e.strerror}") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UserError(f"{path}: holds a NUL byte (byte offset {nul}); a recipe is a YAML text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte offset {e.start}: {data[e.start:e.start + 1]!r}); "
                        "a recipe is a YAML text file") from None


def apply_override(raw: dict, item: str) -> None:
    """One `section.key=value` override set into the raw mapping; the value read as YAML (`2e-4`, `[a, b]`),
    none after `=` giving null."""
    if "=" not in item:
        raise UserError(f"override '{item}' must look like section.key=value")
    dotted, text = item.split("=", 1)
    keys = dotted.strip().split(".")
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise UserError(f"override '{item}': '{k}' is not a section")
    node[keys[-1]] = parse_yaml(text, f"override {dotted}") if text.strip() else None
