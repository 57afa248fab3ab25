"""The README's Python examples run as written, in order, from the project's root."""

import re

import pytest

from tdlib.layout import project_root


def python_blocks() -> list[str]:
    text = (project_root() / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readme_has_examples():
    assert len(python_blocks()) >= 3


def test_the_readme_python_examples_run(monkeypatch, capsys):
    monkeypatch.chdir(project_root())
    namespace: dict = {}
    for block in python_blocks():
        try:
            exec(compile(block, "README.md", "exec"), namespace)
        except Exception as err:  # noqa: BLE001 - name the block that failed
            pytest.fail(f"README example failed ({type(err).__name__}: {err}):\n{block}")
    printed = capsys.readouterr().out.splitlines()
    assert namespace["env"].parse(printed[-1])  # the decoded edit printed a valid program
