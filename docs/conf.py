"""Sphinx configuration of the course website: `make site` builds it into docs/_build/html.

Sources: the tutorials as they are (tutorials/NN_name.py, jupytext percent scripts, read by
myst-nb through jupytext and executed in fast mode), an API reference from the docstrings, the
committed benchmark results and the `minigrad derive` table. The pages that list things (the
reading order, the benchmarks, the derive table) are written here at build time into
docs/_generated/, so a new tutorial or result file appears without editing anything.

Math is typeset by a MathJax copy that ships in the `sphinx-mathjax-offline` package and is
copied into the site: a built page loads nothing from the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
TUTORIALS = ROOT / "tutorials"
RESULTS = ROOT / "benchmarks" / "results"
GENERATED = DOCS / "_generated"
TUTORIAL_GLOB = "[0-9][0-9]_*.py"

project = "minigrad"
author = "the minigrad authors"
copyright = "the minigrad authors, MIT licence"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",   # copies its packaged MathJax 3 into _static/mathjax
]
mathjax_path = "mathjax/tex-chtml.js"   # that copy, never a CDN

html_theme = "furo"
html_title = "minigrad: the course"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"   # a nabla; without one, browsers ask for /favicon.ico
templates_path: list[str] = []
exclude_patterns = ["_build", "conf.py", "tutorials/README.md", "tutorials/figures",
                    "tutorials/*.ipynb", "**/__pycache__", "**/.ipynb_checkpoints",
                    "_generated/reading_order.md"]   # included in index.md, not a page
suppress_warnings = ["myst.header"]   # benchmarks/results/*.md start at "###", nested in a page

# --- the tutorials: read as jupytext percent scripts, executed in fast mode -----------------
# docs/tutorials is a link to ../tutorials made here (and git-ignored), so that the scripts are
# read in place: a notebook runs in its source folder, where each tutorial finds figures/ and
# ../benchmarks/ exactly as it does when run as a script. A copy would run elsewhere.
link = DOCS / "tutorials"
if not link.is_symlink():
    link.symlink_to(Path("..") / "tutorials", target_is_directory=True)

myst_enable_extensions = ["dollarmath", "amsmath"]   # the tutorials' $...$ and $$...$$
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".py": "myst-nb"}
os.environ["MINIGRAD_FAST"] = "1"      # the kernels inherit it: the tests' fast mode
os.environ.pop("MPLBACKEND", None)     # let the kernel's inline backend show the figures
nb_execution_raise_on_error = True     # a failing cell fails the build
nb_execution_timeout = 600
# A Python warning in a tutorial is an error in its kernel, so it fails the build like any other
# error. Other stderr output is shown as Jupyter shows it: minigrad's logger notes, such as
# "newly initialized: classifier.weight, ..." when a pretrained encoder gets a fresh head.
os.environ["PYTHONWARNINGS"] = "error::RuntimeWarning,error::UserWarning,error::FutureWarning"
nb_output_stderr = "show"
# Executions are cached by jupyter-cache, keyed on each notebook's code. The key does not see
# the library the code calls, so the cache lives in a folder named by a hash of everything a
# tutorial reads (minigrad, its kernels, the benchmark scripts and results): a changed library
# starts a fresh cache, and a clean clone always executes every tutorial.
nb_execution_mode = "cache"


def _tree_hash(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {
                    ".nbi", ".nbc", ".pyc"}:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CACHES = DOCS / "_build" / ".jupyter_cache"
nb_execution_cache_path = str(CACHES / _tree_hash(ROOT / "minigrad", ROOT / "kernels",
                                                  ROOT / "benchmarks"))
for stale in CACHES.glob("*"):      # the caches of earlier sources can never be hit again
    if stale.is_dir() and str(stale) != nb_execution_cache_path:
        shutil.rmtree(stale)

# --- the API reference ----------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# Each object is documented where it is defined, not again where a package re-exports it.
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"


# --- the generated pages ----------------------------------------------------------------------
def _md_cell(text: str) -> str:
    """Text for one cell of a Markdown table."""
    return text.replace("|", r"\|").replace("\n", " ")


def _tutorial_rows() -> list[tuple[str, str, str]]:
    """(docname, title, what it teaches) per tutorial, in file-name order. The description is
    the tutorial's row in tutorials/README.md's reading-order table, or, for a tutorial not
    yet listed there, the first paragraph of its introduction."""
    readme_rows = {}
    for line in (TUTORIALS / "README.md").read_text().splitlines():
        match = re.match(r"\|\s*\d+\s*\|\s*\[[^\]]*\]\((\d\d_[^)]+\.py)\)\s*\|\s*"
                         r"((?:\\\||[^|])*?)\s*\|", line)     # the cell may hold \| (a bar)
        if match:
            readme_rows[match.group(1)] = match.group(2).replace(r"\|", "|")
    rows = []
    for script in sorted(TUTORIALS.glob(TUTORIAL_GLOB)):
        lines = script.read_text().splitlines()
        start = lines.index("# %% [markdown]") + 1
        title = lines[start].lstrip("# ").strip()
        paragraph = []
        for line in lines[start + 2:]:
            if line.strip() in ("#", "") or line.startswith("# %%"):
                if paragraph:
                    break
                continue
            paragraph.append(line[2:])
        teaches = readme_rows.get(script.name, " ".join(paragraph))
        rows.append((f"tutorials/{script.stem}", title, teaches))
    return rows


def write_reading_order() -> None:
    lines = ["| # | tutorial | what it teaches |", "|---|---|---|"]
    for docname, title, teaches in _tutorial_rows():
        number, _, name = title.partition(" · ")
        lines.append(f"| {number} | {{doc}}`{_md_cell(name or title)} </{docname}>` | "
                     f"{_md_cell(teaches)} |")
    (GENERATED / "reading_order.md").write_text("\n".join(lines) + "\n")


def write_benchmarks() -> None:
    """Every committed Markdown result, then every plot, from benchmarks/results/."""
    out = ["# Benchmarks", "",
           "The committed results of `benchmarks/` (`benchmarks/results/`): each table as its "
           "script wrote it, then every plot. Tutorial 9 reads them.", ""]
    for table in sorted(RESULTS.glob("*.md")):
        out += [f"## `{table.name}`", "", f"```{{include}} ../../benchmarks/results/{table.name}",
                ":heading-offset: 1", "```", ""]
    out += ["## Plots", ""]
    for plot in sorted(RESULTS.glob("*.png")):
        out += [f"### `{plot.name}`", "", f"![{plot.stem}](../../benchmarks/results/{plot.name})",
                ""]
    (GENERATED / "benchmarks.md").write_text("\n".join(out))


def write_derivations() -> None:
    """`minigrad derive` as a table, computed now from minigrad.derivations."""
    from minigrad.derivations import inconsistencies, run_all

    claims = run_all()
    bad = inconsistencies(claims)
    if bad:
        raise RuntimeError("minigrad derive is inconsistent: " + "; ".join(bad))
    differ = sum(c.verdict == "differs" for c in claims)
    out = ["# The seed documents' claims (`minigrad derive`)", "",
           "Every number and formula the seed documents print, computed three ways by "
           "`minigrad.derivations` when this page was built: with minigrad's autograd, with a "
           "closed form, and (for a derivative) with central finite differences in float64. "
           "The same table is `minigrad derive` on the command line; tutorial 1 walks through "
           "it.", "",
           f"{len(claims)} claims: {len(claims) - differ} match, {differ} differ.", "",
           "| id | seed § | quantity | printed | computed | finite difference | verdict |",
           "|---|---|---|---:|---:|---:|---|"]
    for c in claims:
        printed = "formula" if c.printed is None else f"{c.printed:.{c.decimals}f}"
        fd = "—" if c.finite_difference is None else f"{c.finite_difference:.8g}"
        label = "why-" + c.id.replace(".", "-")
        verdict = f"**{{ref}}`{c.verdict} <{label}>`**" if c.explanation else c.verdict
        cells = [f"`{c.id}`", f"{c.seed} {c.section}", c.quantity, printed, f"{c.computed:.8g}",
                 fd, verdict]
        out.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")
    out += ["", "## Why they differ", ""]
    for c in claims:
        if c.explanation:
            out += [f"(why-{c.id.replace('.', '-')})=", "", f"**`{c.id}`** ({c.quantity}): "
                    f"{c.explanation}", ""]
    (GENERATED / "derive.md").write_text("\n".join(out) + "\n")


GENERATED.mkdir(exist_ok=True)
write_reading_order()
write_benchmarks()
write_derivations()


# --- the ops' math -----------------------------------------------------------------------------
# Each op's docstring opens with its math in plain text: "z = a * b;  dz/da = b, dz/db = a."
# The clauses of that first line that are pure formulas (no prose words) are typeset as math;
# the rest, and the prose below, stay as written.
_SYMBOLS = {"·": r" \cdot ", "*": r" \cdot ", "⊙": r" \odot ", "≤": r" \le ", "≥": r" \ge ",
            "≠": r" \ne ", "≈": r" \approx ", "≪": r" \ll ", "±": r" \pm ", "Σ": r"\sum ",
            "Π": r"\prod ", "∫": r"\int ", "σ": r"\sigma ", "β": r"\beta ", "ε": r"\varepsilon ",
            "α": r"\alpha ", "μ": r"\mu ", "φ": r"\varphi ", "Φ": r"\Phi ", "π": r"\pi ",
            "δ": r"\delta ", "ℓ": r"\ell ", "∂": r"\partial ", "½": r"\tfrac{1}{2}", "@": r" @ ",
            "ᵀ": r"^{\top}", "⟨": r"\langle ", "⟩": r"\rangle ", "→": r" \to "}
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻ˣ", "0123456789-x", strict=True))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉", "0123456789", strict=True))
_FUNCTIONS = {"exp", "log", "ln", "tanh", "sin", "cos", "max", "min"}
_NAMED = {"sign", "erf", "softmax", "softplus", "clip", "onehot", "GELU", "BCE", "einsum", "eps",
          "dim"}
_FORMULA = re.compile(r"[\w\s=+\-−/*·⊙≤≥≠≈±ΣΠ∫√()\[\]{}|,^_'.@ᵀ⟨⟩⁰-⁹⁻ˣ₀-₉½̂̄ℓ∂→]+")


_PROSE = {"at", "as", "is", "of", "in", "or", "to", "if", "on", "by", "an", "it", "be", "no"}


def _is_formula(text: str) -> bool:
    words = re.findall(r"[A-Za-z]{2,}", text)
    return ("=" in text and _FORMULA.fullmatch(text) is not None
            and text.count("(") == text.count(")")
            and all(w in _FUNCTIONS | _NAMED or (len(w) == 2 and w not in _PROSE)
                    for w in words))


def to_tex(text: str) -> str:
    """A plain-text formula of the ops' docstrings as TeX (only the notation they use)."""
    text = re.sub(r"_([A-Za-z]{2,})", r"_{\1}", text)
    text = re.sub(r"(?<![A-Za-z\\])([A-Za-z]{2,})(?![A-Za-z])", lambda m: (
        "\\" + m.group(1) + " " if m.group(1) in _FUNCTIONS
        else r"\operatorname{" + m.group(1) + "}"), text)
    text = re.sub(r"([⁰¹²³⁴⁵⁶⁷⁸⁹⁻ˣ]+)",
                  lambda m: "^{" + "".join(_SUPERSCRIPTS[c] for c in m.group(1)) + "}", text)
    text = re.sub(r"([₀-₉]+)", lambda m: "_{" + "".join(_SUBSCRIPTS[c] for c in m.group(1)) + "}",
                  text)
    text = re.sub(r"(\w)\u0302", r"\\hat{\1}", text)
    text = re.sub(r"(\w)\u0304", r"\\bar{\1}", text)
    text = re.sub(r"√\(([^()]*)\)", r"\\sqrt{\1}", text)
    text = re.sub(r"√(\w+)", r"\\sqrt{\1}", text)
    text = re.sub(r"\^\(([^()]*)\)", r"^{\1}", text)
    return "".join(_SYMBOLS.get(c, c) for c in text).replace("−", "-").strip()


