"""The shape of the library: no import circle among ferkit's modules (at
module level or inside functions), nothing in it importing a script or a
benchmark, and `import ferkit` changing nothing in the interpreter."""
import ast
import os
import subprocess
import sys

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "ferkit")


def imports_of(path):
    """The ferkit modules and the top-level names a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "ferkit":
                found |= {f"ferkit.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def graph():
    modules = {name[:-3] for name in os.listdir(PACKAGE) if name.endswith(".py")}
    return {m: {i.split(".")[1] for i in imports_of(os.path.join(PACKAGE, m + ".py"))
                if i.startswith("ferkit.") and i.split(".")[1] in modules} - {m} for m in modules}


def circles(edges):
    """Each import circle, as the sorted tuple of its modules."""
    found = set()

    def visit(module, path):
        for other in edges.get(module, ()):
            if other in path:
                found.add(tuple(sorted(path[path.index(other):])))
            elif len(path) < len(edges):
                visit(other, path + [other])

    for module in edges:
        visit(module, [module])
    return found


def test_circles_are_found_where_there_are_some():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b", "c")}
    assert circles({"a": {"b"}, "b": set()}) == set()


def test_no_import_circle_in_the_library():
    assert circles(graph()) == set()


def test_the_library_imports_no_script_or_benchmark():
    scripts = {name[:-3] for name in os.listdir(ROOT) if name.endswith(".py")} | {"benchmarks"}
    for name in os.listdir(PACKAGE):
        if name.endswith(".py"):
            upward = {i.split(".")[0] for i in imports_of(os.path.join(PACKAGE, name))} & scripts
            assert not upward, (name, upward)


def test_importing_ferkit_installs_no_import_hook():
    code = ("import sys; before = list(sys.meta_path); import ferkit, ferkit.cli, ferkit.reader; "
            "print(sys.meta_path == before, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True", "False"], result.stderr
