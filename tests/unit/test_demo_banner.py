"""The demo's banner never breaks a link across lines, however narrow the terminal (issue #17)."""

from __future__ import annotations

import io

from rich.console import Console

from devstack import demo
from callbridge.core.settings import Settings


def test_every_link_of_the_banner_is_whole_on_one_line_in_a_narrow_terminal(monkeypatch) -> None:
    settings = Settings()
    agent = {"id": "0f9a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"}
    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=40, highlight=False, color_system=None))
    demo._print_where_to_look(settings, agent)
    printed = out.getvalue().splitlines()
    for _, link in demo.where_to_look(settings, agent):
        assert any(line.strip() == link for line in printed), link