def _top_level_split(text: str, sep: str) -> list[str]:
    """``text`` split at each ``sep`` outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(text):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and text.startswith(sep, k):
            parts.append(text[start:k])
            start = k + len(sep)
    return [*parts, text[start:]]


def _math_or_text(part: str) -> str:
    """A clause's part as math if it is a formula, leaving a closing remark in parentheses
    as text: "dz/db = -a/b² = -z/b (so a itself is never saved)"."""
    formula, remark = part, ""
    match = re.fullmatch(r"(.*?)\s+(\([^()]*\))", part)
    if match and not _is_formula(part) and _is_formula(match.group(1)):
        formula, remark = match.group(1), " " + match.group(2)
    return f":math:`{to_tex(formula)}`{remark}" if _is_formula(formula) else part


def _typeset_ops_math(app, what, name, obj, options, lines) -> None:
    if what != "class" or not name.startswith("minigrad.ops.") or not lines:
        return
    # the first sentence of the first line: "forward;  derivative, derivative."
    sentence, end, rest = re.split(r"(\.\s+(?=[A-Z(])|\.?\s*$)", lines[0], maxsplit=1)
    clauses = _top_level_split(sentence, ";")
    if not any(_is_formula(part.strip()) for part in _top_level_split(clauses[0], ", ")):
        return
    typeset = [", ".join(_math_or_text(p.strip()) for p in _top_level_split(clause, ", "))
               for clause in clauses]
    lines[0] = ";  ".join(typeset) + end + rest


# --- plain-text docstrings, read as reStructuredText --------------------------------------------
# The docstrings are written for a terminal: formulas with |x|, and indented formula lines right
# under a sentence. Read as reStructuredText those are substitutions and broken indentation, so
# every docstring is first made literal where it means to be: |...| escaped outside backquotes,
# and an indented run of lines (outside a list or a table) kept as a preformatted block.
_LIST_ITEM = re.compile(r"\s*([-*+]|\d+[.)]|\w+ :|:\w+)\s")
_QUOTED = re.compile(r"(``.*?``|`[^`]*`)")
_TABLE_BORDER = re.compile(r"=+( +=+)+\s*$")


def _escape_bars(line: str) -> str:
    parts = _QUOTED.split(line)
    return "".join(p if k % 2 else p.replace("|", r"\|") for k, p in enumerate(parts))


def _plain_text_blocks(app, what, name, obj, options, lines) -> None:
    out: list[str] = []
    literal = in_list = False
    borders = 0                           # of a simple table: inside it while 1 or 2
    for line in lines:
        indented = line.startswith(" ") and line.strip() != ""
        if _TABLE_BORDER.match(line):
            borders = (borders + 1) % 3
        if borders:
            out.append(line)
            continue
        if literal and (indented or not line.strip()):
            out.append(line)
            continue
        if literal:                       # the block ends: a blank line before the text
            out.append("")
            literal = False
        if not line.strip():
            in_list = False
        elif not indented:
            in_list = bool(_LIST_ITEM.match(line)) or in_list
        if indented and not in_list:     # a formula or a diagram: kept as written
            opened = next((s for s in reversed(out) if s.strip()), "").endswith("::")
            out += ["", line] if opened else ["", "::", "", line]
            literal = True
        else:
            out.append(_escape_bars(line))
    lines[:] = out


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _typeset_ops_math)
    app.connect("autodoc-process-docstring", _plain_text_blocks)
