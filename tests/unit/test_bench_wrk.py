"""The wrk cross-check of the benchmarks (`bench/wrk.py`, `bench/cross_check.py`) without running wrk.

Running wrk against a real bridge is the bench smoke's business (`tests/e2e/test_bench_smoke.py`,
when wrk is installed). Here: the generated Lua script carries any header value intact, a request
line cannot smuggle a line break, and without wrk the benchmarks say so loudly, record
`wrk: not installed` once, and add no figure instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import cross_check, wrk
from bench.context import Context


def test_lua_strings_escape_quotes_backslashes_and_non_ascii() -> None:
    assert wrk._lua_string('a"b\\c') == '"a\\034b\\092c"'
    assert wrk._lua_string("é\n") == '"\\195\\169\\010"'
    assert wrk._lua_string("Bearer sk_test_abc-123") == '"Bearer sk_test_abc-123"'


def test_the_script_reads_its_requests_file_and_prints_one_json_line(tmp_path: Path) -> None:
    text = wrk.script(tmp_path / "requests.tsv", {"Authorization": "Bearer x"}, threads=2)
    assert wrk._lua_string(str(tmp_path / "requests.tsv")) in text
    assert '["Authorization"] = "Bearer x"' in text
    assert "local thread_count = 2" in text
    assert wrk.MARK + '{"requests": %d' in text  # the line `run` looks for
    assert "%(" not in text  # every template field was filled


def test_a_request_line_refuses_tabs_and_line_breaks() -> None:
    assert wrk._line("POST", "/v1/callbacks/daraja/stk/t", '{"a": 1}') == 'POST\t/v1/callbacks/daraja/stk/t\t{"a": 1}'
    for body in ("a\tb", "a\nb", "a\rb"):
        with pytest.raises(ValueError):
            wrk._line("POST", "/", body)


def test_without_wrk_the_run_says_so_loudly_once_and_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(wrk.shutil, "which", lambda name: None)
    ctx = Context(smoke=True, reps=1, work=tmp_path)

    assert wrk.version() == wrk.NOT_INSTALLED
    assert cross_check.available(ctx) is False
    assert cross_check.available(ctx) is False
    assert cross_check.b6(ctx, None, "sqlite", "page", "/v1/payments", {}, 4, None) == []  # type: ignore[arg-type]

    notes = [note for note in ctx.notes if wrk.NOT_INSTALLED in note]
    assert len(notes) == 1
    assert "failed" not in notes[0]  # a missing witness is not a failed case
    assert capsys.readouterr().err.count(wrk.NOT_INSTALLED) == 1
    with pytest.raises(RuntimeError, match=wrk.NOT_INSTALLED):
        wrk.run(None, [], headers={}, seconds=1, connections=1)  # type: ignore[arg-type]
