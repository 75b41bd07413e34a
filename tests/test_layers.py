"""The package's import structure: no module imports itself back through others.

The layer arrows themselves are import-linter contracts in pyproject.toml (``lint-imports`` in CI).
"""

import grimp


def test_no_import_cycles_between_modules():
    graph = grimp.build_graph("sd_sweep")
    modules = sorted(graph.modules)
    cycles = []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join((module, *back)))
    assert cycles == []
