"""Settings for every tier."""

from hypothesis import settings

# The machines tests run on are shared: one slow example is load, not a failure. Hypothesis'
# per-example deadline would turn it into one, so it is off; the example counts stay as set.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")
