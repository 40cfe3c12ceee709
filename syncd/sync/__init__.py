"""The sync core: what one cycle decides and does.

``actions`` holds the :class:`~syncd.sync.actions.View` and the action types; ``plan`` (pure)
turns a view into a plan, every decision included (``rails``, the safety rails, is part of it);
``poll`` reads Kizen's side; ``lanes`` applies the plan, side by side by UID, and ``apply``
performs each action, one handler per action type, with ``payloads`` building what Kizen is
sent; ``recovery`` keeps a cycle from duplicating (the journal, imported items, adoption);
``commit`` records what a real run found; ``report`` tells it.
"""
