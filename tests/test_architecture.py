"""The data flow is one way, and this test is where it is written down.

    models + data -> snapshots -> measurement -> records -> run store -> report

Every module of the installed package is parsed (imports anywhere in the file, function-level
ones included) and checked against the rules below; a violation fails naming the module, the
line and the import or call.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import ganrobust

# Stages, lowest first: a module may import its own layer and the layers before it, never one after.
# The pipelines (one per command) conduct the stages and hand the report to the CLI, so they sit
# above reporting; the CLI is the top.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("ganrobust.conventions", "ganrobust.beta", "ganrobust.stats", "ganrobust.diagnostics", "ganrobust.module_state",
                    "ganrobust.environment", "ganrobust.errors", "ganrobust.config", "ganrobust.metrics", "ganrobust.records",
                    "ganrobust.scorer", "ganrobust.optimizers",
                    # intervals for correlated counts (clustered steps, paired probes), beside stats
                    "ganrobust.correlated",
                    # copying a user's module (spectral norm after a training forward, hooks, buffers)
                    "ganrobust.module_copy",
                    # what a scorer learns once per model (batch coupling, batch sizes, channels-last)
                    "ganrobust.model_checks",
                    # torch.distributed plumbing (process group, sharding, gathers): config and torch only
                    "ganrobust.distributed",
                    # a leaf: the precision vocabulary and host facts (scorer and environment read it)
                    "ganrobust.attacks.precision")),
    ("models and data", ("ganrobust.models", "ganrobust.data", "ganrobust.image_folder", "ganrobust.snapshots",
                         # how G and D are called (conditions, StyleGAN, custom): models' calling conventions
                         "ganrobust.gan_call", "ganrobust.gan_check", "ganrobust.recipes")),
    ("attacks", ("ganrobust.attacks",)),
    ("adversarial training", ("ganrobust.robust",)),
    # the hook's pure step measurer and the typed steps it reads and returns (tensors in, records out)
    ("measurement", ("ganrobust.measure", "ganrobust.watching.measurer", "ganrobust.watching.steps")),
    # the run store, and the GAN families its one loading step dispatches to (each family reads
    # through the store's reader and builds its networks with runs.architectures)
    ("run store", ("ganrobust.runs", "ganrobust.families")),
    # the hook's parts (observer, snapshot store, sharding, sinks, conductor) and the façade that wires them
    ("hook and trainer", ("ganrobust.capture", "ganrobust.hook", "ganrobust.watching", "ganrobust.train",
                          "ganrobust.background")),
    ("reporting", ("ganrobust.report",)),
    ("pipelines", ("ganrobust.pipeline",)),
    ("command line", ("ganrobust.cli",)),
]

# File-system access: the run store (run directories, checkpoints), reporting (its own output
# directories), data loading (the user's sample files) and the host facts precision reads.
FILE_IO_ALLOWED = ("ganrobust.runs", "ganrobust.report", "ganrobust.data", "ganrobust.image_folder",
                   "ganrobust.attacks.precision")
FILE_IO_CALLS = {"open", "write_text", "read_text", "write_bytes", "read_bytes", "mkdir", "unlink", "rmtree",
                 "savez", "savez_compressed", "save_file", "load_file"}
FILE_IO_ATTRS = {("torch", "save"), ("torch", "load"), ("np", "save"), ("np", "load"), ("json", "dump"),
                 ("json", "load")}
IO_MODULES = ("pathlib", "os", "shutil", "json", "pickle", "io", "safetensors", "tempfile", "glob")
# A string constant that *is* a path inside a run directory (sentences in help texts may name files).
RUN_PATH = re.compile(r"^(manifest\.json|steps\.jsonl|probes\.safetensors|checkpoint\.pt|snapshots/.*|samples/.*|"
                      r"[dg]_\d*.*\.safetensors|step_.*\.safetensors)$")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module


def _modules() -> list[Module]:
    names = ["ganrobust"] + [m.name for m in pkgutil.walk_packages(ganrobust.__path__, "ganrobust.")]
    out = []
    for name in names:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        path = Path(spec.origin)
        out.append(Module(name, path, ast.parse(path.read_text(), str(path))))
    return out


MODULES = _modules()
NAMES = {m.name for m in MODULES}


def _layer(name: str) -> int | None:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    return None


def _package(module: Module) -> str:
    return module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]


def _imports(module: Module) -> list[tuple[int, str, str]]:
    """(line, imported module, how it was written) for every import in the file."""
    out = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, f"import {a.name}") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = _package(module).split(".")
                base = ".".join(parent[: len(parent) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                written = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                out.append((node.lineno, target if target in NAMES else base, written))
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_every_module_belongs_to_a_stage() -> None:
    homeless = sorted(m.name for m in MODULES if m.name != "ganrobust" and _layer(m.name) is None)
    assert not homeless, f"modules in no layer of tests/test_architecture.py: {homeless}; give each its stage"


def _flow_violations(modules: list[Module]) -> list[str]:
    violations = []
    for module in modules:
        if module.name == "ganrobust":
            continue
        own = _layer(module.name)
        for line, target, written in _imports(module):
            if not target.startswith("ganrobust"):
                continue
            if target == "ganrobust":
                if written != "from ganrobust import __version__":
                    violations.append(f"{module.name}:{line} `{written}`: import the module, not the package root")
                continue
            layer = _layer(target)
            if layer is not None and own is not None and layer > own:
                violations.append(f"{module.name}:{line} `{written}`: {LAYERS[own][0]} must not import "
                                  f"{LAYERS[layer][0]} ({target})")
    return violations


def test_imports_flow_one_way() -> None:
    """Nothing imports a later stage: measurement knows no run store, nothing below reporting imports
    it, nothing but the CLI imports the CLI. The package root is the public API: other modules
    import only ``__version__`` from it."""
    violations = _flow_violations(MODULES)
    assert not violations, "imports against the one-way flow:\n" + "\n".join(violations)


PURE = ("ganrobust.measure", "ganrobust.watching.measurer", "ganrobust.watching.steps")


def test_measurement_is_pure() -> None:
    """Tensors in, typed results out: no module of ganrobust.measure, nor the hook's step measurer,
    imports a file-system module."""
    violations = [f"{m.name}:{line} `{written}`" for m in MODULES if m.name.startswith(PURE)
                  for line, target, written in _imports(m) if target.split(".")[0] in IO_MODULES]
    assert not violations, "measurement touching the file system:\n" + "\n".join(violations)


def _file_violations(modules: list[Module]) -> list[str]:
    violations = []
    for module in modules:
        if module.name.startswith(FILE_IO_ALLOWED):
            continue
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
            if (isinstance(func, ast.Name) and name == "open") or (isinstance(func, ast.Attribute) and (
                    name in FILE_IO_CALLS - {"open"} or (owner, name) in FILE_IO_ATTRS)):
                violations.append(f"{module.name}:{node.lineno} calls {ast.unparse(func)}()")
        for line, target, written in _imports(module):
            if target.split(".")[0] == "safetensors":
                violations.append(f"{module.name}:{line} `{written}`")
    return violations


def test_only_the_run_store_and_reporting_touch_files() -> None:
    violations = _file_violations(MODULES)
    assert not violations, ("file access outside the run store and reporting (ganrobust.runs, ganrobust.report):\n"
                            + "\n".join(violations))


def test_only_the_run_store_names_run_files() -> None:
    """Paths inside a run directory are built in ganrobust.runs alone."""
    violations = []
    for module in MODULES:
        if module.name.startswith("ganrobust.runs"):
            continue
        docs = _docstrings(module.tree)
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                    and RUN_PATH.match(node.value):
                violations.append(f"{module.name}:{node.lineno} {node.value!r}")
    assert not violations, "run-directory paths named outside ganrobust.runs:\n" + "\n".join(violations)


def test_only_the_command_line_prints() -> None:
    violations = [f"{m.name}:{node.lineno}" for m in MODULES if not m.name.startswith("ganrobust.cli")
                  for node in ast.walk(m.tree) if isinstance(node, ast.Call)
                  and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert not violations, "print() outside ganrobust.cli:\n" + "\n".join(violations)


def test_the_rules_catch_a_violation(tmp_path) -> None:
    """The checks themselves, on a module written to break them: a measurement module importing the
    run store inside a function and reporting at the top, and opening a file."""
    bad = Module("ganrobust.measure.bad", tmp_path / "bad.py", ast.parse(
        "from ganrobust.report.files import write_report\n"
        "def f():\n    from ganrobust.runs import read_run\n    return open('x')\n"))
    flow = _flow_violations([bad])
    assert flow == ["ganrobust.measure.bad:1 `from ganrobust.report.files import write_report`: measurement must "
                    "not import reporting (ganrobust.report.files)",
                    "ganrobust.measure.bad:3 `from ganrobust.runs import read_run`: measurement must not import "
                    "run store (ganrobust.runs)"]
    assert _file_violations([bad]) == ["ganrobust.measure.bad:4 calls open()"]
