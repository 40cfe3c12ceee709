"""The sync core: what one cycle decides and does.

``actions`` holds the :class:`~syncd.sync.actions.View` and the action types; ``plan`` (pure)
turns a view into actions; ``poll`` reads Kizen's side; ``apply`` performs the actions, one
handler per action type; ``recovery`` keeps a cycle from duplicating or deleting in bulk (the
journal, adoption, the rails); ``commit`` records what a real run found; ``report`` tells it.
"""
