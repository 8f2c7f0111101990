"""features/calls: seed 003 call rooms (mesh or SFU) on the rooms dialect and from Python."""
