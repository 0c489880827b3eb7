"""Scheduler table tests: whole GPUs, shares, refusals with their exact message, placement."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from llmos.gpu.request import GPURequest
from llmos.gpu.scheduler import GPUState, Unschedulable, schedule

from .helpers import H100X8, MIXED, RTX4090, GiB, held, node

Setup = Callable[[], list[GPUState]]


def with_held(path: object, **by_index: list[object]) -> Setup:
    """The fixture's GPUs, with allocations on some: ``gpu0=[held(...)]``."""

    def build() -> list[GPUState]:
        gpus = node(path)  # type: ignore[arg-type]
        return [
            dataclasses.replace(g, allocations=tuple(by_index.get(f"gpu{g.index}", ())))  # type: ignore[arg-type]
            for g in gpus
        ]

    return build


def mixed_h100_4090() -> list[GPUState]:
    """The issue's example: an H100 with 60 GiB taken, and an idle RTX 4090."""
    h100, rtx = node(H100X8)[0], node(RTX4090)[0]
    return [
        dataclasses.replace(h100, allocations=(held("big", 60),)),
        dataclasses.replace(rtx, index=1, device="node-gpu1"),
    ]


def unhealthy(index: int, setup: Setup, reason: str) -> Setup:
    def build() -> list[GPUState]:
        return [
            dataclasses.replace(g, healthy=False, health_reason=reason) if g.index == index else g
            for g in setup()
        ]

    return build


def flagged(setup: Setup, **flags: bool) -> Setup:
    def build() -> list[GPUState]:
        return [dataclasses.replace(g, **flags) for g in setup()]  # type: ignore[arg-type]

    return build


WHOLE = GPURequest(count=1)
PLACED = [
    # (case, GPUs, request, policy, chosen indexes)
    ("one whole GPU: the first", with_held(H100X8), WHOLE, "binpack", (0,)),
    (
        "whole GPUs skip shared ones",
        with_held(H100X8, gpu0=[held("a", 1)]),
        GPURequest(2),
        "binpack",
        (1, 2),
    ),
    ("eight whole GPUs: all of them", with_held(H100X8), GPURequest(8), "binpack", tuple(range(8))),
    (
        "a share next to another",
        with_held(RTX4090, gpu0=[held("a", 10)]),
        GPURequest(memory_bytes=10 * GiB),
        "binpack",
        (0,),
    ),
    (
        "binpack: the fullest GPU that fits",
        with_held(MIXED, gpu0=[held("a", 20)]),
        GPURequest(memory_bytes=10 * GiB),
        "binpack",
        (0,),
    ),
    (
        "spread: the emptiest GPU",
        with_held(MIXED, gpu0=[held("a", 20)]),
        GPURequest(memory_bytes=10 * GiB),
        "spread",
        (1,),
    ),
    (
        "binpack: the smallest GPU that fits",
        with_held(MIXED),
        GPURequest(memory_bytes=16 * GiB),
        "binpack",
        (2,),
    ),
    (
        "spread: ties go to the lower index",
        with_held(MIXED),
        GPURequest(memory_bytes=16 * GiB),
        "spread",
        (0,),
    ),
    (
        "a fraction is of each GPU's own memory",
        with_held(MIXED, gpu0=[held("a", 30)]),
        GPURequest(fraction=0.5),
        "binpack",
        (2,),
    ),
    (
        "spread with a fraction",
        with_held(MIXED, gpu0=[held("a", 30)]),
        GPURequest(fraction=0.5),
        "spread",
        (1,),
    ),
    (
        "a share on each of two GPUs",
        with_held(MIXED),
        GPURequest(count=2, memory_bytes=30 * GiB),
        "binpack",
        (0, 1),
    ),
    (
        "two shares pack onto one GPU's neighbour",
        with_held(MIXED, gpu1=[held("a", 5)]),
        GPURequest(memory_bytes=5 * GiB),
        "binpack",
        (2,),
    ),
    (
        "a held-whole GPU takes no share",
        with_held(MIXED, gpu2=[held("a", 22, whole=True)]),
        GPURequest(memory_bytes=1 * GiB),
        "binpack",
        (0,),
    ),
    (
        "unhealthy GPUs are skipped",
        unhealthy(0, with_held(MIXED), "XID 79"),
        WHOLE,
        "binpack",
        (1,),
    ),
    (
        "a share fills a GPU exactly",
        with_held(MIXED),
        GPURequest(memory_bytes=40 * GiB),
        "binpack",
        (0,),
    ),
]


@pytest.mark.parametrize(
    ("case", "setup", "request_", "policy", "chosen"), PLACED, ids=[p[0] for p in PLACED]
)
def test_places(
    case: str, setup: Setup, request_: GPURequest, policy: str, chosen: tuple[int, ...]
) -> None:
    result = schedule(setup(), request_, policy)  # type: ignore[arg-type]
    assert tuple(a.index for a in result) == chosen
    for assignment in result:
        assert assignment.whole == request_.whole
        assert assignment.memory_bytes == request_.need(assignment.memory_total_bytes)
        assert assignment.device == f"node-gpu{assignment.index}"


