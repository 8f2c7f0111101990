"""The live dashboard: an operator's view of every feature at ``/dashboard``.

Off unless ``DASHBOARD_TOKEN`` is set. It reads the other features only through the
read-only protocols of :mod:`.ports`, which the composition root wires
(:mod:`rtchub.views`); features never import each other.
"""
