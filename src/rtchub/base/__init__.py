"""What every layer may use: the clock, task ownership, counters, rate windows, IDs, and
what a feature knows of a connection (:mod:`rtchub.base.connection`)."""
