"""Imports go one way: the module graph of src/talkface (every import, including those inside functions) has no
circle."""

from __future__ import annotations

from pathlib import Path

from import_graph import cycles, import_graph

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_import_graph_has_no_circle():
    graph = import_graph(SRC)
    assert "talkface.models.expert_io" in graph["talkface.models.generator_io"]  # the graph sees real edges
    assert cycles(graph) == []


def test_a_circle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
