"""The `affectreason` command line: thin commands that parse arguments and call one library function each."""

from __future__ import annotations

import importlib
import sys

import typer

from affectreason.errors import AffectReasonError

app = typer.Typer(
    name="affectreason",
    help="Explainable multimodal emotion reasoning: describe clips, score, benchmark, fine-tune and serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app`; they import heavy libraries only inside the commands.
_COMMAND_MODULES = (
    "describe",
    "tiny_model",
    "score",
    "verify",
    "bench",
    "data",
    "recipes",
    "train",
    "merge",
    "serve",
)

# typer vendors click; its usage errors all derive from the ClickException that BadParameter extends.
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _show_version(value: bool) -> None:
    if value:
        from affectreason import __version__

        typer.echo(f"affectreason {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Options shared by every command (`--debug` is read in `main`)."""


for _name in _COMMAND_MODULES:
    importlib.import_module(f"affectreason.commands.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one `error:` line and exit code 2 (tracebacks only with --debug)."""
    from affectreason.quiet import silence_library_noise

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    silence_library_noise()
    try:
        result = app(args=args, standalone_mode=False)
    except AffectReasonError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except _CLICK_ERROR as exc:  # usage errors: click's own message and exit code
        exc.show()
        return exc.exit_code
    except Exception as exc:  # anything unexpected: one line unless --debug
        if debug:
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc}".splitlines()[0], err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
