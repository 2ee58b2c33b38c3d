"""The shape of the library: its rooms (data, nets, vision, infer, train,
programs) import only from rooms below them, no import circle among its
modules (at module level or inside functions), nothing in it importing a
script or a benchmark, every module under 350 lines, and `import ferkit`
changing nothing in the interpreter."""
import ast
import os
import subprocess
import sys

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "ferkit")
# The rooms, lowest first: a module imports from its own room, the ones
# before it and the package's top (errors, files, paths, quiet), never later.
ROOMS = ("data", "nets", "vision", "infer", "train", "programs")


def modules():
    """{dotted name under ferkit: path} of every module of the package."""
    found = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                found[relative.removesuffix(".__init__") if relative.endswith("__init__") else relative] = path
    return found


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
    """{module: the ferkit modules it imports}, dotted under ferkit."""
    known = modules()
    edges = {}
    for name, path in known.items():
        targets = set()
        for i in imports_of(path):
            dotted = i[len("ferkit."):] if i.startswith("ferkit.") else None
            while dotted and dotted not in known:  # `from ferkit.vision import tracking` names a module too.
                dotted = dotted.rpartition(".")[0]
            if dotted:
                targets.add(dotted)
        edges[name] = targets - {name}
    return edges


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


def room_of(module):
    top = module.split(".")[0]
    return ROOMS.index(top) if top in ROOMS else -1  # The package's top: errors, files, paths, quiet.


def test_each_room_imports_only_from_the_rooms_below_it():
    edges = graph()
    upward = {(m, t) for m, targets in edges.items() for t in targets
              if m not in ("__init__", "__main__") and room_of(t) > room_of(m)}  # The package's face may point anywhere.
    assert upward == set()
    assert "vision.records" in edges["vision.tracking"]  # Nested modules are read (the package's face, which may point anywhere, was the one upward edge found).
    assert edges["infer.reader"] >= {"vision.faces", "infer.inference"}


def test_the_library_imports_no_script_or_benchmark():
    scripts = {name[:-3] for name in os.listdir(ROOT) if name.endswith(".py")} | {"benchmarks"}
    for name, path in modules().items():
        upward = {i.split(".")[0] for i in imports_of(path)} & scripts
        assert not upward, (name, upward)


def test_every_module_is_under_350_lines():
    long = {name: n for name, path in modules().items() if (n := sum(1 for _ in open(path))) > 350}
    assert long == {}


def test_importing_ferkit_installs_no_import_hook():
    code = ("import sys; before = list(sys.meta_path); import ferkit, ferkit.programs.cli, ferkit.infer.reader; "
            "print(sys.meta_path == before, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True", "False"], result.stderr
