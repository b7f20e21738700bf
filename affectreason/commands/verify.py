"""CLI: `affectreason verify`: check each prediction's cues against what can be measured in its clip."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def verify(
    pred: Path = typer.Argument(
        ..., help="Predictions (JSONL as `describe` writes them, with `source` paths)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    out: Path = typer.Option(None, "--out", help="Also write the JSON result to this file."),
    frames: int = typer.Option(8, "--frames", help="Frames sampled per clip for the visual measurements."),
    semantic: bool = typer.Option(
        True, "--semantic/--no-semantic", help="Map phrases the lexicon lacks by sentence embedding."
    ),
) -> int:
    """Per-cue verdicts (supported, contradicted, unverifiable) with the measurement behind each, and a
    faithfulness score per record. Exits 1 when some records could not be checked (e.g. a missing clip)."""
    from affectreason.errors import AffectReasonError
    from affectreason.verify import verification_lines, verify_file

    if frames < 1:
        raise AffectReasonError("--frames must be at least 1")
    result = verify_file(pred, semantic=semantic, frames=frames)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if out is not None:
        try:
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise AffectReasonError(f"cannot write {out}: {exc.strerror}") from None
    if as_json:
        typer.echo(text)
    else:
        for row in result["records"]:
            typer.echo(f"{row['id']}  [{row['source']}]")
            if "error" in row:
                typer.echo(f"  error: {row['error']}")
            else:
                typer.echo("\n".join(verification_lines(row["verification"])))
        s = result["summary"]
        faith = "n/a" if s["faithfulness"] is None else f"{s['faithfulness']:.2f}"
        typer.echo(
            f"{s['records']} records, {s['checked']} with checkable cues, mean faithfulness {faith}, "
            f"{s['contradicted']} contradicted cues, {s['failed']} failed"
        )
    for row in result["records"]:
        if "error" in row:
            typer.echo(f"error: {row['id']}: {row['error']}", err=True)
    return 1 if result["summary"]["failed"] else 0


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
