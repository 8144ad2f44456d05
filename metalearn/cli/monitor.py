"""``metalearn monitor MODEL NEWDATA``: drift of new data against the training profile in a model file (the
drift module and the model file's loader are imported when the command runs, not for its ``--help``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from metalearn.cli.common import JsonOption, TrustOption, _print_json, user_errors

commands = typer.Typer()


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_drift(report: dict[str, Any], top: int) -> None:
    """The verdict, its reasons, the most drifting columns, the score and the retrain command."""
    typer.echo(f"verdict: {report['verdict']} ({report['n_rows']} new rows against {report['train_rows']} "
               "training rows)")
    for reason in report["reasons"]:
        typer.echo(f"  - {reason}")
    typer.echo(f"{'column':24} {'kind':11} {'severity':8} {'PSI':>6} {'test':>4} {'p-value':>8} {'missing':>15}")
    for item in report["features"][:top]:
        missing = (f"{item['train_missing_rate']:.0%} -> {item['missing_rate']:.0%}"
                   if item.get("status") == "present" else "absent")
        typer.echo(f"{str(item['column'])[:24]:24} {item['kind']:11} {item['severity']:8} "
                   f"{_number(item.get('psi'), 2):>6} {item.get('test', '-'):>4} "
                   f"{_number(item.get('p_value'), 3):>8} {missing:>15}")
    score = report["score"]
    if score["available"]:
        typer.echo(f"score ({score['metric']}): training {_number(score['train'])} ({score['train_source']}), "
                   f"new data {_number(score['new'])}, drop {_number(score['drop'])}")
    else:
        typer.echo(f"score: not measured ({score['note'] or 'no usable target values'})")
    if report.get("metafeature_distance") is not None:
        typer.echo(f"meta-feature distance: {report['metafeature_distance']:.3f}")
    prefix = "retrain with" if report["retrain"]["recommended"] else "to retrain"
    typer.echo(f"{prefix}: {report['retrain']['command']}")


@commands.command()
@user_errors
def monitor(model: Path, data: Annotated[Path, typer.Argument(metavar="NEWDATA", help="New rows (CSV / parquet / "
                                                                                       "ARFF); with the target "
                                                                                       "column, the score drop too.")],
            json_: JsonOption = False,
            top: Annotated[int, typer.Option(min=1, help="Columns shown (most drifting first).")] = 15,
            trust_unsigned: TrustOption = False) -> None:
    """Drift of new data against the model's training data: per-column PSI and KS / chi-squared tests, unseen
    categories, missing rates, meta-feature distance and score drop; verdict ok / watch / retrain."""
    from metalearn import datasets, drift, model_io

    bundle = model_io.ModelBundle.load(model, trust_unsigned=trust_unsigned)
    report = drift.compare(bundle, datasets.read_table(data), data_name=str(data))
    if json_:
        _print_json(report)
        return
    print_drift(report, top)
