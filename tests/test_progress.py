"""The progress line: what an 80-column terminal keeps, what logs get, and the time left."""

from __future__ import annotations

import io

from stepstone.progress import Progress, goal_state, human, line

FIRST = {"frames": 0, "seconds": 0.0}
# 1.5M of 3M frames in 150 s: 10k frames/s, so the 1.5M frames left take 150 s.
ROW = {
    "frames": 1_500_000, "seconds": 150.0, "cells": 328, "rooms": 6, "level": 0,
    "best_score": 2500.0, "success_frame": None, "workers": 2,
}  # fmt: skip


def test_80_columns_keep_the_essentials():
    text = line(ROW, 3_000_000, FIRST, 80, "ALE/MontezumaRevenge-v5", 2)
    assert len(text) < 80
    for part in ("1.5M/3M", "10k/s", "328 cells", "best 2500", "goal no", "ETA 2:30", "#####"):
        assert part in text, part


def test_wider_terminals_add_rooms_level_workers_and_the_environment():
    narrow = line(ROW, 3_000_000, FIRST, 80, "montezuma", 2)
    wide = line(ROW, 3_000_000, FIRST, 160, "montezuma", 2)
    for part in ("6 rooms", "level 0", "2/2 workers", "montezuma"):
        assert part in wide and part not in narrow, part


def test_the_bar_and_fields_stay_put_as_numbers_grow():
    early = line({**ROW, "frames": 1000, "cells": 2, "best_score": 0.0}, 3_000_000, FIRST, 100)
    late = line({**ROW, "cells": 12_345, "success_frame": 2_400_000}, 3_000_000, FIRST, 100)
    assert len(early.split()[0]) == len(late.split()[0])  # the bar
    assert ("rooms" in early) == ("rooms" in late)


def test_eta_counts_from_the_sessions_first_row():
    # resumed at 1M frames and 500 s: this session did 0.5M frames in 100 s (5k/s), so the
    # 1.5M frames left take 300 s, whatever the earlier sessions' speed was
    resumed = {"frames": 1_000_000, "seconds": 500.0}
    text = line({**ROW, "seconds": 600.0}, 3_000_000, resumed, 120)
    assert "5k/s" in text and "ETA 5:00" in text
    assert "ETA --:--" in line(resumed | {"cells": 1, "best_score": 0}, 3_000_000, resumed, 120)


def test_speed_and_time_left_follow_the_last_minute_after_a_pause():
    """Stopped for 20 minutes (Ctrl-Z, SIGSTOP) and continued: after one line that spans
    the pause, the speed is the run's again, 10k frames a second, not the session's mean."""
    out = io.StringIO()
    p = Progress("montezuma", 3_000_000, 1, log_every=0, stream=out)
    rows = [{**ROW, "frames": 10_000 * t, "seconds": float(t)} for t in range(0, 61, 2)]
    rows += [{**ROW, "frames": 600_000 + 10_000 * t, "seconds": 1_260.0 + t} for t in (0, 2, 4)]
    for r in rows:
        p.update(r)
    lines = out.getvalue().splitlines()
    assert "10k/s" in lines[30] and "ETA 4:00" in lines[30]  # 2.4M frames left at 10k/s
    assert "/s" in lines[31] and "10k/s" not in lines[31]  # across the pause: one line
    assert "10k/s" in lines[32] and "ETA 3:58" in lines[32]
    assert "10k/s" in lines[33]
    # slowing to 1k frames/s (the archive grown) for a minute: 1k/s, not the session's mean
    for t in range(2, 63, 2):
        p.update({**ROW, "frames": 640_000 + 1_000 * t, "seconds": 1_264.0 + t})
    assert "1k/s" in out.getvalue().splitlines()[-1]


def test_goal_state_reads_the_success_frame():
    assert goal_state(ROW) == "goal no"
    assert goal_state({**ROW, "success_frame": 1_234_567}) == "goal at 1.23M"


def test_logs_get_one_plain_line_per_interval():
    out = io.StringIO()  # not a terminal
    p = Progress("montezuma", 3_000_000, 2, log_every=3600, stream=out)
    p.update(FIRST | {"cells": 1, "best_score": 0.0})
    p.update(ROW)  # within the interval: not written
    p.note("cells re-chosen: 11x8 with 8 levels")
    p.close(ROW)  # the last row is always written
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("cells re-chosen")
    assert lines[2].startswith("montezuma 1.5M/3M frames") and "#" not in lines[2]
    assert "\r" not in out.getvalue()


def test_human_keeps_three_digits():
    assert [human(n) for n in (950, 1234, 12_345, 1_500_000, 123_456_789)] == [
        "950", "1.23k", "12.3k", "1.5M", "123M",
    ]  # fmt: skip
