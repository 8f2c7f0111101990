"""One package per feature (a seed system), each with the same shape: ``routes`` (what it
mounts), ``handler`` (one connection), ``wire`` (its dialect), ``service`` (rules over the
store, events to the courier), ``events`` and ``rules`` (pure). ``rtchub.app`` lists them."""
