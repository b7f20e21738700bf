"""CLI: `affectreason score`, the deterministic key-free evaluator (see `affectreason.scoring`)."""

from __future__ import annotations

from pathlib import Path

import typer


def score(
    task: str = typer.Option(
        ..., "--task", help="ov, discrete, sentiment, emer, choice, multilabel, joint or reason."
    ),
    ref: Path = typer.Option(..., "--ref", help="Reference CSV (name, openset / valence / reason) or JSONL."),
    pred: Path = typer.Option(..., "--pred", help="Prediction CSV (name, openset / sentiment) or JSONL."),
    protocol: str = typer.Option(
        "affectreason", "--protocol", help="affectreason (fixed, default) or mer-unibench (exact parity)."
    ),
    wheel_dir: Path = typer.Option(
        None, "--wheel-dir", help="Folder with the published wheel1..5.xlsx, synonym.xlsx, format.csv."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    out: Path = typer.Option(None, "--out", help="Also write the JSON result to this file."),
    semantic: bool = typer.Option(
        True, "--semantic/--no-semantic", help="Map unknown words by sentence embedding (default protocol)."
    ),
    extractor_endpoint: str = typer.Option(
        None,
        "--extractor-endpoint",
        help="Extract labels from free-text predictions with an LLM at this URL.",
    ),
    extractor_model: str = typer.Option(
        None, "--extractor-model", help="Model name at --extractor-endpoint."
    ),
    extractor_api_key: str = typer.Option(None, "--extractor-api-key", envvar="AFFECTREASON_EXTRACTOR_KEY"),
) -> None:
    """Score predictions against references: emotion-wheel set metrics, hit rate, sentiment F1, cue matching."""
    from affectreason.scoring import llm_extractor, render_table, score_files, to_json

    extractor = None
    if extractor_endpoint:
        extractor = llm_extractor(extractor_endpoint, extractor_model, extractor_api_key)
    result = score_files(
        task, ref, pred, protocol=protocol, wheel_dir=wheel_dir, semantic=semantic, extractor=extractor
    )
    text = to_json(result)
    if out is not None:
        try:
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            from affectreason.errors import AffectReasonError

            raise AffectReasonError(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(text if as_json else render_table(task, result))


def register(app: typer.Typer) -> None:
    app.command("score")(score)
