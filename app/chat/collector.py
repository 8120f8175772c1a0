"""Rendering with the cyclic garbage collector paused: a render allocates tens of thousands of
small acyclic objects, and the collections they trigger walk every live object of the process.

Example: with collector_paused(): render(...)   # gc.isenabled() is False inside, restored after
         with old_objects_frozen(): inspect(...)  # the collector skips what existed before

Design concession: a reference cycle made while paused waits for the first collection after it
resumes; reference counting frees everything else at once, as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while rendering.

    A render allocates tens of thousands of small acyclic objects (tokens, offsets), which
    trigger collections that walk every live object of the process (the loaded vocabularies
    included): a third of the render time for 8k tokens. Reference counting still frees
    everything; the collector resumes afterwards (only if it was running).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def old_objects_frozen() -> Iterator[None]:
    """Hide every object alive now from the collector until the block ends (`gc.freeze`).

    A long run (a dataset inspection) triggers full collections, each of which walks every
    live object: the imported modules, the loaded vocabularies, the caches, hundreds of
    thousands in all, about a tenth of a 5,000-row inspection's CPU time. Frozen, they are
    skipped; what the run itself makes is collected as usual. Afterwards they are collectable
    again (`gc.unfreeze`): a cycle among them that became garbage meanwhile is freed then. A
    process that froze its objects itself (the server, at start-up) is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def freeze_once() -> None:
    """Collect, then freeze what is alive (the imported modules, the warmed parts), unless the
    process froze its objects already: at start-up, so the collections that requests (or a
    worker's chunks) trigger never walk it again."""
    if not gc.get_freeze_count():
        gc.collect()
        gc.freeze()