REFUSED = [
    # (case, GPUs, request, exact message)
    (
        "the issue's example",
        mixed_h100_4090,
        GPURequest(memory_bytes=40 * GiB),
        "needs 1 GPU with 40 GiB free; largest free is 24 GiB on GPU 1",
    ),
    (
        "more than an A100 40GB holds",
        with_held(MIXED),
        GPURequest(memory_bytes=48 * GiB),
        "needs 1 GPU with 48 GiB free; the largest GPU on this node has 40 GiB of memory (GPU 0)",
    ),
    (
        "over-commit of a shared GPU",
        with_held(RTX4090, gpu0=[held("a", 16)]),
        GPURequest(memory_bytes=10 * GiB),
        "needs 1 GPU with 10 GiB free; largest free is 8 GiB on GPU 0",
    ),
    (
        "a fraction that no GPU has free",
        with_held(MIXED, gpu0=[held("a", 30)], gpu1=[held("b", 30)], gpu2=[held("c", 12)]),
        GPURequest(fraction=0.5),
        "needs 1 GPU with 50% of its memory free; largest free is 47% (10.5 GiB) on GPU 2",
    ),
    (
        "two shares, one GPU with room",
        with_held(MIXED, gpu1=[held("a", 20)]),
        GPURequest(count=2, memory_bytes=30 * GiB),
        "needs 2 GPUs with 30 GiB free; only GPU 0 has that; largest free elsewhere is 22.5 GiB on GPU 2",
    ),
    (
        "more whole GPUs than the node has",
        with_held(H100X8),
        GPURequest(count=9),
        "needs 9 whole GPUs; this node has only 8 GPUs",
    ),
    (
        "two shares on a one-GPU node",
        with_held(RTX4090),
        GPURequest(count=2, memory_bytes=1 * GiB),
        "needs 2 GPUs with 1 GiB free; this node has only 1 GPU",
    ),
    (
        "two half GPUs, one of two GPUs unhealthy",
        unhealthy(1, with_held(MIXED), "XID 79 (GPU has fallen off the bus)"),
        GPURequest(count=3, fraction=0.5),
        "needs 3 GPUs with 50% of its memory free; this node has only 2 GPUs that can take "
        "work (GPU 0, GPU 2); GPU 1 is Unhealthy: XID 79 (GPU has fallen off the bus)",
    ),
    (
        "the only GPU is shared",
        with_held(RTX4090, gpu0=[held("chat", 4), held("embed", 2)]),
        WHOLE,
        "needs 1 whole GPU; none is free: GPU 0 is in use by default/chat, default/embed",
    ),
    (
        "the only GPU is held whole",
        with_held(RTX4090, gpu0=[held("a", 24, whole=True)]),
        GPURequest(memory_bytes=1 * GiB),
        "needs 1 GPU with 1 GiB free; largest free is 0 MiB on GPU 0 (held whole by default/a)",
    ),
    (
        "unhealthy GPUs are named",
        unhealthy(1, with_held(MIXED, gpu0=[held("a", 20)]), "XID 79 (GPU has fallen off the bus)"),
        GPURequest(memory_bytes=30 * GiB),
        "needs 1 GPU with 30 GiB free; largest free is 22.5 GiB on GPU 2; "
        "GPU 1 is Unhealthy: XID 79 (GPU has fallen off the bus)",
    ),
    (
        "no GPU can take work",
        flagged(with_held(RTX4090), mig_enabled=True),
        WHOLE,
        "needs 1 whole GPU; no GPU can take work: GPU 0 is in MIG mode (MIG instances are not scheduled)",
    ),
    (
        "cordoned",
        flagged(with_held(RTX4090), cordoned=True),
        GPURequest(memory_bytes=20 * GiB),
        "needs 1 GPU with 20 GiB free; no GPU can take work: GPU 0 is cordoned",
    ),
    (
        "a CPU-only node",
        list,
        GPURequest(memory_bytes=20 * GiB),
        "needs 1 GPU with 20 GiB free; this node has no GPU",
    ),
]


@pytest.mark.parametrize(
    ("case", "setup", "request_", "message"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_refuses_with_the_shortfall(
    case: str, setup: Setup, request_: GPURequest, message: str
) -> None:
    with pytest.raises(Unschedulable) as caught:
        schedule(setup(), request_)
    assert str(caught.value) == message
    # Only what an empty node could not take either is beyond waiting for.
    assert caught.value.exceeds_node == (case in EXCEEDS_NODE)


EXCEEDS_NODE = {
    "more than an A100 40GB holds",
    "more whole GPUs than the node has",
    "two shares on a one-GPU node",
    "a CPU-only node",
}


@pytest.mark.parametrize(
    ("policy", "counts"), [("binpack", [1, 0, 2]), ("spread", [2, 1, 0])], ids=["binpack", "spread"]
)
def test_repeated_shares_pack_or_spread(policy: str, counts: list[int]) -> None:
    """Three 10 GiB shares in turn: binpack fills the L4 first, spread uses the A100s."""
    gpus = node(MIXED)
    for n in range(3):
        (chosen,) = schedule(gpus, GPURequest(memory_bytes=10 * GiB), policy)  # type: ignore[arg-type]
        gpus = [
            dataclasses.replace(g, allocations=(*g.allocations, held(f"s{n}", 10)))
            if g.index == chosen.index
            else g
            for g in gpus
        ]
    assert [len(g.allocations) for g in gpus] == counts
