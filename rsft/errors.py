"""The one error type a user sees as a single line (no traceback): bad recipes, bad data, bad machines."""


class UserError(Exception):
    """A problem the user can fix; the CLI prints `error: <message>` and exits with status 2."""


class NotLocal(UserError):
    """A Hub repository (model, tokenizer, data) that is neither on this machine nor reachable: what can be said
    without it (train.py --check's plan from the model's known shape) is said before the line."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM, caught where the script knows what it was doing: one line saying where, exit status 130."""


def run_cli(main) -> None:
    """Run a script's main(); a UserError becomes one line on stderr and exit status 2, an interrupt one line and
    status 130, never a traceback."""
    import sys

    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"\n{e}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
