"""Progress off a terminal: plain lines, never a bar's carriage-return frames."""

from stores import progress


def test_off_a_terminal_loops_print_plain_lines_and_a_closing_one(capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # a line per step
    seen = list(progress.progress(range(2, 5), desc="fold 0", unit="epoch", initial=2, total=5))
    assert seen == [2, 3, 4]
    lines = [line.rsplit(",", 1)[0] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["fold 0: 3/5 epoch", "fold 0: 4/5 epoch", "fold 0: 5/5 epoch", "fold 0: done, 5/5 epoch"]


def test_updates_postfix_and_context_manager(capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 3600.0)  # only the closing line
    with progress.progress(total=4, desc="selection rounds", unit="round") as bar:
        assert isinstance(bar, progress.PlainProgress)
        bar.set_postfix(strategy="design", seed=3)
        for _ in range(4):
            bar.update()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\r" not in err
    assert err.startswith("selection rounds: done, 4/4 round (strategy=design, seed=3), ")


def test_hidden_unless_shown(capsys):
    assert list(progress.progress([1, 2], desc="x", show=False)) == [1, 2]
    assert capsys.readouterr().err == ""
