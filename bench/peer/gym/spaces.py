"""``gym.spaces``, which the peer imports for its robot tasks (not run here)."""

from gymnasium.spaces import *  # noqa: F403
