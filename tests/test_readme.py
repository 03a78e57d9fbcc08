"""The README's example runs as written, and does what its prose says (it learns)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_mlp_example_runs_and_learns(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    accuracy = (namespace["pred"].numpy() == namespace["y_test"]).mean()
    assert accuracy > 0.85, f"the README's MLP reached only {accuracy:.1%} held-out accuracy"
    assert "held-out accuracy" in capsys.readouterr().out
