"""The ``mutagen-actors`` command: the root group, ``version`` and the one error path.

``main()`` runs click in non-standalone mode and turns every failure into one line on stderr
(``Error: ...``) and exit status 1: usage errors, ``CliError`` (its own status), unexpected
exceptions (set ``MUTAGEN_ACTORS_TRACEBACK=1`` to see the traceback). A command group run
without a subcommand prints its help and exits 0.
"""

from __future__ import annotations

import os
import sys

import click

from mutagen_actors.wire.version import VERSION

from . import output
from .daemon_commands import daemon
from .errors import CliError
from .forward_commands import forward
from .sync_commands import sync

SECTIONS = (
    ("Sessions", ("sync", "forward")),
    ("Daemon", ("daemon",)),
    ("Other", ("version",)),
)


class SectionedGroup(click.Group):
    """Lists subcommands in help sections (``SECTIONS``) instead of one flat list."""

    def format_commands(self, ctx, formatter):
        listed = set()
        for title, names in SECTIONS:
            rows = []
            for name in names:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit=formatter.width)))
                    listed.add(name)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [(n, self.get_command(ctx, n)) for n in self.list_commands(ctx) if n not in listed]
        rows = [(n, c.get_short_help_str()) for n, c in rest if c is not None and not c.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=SectionedGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, "--version", prog_name="mutagen-actors",
                      message="%(prog)s version %(version)s")
@click.pass_context
def cli(ctx):
    """Real-time file synchronization and network forwarding for remote development.

    A per-user daemon supervises one isolated process per actor; this command talks to it
    (starting it if needed).
    """
    if ctx.invoked_subcommand is None:
        output.say(ctx.get_help())


@cli.command("version")
def version():
    """Print the version."""
    output.say(f"mutagen-actors version {VERSION}")


cli.add_command(sync)
cli.add_command(forward)
cli.add_command(daemon)


def main(argv=None) -> None:
    try:
        result = cli.main(args=argv, prog_name="mutagen-actors", standalone_mode=False)
    except CliError as failure:
        output.error(failure.message)
        sys.exit(failure.exit_code)
    except click.exceptions.NoArgsIsHelpError as shown:  # click >= 8.2
        output.say(shown.ctx.get_help())
        sys.exit(0)
    except click.UsageError as failure:
        hint = f" (see `{failure.ctx.command_path} --help`)" if failure.ctx else ""
        output.error(failure.format_message() + hint)
        sys.exit(1)
    except click.ClickException as failure:
        output.error(failure.format_message())
        sys.exit(1)
    except click.Abort:
        output.error("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        output.error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as failure:  # noqa: BLE001 - the one error path
        if os.environ.get("MUTAGEN_ACTORS_TRACEBACK") == "1":
            import traceback

            traceback.print_exc()
        output.error(f"internal error: {type(failure).__name__}: {failure}")
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
