"""The long run (not in CI): instances killed and restarted every few seconds under steady
chat traffic, then every turn checked. Prints the counts docs/chat.md reports.

    cd e2e && .venv/bin/python -m chaos.soak --minutes 10 --users 6 --kill-every 10

Uses TEST_DATABASE_URL (PostgreSQL) when set, else a SQLite file of its own; the target/
debug backend binary (BACKEND_BIN to override) and the agent-manager's .venv.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time

from .driver import Counts, User, check
from .harness import TURN_BOUND_S, chaos_stack, new_user


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--users", type=int, default=6)
    p.add_argument("--instances", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=10, help="seconds between instance kills")
    p.add_argument("--worker-kill-every", type=int, default=0, help="also SIGKILL the worker every Nth kill")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    with chaos_stack(backends=args.instances) as chaos:
        users = []
        for _ in range(args.users):
            owner, page = new_user(chaos)
            users.append(User(owner, page, chaos.alive, bound=TURN_BOUND_S))
        stop = threading.Event()
        threads = [threading.Thread(target=u.run, args=(None, stop), daemon=True) for u in users]
        for t in threads:
            t.start()
        end = time.monotonic() + args.minutes * 60
        kills = worker_kills = 0
        while time.monotonic() < end:
            time.sleep(args.kill_every)
            victim = random.choice(chaos.alive())
            chaos.kill(victim)
            kills += 1
            if args.worker_kill_every and kills % args.worker_kill_every == 0:
                chaos.kill_worker()
                chaos.stack.start_worker(pool="prefork")
                worker_kills += 1
            chaos.add_backend()
            accepted = sum(len(u.accepted) for u in users)
            print(
                f"{time.strftime('%H:%M:%S')} kill {kills} ({victim.name}); {accepted} accepted", flush=True
            )
        stop.set()
        for t in threads:
            t.join(3 * TURN_BOUND_S)
        stuck_users = sum(t.is_alive() for t in threads)
        total = Counts()
        api = chaos.api()
        for u in users:
            total.add(check(u, api))
            u.close()
    print(
        f"instances={args.instances} users={args.users} minutes={args.minutes} "
        f"instance_kills={kills} worker_kills={worker_kills}\n"
        f"accepted={total.accepted} answered={total.answered} failed={total.failed}\n"
        f"lost_user_messages={total.lost_user_messages} lost_answers={total.lost_answers} "
        f"stuck_turns={total.stuck_turns} duplicated_answers={total.duplicated_answers} "
        f"conflicting_items={total.conflicting_items} incomplete_views={total.incomplete_views} "
        f"failed_then_answered={total.failed_then_answered} users_not_finished={stuck_users}"
    )
    for line in total.problems[:50]:
        print("  ", line)
    bad = (
        total.lost_user_messages
        + total.lost_answers
        + total.stuck_turns
        + total.duplicated_answers
        + total.conflicting_items
        + total.failed_then_answered
        + stuck_users
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
