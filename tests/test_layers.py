"""The library's layers, as a test: every import of a cmrlib module (at the top of a module or inside a function)
points to a lower layer or within its own package, no study imports another, and no modules import each other
in a loop. The layers, lowest first (the README's layout table says what each holds):

    errors, cmrlib itself  <  files  <  config  <  data  <  training, evaluation  <  runs  <  studies  <  claims
    <  book  <  cli

``training`` and ``evaluation`` sit side by side and do not import each other."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cmrlib"
LAYERS = [("cmrlib", "cmrlib.errors"), ("cmrlib.files",), ("cmrlib.config",), ("cmrlib.data",),
          ("cmrlib.training", "cmrlib.evaluation"), ("cmrlib.runs",), ("cmrlib.studies",), ("cmrlib.claims",),
          ("cmrlib.book",), ("cmrlib.cli",)]


def modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[tuple[str, bool]]]:
    """module → {(imported cmrlib module, inside a function)}."""
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".") if is_pkg else m.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                targets = [f"{full}.{a.name}" if f"{full}.{a.name}" in mods else full for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t in mods and t != m:
                    edges[m].add((t, node.col_offset > 0))
    return edges


def layer(m: str) -> int:
    best = max(((i, len(p)) for i, group in enumerate(LAYERS) for p in group if m == p or m.startswith(p + ".")),
               key=lambda x: x[1])
    return best[0]


def package(m: str) -> str:
    """The unit inside which imports may go sideways: a study's package, else the top-level package."""
    parts = m.split(".")
    return ".".join(parts[:3]) if parts[1:2] == ["studies"] else ".".join(parts[:2])


def violations() -> list[str]:
    mods = modules()
    out = []
    for m, targets in imports(mods).items():
        for t, _ in targets:
            if t == "cmrlib":
                continue
            same = package(m) == package(t)
            if not same and layer(t) >= layer(m):
                out.append(f"{m} imports {t} (layer {layer(t)} from layer {layer(m)})")
    return out


def loops() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges = {m: {t for t, _ in ts} for m, ts in imports(modules()).items()}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_every_import_points_down_a_layer():
    assert not violations(), "\n".join(violations())


def test_no_import_loops():
    assert not loops(), loops()


def test_the_checks_catch_an_upward_import_and_a_loop(tmp_path, monkeypatch):
    pkg = tmp_path / "cmrlib"
    for rel, text in {"__init__.py": "", "errors.py": "from cmrlib.runs import store\n",
                      "runs/__init__.py": "", "runs/store.py": "def f():\n    from cmrlib import errors\n"}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    monkeypatch.setattr(__import__(__name__), "SRC", pkg)
    assert violations() == ["cmrlib.errors imports cmrlib.runs.store (layer 5 from layer 0)"]
    assert loops() == [["cmrlib.errors", "cmrlib.runs.store"]]


if __name__ == "__main__":      # the counts the layout is judged by
    edges = imports(modules())
    n = sum(len(t) for t in edges.values())
    inner = sum(1 for t in edges.values() for _, f in t if f)
    print(f"{len(edges)} modules, {n} module-to-module imports, {inner} of them inside functions; "
          f"{len(loops())} loop(s), {len(violations())} upward import(s)")
