"""MiniGrid's MultiRoom-N6 with a longer step limit, registered for the bench scripts
(``--import minigrid_long``; bench/ is on sys.path when a script in it runs).

The registered task ends after 20 steps a room, 120 in all. Phase 1 returns along the random
trajectories it found, several times longer than the shortest path, so within 120 steps it
does not get past the third room (count-based selection, 3M frames, seed 0). With 1,000 steps
the comparison of selectors measures exploration rather than the limit.
"""

import gymnasium as gym

gym.register(
    "MiniGrid-MultiRoom-N6-Long-v0",
    entry_point="minigrid.envs:MultiRoomEnv",
    kwargs={"minNumRooms": 6, "maxNumRooms": 6, "max_steps": 1000},
)
