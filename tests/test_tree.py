"""Execution trees (query_api/shape.build_tree): orphans stay visible, cycles are broken, parents
that arrive late are attached; and the same through GET /api/runs/{id}/trace on a real store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from query_api.shape import build_tree

COLUMNS = (
    "run_id",
    "event_id",
    "parent_event_id",
    "event_type",
    "name",
    "agent_name",
    "start_ns",
    "end_ns",
    "duration_ns",
    "status",
    "status_message",
    "model",
    "provider",
    "tokens_in",
    "tokens_out",
    "tokens_total",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "cost_source",
    "tool_name",
    "tool_call_id",
    "session_id",
    "user_id",
    "convention",
    "source",
    "input",
    "output",
    "attributes",
)


def rows(*edges: tuple[str, str | None]) -> list[dict]:
    """(event_id, parent_event_id) pairs in time order, as run_events.sql returns them."""
    out = []
    for index, (event_id, parent) in enumerate(edges):
        row = dict.fromkeys(COLUMNS)
        row.update(
            run_id="r",
            event_id=event_id,
            parent_event_id=parent,
            event_type="span",
            status="unset",
            start_ns=index * 1_000_000,
            attributes="{}",
        )
        out.append(row)
    return out


def shape_of(nodes: list[dict]) -> list:
    """(event_id, depth, flags, children) nested, for compact assertions."""
    return [
        (
            n["event_id"],
            n["depth"],
            "orphan" if n["orphan"] else "cycle" if n["cycle"] else "",
            shape_of(n["children"]),
        )
        for n in nodes
    ]


def all_ids(nodes: list[dict]) -> list[str]:
    return [i for n in nodes for i in (n["event_id"], *all_ids(n["children"]))]


def test_nested_tree_with_depths_in_time_order():
    tree = build_tree(rows(("a", None), ("b", "a"), ("c", "b"), ("d", "a"), ("e", None)))
    assert shape_of(tree) == [
        ("a", 1, "", [("b", 2, "", [("c", 3, "", [])]), ("d", 2, "", [])]),
        ("e", 1, "", []),
    ]
    assert tree[0]["children"][0]["parent_run_id"] == "a"


def test_orphan_is_a_flagged_root_that_keeps_its_children():
    tree = build_tree(rows(("root", None), ("lost", "never-arrived"), ("kid", "lost")))
    assert shape_of(tree) == [("root", 1, "", []), ("lost", 1, "orphan", [("kid", 2, "", [])])]
    assert tree[1]["parent_event_id"] == "never-arrived"


def test_child_listed_before_its_parent_is_still_attached():
    tree = build_tree(rows(("child", "parent"), ("parent", None)))
    assert shape_of(tree) == [("parent", 1, "", [("child", 2, "", [])])]


@pytest.mark.parametrize(
    "edges",
    [
        (("a", "b"), ("b", "a")),
        (("a", "c"), ("b", "a"), ("c", "b")),
        (("a", "c"), ("b", "a"), ("c", "b"), ("tail", "b")),
        (("root", None), ("a", "b"), ("b", "a"), ("x", "root")),
    ],
    ids=["two-cycle", "three-cycle", "cycle-with-tail", "cycle-beside-a-tree"],
)
def test_cycles_are_broken_and_every_event_shown_once(edges):
    tree = build_tree(rows(*edges))
    ids = all_ids(tree)
    assert sorted(ids) == sorted(e for e, _ in edges)
    cycle_roots = [n for n in tree if n["cycle"]]
    assert len(cycle_roots) == 1 and cycle_roots[0]["depth"] == 1
    assert cycle_roots[0]["event_id"] == "a"


def test_two_cycle_shape():
    assert shape_of(build_tree(rows(("a", "b"), ("b", "a")))) == [("a", 1, "cycle", [("b", 2, "", [])])]


def test_self_parent_is_a_root():
    assert shape_of(build_tree(rows(("a", "a"), ("b", "a")))) == [("a", 1, "", [("b", 2, "", [])])]


def test_a_repeated_event_is_shown_once():
    assert all_ids(build_tree(rows(("a", None), ("a", None), ("b", "a")))) == ["a", "b"]


def test_a_deep_chain_does_not_recurse():
    depth = 20_000
    tree = build_tree(rows(*[(f"e{i}", f"e{i - 1}" if i else None) for i in range(depth)]))
    node, deepest = tree[0], 1
    while node["children"]:
        node = node["children"][0]
        deepest = node["depth"]
    assert deepest == depth


# --- through the API, with parents arriving in a later request --------------------------------


def post(api, *events):
    body = {
        "events": [
            {
                "run_id": "late",
                "event_id": event_id,
                "parent_event_id": parent,
                "event_type": "step",
                "agent_name": "tree_agent",
                "timestamp": f"2024-11-04T10:30:0{second}Z",
            }
            for event_id, parent, second in events
        ]
    }
    assert api.post("/api/events", json=body).json()["count"] == len(events)


def test_late_parent_is_attached_once_it_arrives(store):
    api = TestClient(create_app(store))
    post(api, ("child", "parent", 2), ("grandchild", "child", 3))
    before = api.get("/api/runs/late/trace").json()["execution_tree"]
    assert shape_of(before) == [("child", 1, "orphan", [("grandchild", 2, "", [])])]
    post(api, ("parent", None, 1))
    after = api.get("/api/runs/late/trace").json()
    assert shape_of(after["execution_tree"]) == [
        ("parent", 1, "", [("child", 2, "", [("grandchild", 3, "", [])])])
    ]
    assert after["event_count"] == 3


def test_cycle_through_the_api(store):
    api = TestClient(create_app(store))
    post(api, ("a", "b", 1), ("b", "a", 2))
    tree = api.get("/api/runs/late/trace").json()["execution_tree"]
    assert shape_of(tree) == [("a", 1, "cycle", [("b", 2, "", [])])]
