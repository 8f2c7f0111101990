"""The backplane: shared state and cross-node delivery.

One protocol (:class:`~rtchub.cluster.backplane.Backplane`), an in-memory default
and (later) a Redis implementation, chosen in exactly one factory
(:func:`~rtchub.cluster.factory.create_backplane`).
"""
