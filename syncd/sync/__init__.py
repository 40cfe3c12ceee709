"""The sync core: what one cycle decides and does.

``plan`` (pure) turns a :class:`~syncd.sync.actions.View` into actions, ``apply`` performs them one
handler per action type, ``recovery`` keeps a cycle from duplicating or deleting in bulk (the
journal, adoption, the rails), and ``report`` tells what a cycle did.
"""
