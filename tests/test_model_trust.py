"""Model files are signed (#19.4): nothing in an unsigned or altered file runs unless the user trusts it;
prediction CSVs are safe to open in a spreadsheet (#19.10). Everything through the real CLI."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

from metalearn.cli import app
from metalearn.errors import MetalearnError
from metalearn.model_io import FORMAT, ModelBundle, load_model, save_model
from metalearn.settings import model_key, model_key_path, pin_model_key_file

runner = CliRunner()


class Hostile:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    frame["y"] = (frame["a"] + frame["b"] > 0).astype(int)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def model(tmp_path: Path, table: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("METALEARN_MODEL_KEY_FILE", raising=False)  # here: the key beside the knowledge base
    frame = pd.read_csv(table)
    fitted = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    return save_model(fitted, tmp_path / "model.joblib", {"columns": ["a", "b"], "categorical": [], "target": "y"})


def _predict(model: Path, table: Path, *extra: str):
    return runner.invoke(app, ["predict", str(model), str(table), *extra])


def test_signed_file_layout_and_key_beside_the_knowledge_base(model: Path, table: Path) -> None:
    header, payload = model.read_bytes().split(b"\n", 1)
    fields = json.loads(header)
    assert fields["format"] == FORMAT == "metalearn-model/2" and fields["payload_bytes"] == len(payload)
    assert fields["signature"].startswith("hmac-sha256:")
    key_file = Path(os.environ["METALEARN_DB"]).parent / "model.key"  # beside the knowledge base
    assert model_key_path() == key_file and key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert fields["key_id"] == model_key().id
    result = _predict(model, table)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "prediction" and len(result.stdout.splitlines()) == 41
    fitted, metadata = load_model(model)  # the wrappers still work
    assert metadata["target"] == "y" and hasattr(fitted, "coef_")


def test_tampered_file_is_refused(model: Path, table: Path) -> None:
    data = bytearray(model.read_bytes())
    data[-40] ^= 0x01  # one bit of the pickled payload
    model.write_bytes(bytes(data))
    result = _predict(model, table)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: model.joblib fails its signature check")
    assert "--trust-unsigned" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unsigned_legacy_file_refused_then_loaded_with_the_flag(tmp_path: Path, table: Path) -> None:
    frame = pd.read_csv(table)
    fitted = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    legacy = tmp_path / "legacy.joblib"
    joblib.dump({"format": "metalearn-model/1", "model": fitted, "metadata": {"columns": ["a", "b"]}}, legacy)
    refused = _predict(legacy, table)
    assert refused.exit_code == 2 and "not a signed metalearn model file" in refused.stderr
    assert "--trust-unsigned" in refused.stderr
    with pytest.raises(MetalearnError, match="trust-unsigned"):
        ModelBundle.load(legacy)
    trusted = _predict(legacy, table, "--trust-unsigned")
    assert trusted.exit_code == 0, trusted.output
    expected = fitted.predict(frame[["a", "b"]])
    assert pd.read_csv(io.StringIO(trusted.stdout))["prediction"].tolist() == expected.tolist()
    assert ModelBundle.load(legacy, trust_unsigned=True).metadata == {"columns": ["a", "b"]}
    report = runner.invoke(app, ["report", str(legacy), "--data", str(table), "--json"])
    assert report.exit_code == 2 and "--trust-unsigned" in report.stderr


def test_hostile_pickle_never_runs_when_refused(tmp_path: Path, table: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "marker"
    unsigned = tmp_path / "unsigned.joblib"
    joblib.dump({"format": "metalearn-model/1", "model": Hostile(marker), "metadata": {}}, unsigned)
    other_key = tmp_path / "other.joblib"  # a well-formed signed file, by a key this machine does not have
    monkeypatch.setenv("METALEARN_MODEL_KEY", "someone-else's-key-0123456789")
    ModelBundle(Hostile(marker), {}).save(other_key)
    assert not marker.exists()
    monkeypatch.delenv("METALEARN_MODEL_KEY")
    forged = tmp_path / "forged.joblib"  # this machine's header, another payload
    header = ModelBundle(LogisticRegression(), {}).save(tmp_path / "real.joblib").read_bytes().split(b"\n", 1)[0]
    forged.write_bytes(header + b"\n" + other_key.read_bytes().split(b"\n", 1)[1])
    for path, message in [(unsigned, "not a signed"), (other_key, "signed with another key"),
                          (forged, "fails its signature check")]:
        result = _predict(path, table)
        assert result.exit_code == 2 and message in result.stderr, result.output
        report = runner.invoke(app, ["report", str(path), "--data", str(table), "--target", "y"])
        assert report.exit_code == 2 and message in report.stderr, report.output
        with pytest.raises(MetalearnError, match=message):
            ModelBundle.load(path)
        assert not marker.exists()
    # the marker mechanism is real: trusting the file runs its code (and then fails: it is no model)
    result = _predict(unsigned, table, "--trust-unsigned")
    assert marker.read_text() == "ran" and result.exit_code == 2 and "not a fitted model pipeline" in result.stderr


def test_a_client_with_the_same_key_verifies_the_file(tmp_path: Path, table: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.read_csv(table)
    fitted = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    monkeypatch.setenv("METALEARN_MODEL_KEY", "shared-server-key-ü-0123456789")
    path = ModelBundle(fitted, {"columns": ["a", "b"], "categorical": []}).save(tmp_path / "server.joblib")
    monkeypatch.setenv("METALEARN_DB", str(tmp_path / "elsewhere" / "kb.sqlite"))  # another machine's files
    assert _predict(path, table).exit_code == 0
    monkeypatch.delenv("METALEARN_MODEL_KEY")
    refused = _predict(path, table)
    assert refused.exit_code == 2 and "signed with another key" in refused.stderr
    monkeypatch.setenv("METALEARN_MODEL_KEY", "short")
    assert "at least 16 characters" in _predict(path, table).stderr


def test_payload_that_is_not_a_pipeline(tmp_path: Path, table: Path) -> None:
    for payload, message in [("just text", "holds a str, not a fitted model pipeline"),
                             (LogisticRegression(), "holds a LogisticRegression that was never fitted")]:
        path = ModelBundle(payload, {}).save(tmp_path / "odd.joblib")
        result = _predict(path, table)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_prediction_csv_escapes_formulas_but_not_numbers(tmp_path: Path) -> None:
    labels = ["=1+2", "-1.5", "@SUM(A1)", "+cmd", "\tx", "ok", "-3e2", "-1+1"]
    frame = pd.DataFrame({"a": np.arange(len(labels), dtype=float)})
    classifier = DecisionTreeClassifier().fit(frame, labels)
    model = ModelBundle(classifier, {}).save(tmp_path / "labels.joblib")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    result = _predict(model, tmp_path / "rows.csv", "--output", str(tmp_path / "out.csv"))
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)["prediction"].tolist()
    assert written == ["'=1+2", "-1.5", "'@SUM(A1)", "'+cmd", "'\tx", "ok", "-3e2", "'-1+1"]
    stdout = _predict(model, tmp_path / "rows.csv")
    assert pd.read_csv(io.StringIO(stdout.stdout), dtype=str, keep_default_na=False)["prediction"].tolist() == written
    # a numeric prediction stays a number, negative or not
    regressor = LinearRegression().fit(frame, -frame["a"] - 0.5)
    numbers = _predict(ModelBundle(regressor, {}).save(tmp_path / "reg.joblib"), tmp_path / "rows.csv")
    values = pd.read_csv(io.StringIO(numbers.stdout))["prediction"]
    assert values.dtype == float and np.allclose(values, -frame["a"] - 0.5)


def test_pinning_the_key_file_keeps_the_key_when_the_database_moves(tmp_path: Path) -> None:
    env = {"METALEARN_DB": str(tmp_path / "a" / "kb.sqlite")}
    pin_model_key_file(env)
    assert env["METALEARN_MODEL_KEY_FILE"] == str(tmp_path / "a" / "model.key")
    env["METALEARN_DB"] = str(tmp_path / "b" / "kb.sqlite")
    assert model_key_path(env) == tmp_path / "a" / "model.key"
    given = {"METALEARN_MODEL_KEY": "k" * 16, "METALEARN_DB": str(tmp_path / "kb.sqlite")}
    pin_model_key_file(given)  # a key in the environment needs no file
    assert "METALEARN_MODEL_KEY_FILE" not in given
