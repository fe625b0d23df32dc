"""render inlines only the runtime a generated process.py reaches (pde2gen.codegen.render.prune_runtime)."""
import ast

import pytest
from test_generated_scripts import FAMILY_PARAMETERS, module_ir

from pde2gen.codegen.render import prune_runtime, render, runtime_source


def top_level_definitions(tree):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            yield node.name, node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node


@pytest.mark.parametrize("family", sorted(FAMILY_PARAMETERS))
def test_every_inlined_runtime_definition_is_used(family):
    runtime = ast.parse(runtime_source(family))
    runtime_names = {name for name, _ in top_level_definitions(runtime)}
    process = ast.parse(render(module_ir(family))["process.py"])
    definitions = dict(top_level_definitions(process))
    kept = runtime_names & set(definitions)
    for name in kept:
        users = [node for other, node in definitions.items() if other != name
                 and any(isinstance(sub, ast.Name) and sub.id == name for sub in ast.walk(node))]
        assert users, f"{family}: runtime definition {name} is inlined but nothing uses it"
    assert f"{module_ir(family).family_class}" in kept
    assert kept < runtime_names, f"{family}: nothing of the shared runtime was left out"


def test_pruning_follows_uses_through_kept_definitions():
    runtime = "def helper():\n    return 1\n\n\ndef used():\n    return helper()\n\n\n# why\ndef unused():\n    return 2\n"
    source = "import math\n\n" + runtime + "\n\nclass Process:\n    value = used()\n"
    pruned = prune_runtime("process.py", source, runtime)
    names = {name for name, _ in top_level_definitions(ast.parse(pruned))}
    assert names == {"helper", "used", "Process"}
    assert "# why" not in pruned and "import math" in pruned
